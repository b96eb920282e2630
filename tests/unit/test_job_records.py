"""Job records read as JSON: what `squeue --json` of Slurm 22.05 printed on the embedded site,
with a job whose comment carries a forged text row (the attack of issue 13, finding 1)."""

import json
from pathlib import Path

import pytest

from factoryhub.jobrecords import (
    format_duration,
    only,
    parse_job_table,
    parser_version,
)
from factoryhub.scheduler.slurm import SlurmError

CAPTURED = (Path(__file__).parent / "data" / "squeue-22.05.json").read_text()
NOW = 1796189700.0


def _document(*jobs: dict, meta: dict | None = None) -> str:
    meta = meta if meta is not None else {"plugin": {"type": "openapi/v0.0.38"}}
    return json.dumps({"meta": meta, "errors": [], "jobs": list(jobs)})


def test_a_comment_with_newlines_and_bars_stays_one_field_of_one_job():
    table = parse_job_table(CAPTURED, NOW)
    assert sorted(table.jobs) == ["3", "5", "6"] and not table.problems
    attacker = table.jobs["5"]
    assert attacker.name == "fh:demo:mallory:" and attacker.nodes == "cn01"
    assert attacker.comment.startswith("fhport:8888\n7|RUNNING|")
    assert "7" not in table.jobs  # the forged row made no job


def test_fields_as_the_hub_uses_them():
    table = parse_job_table(CAPTURED, NOW)
    pending, running = table.jobs["6"], table.jobs["5"]
    assert (pending.state, pending.reason, pending.nodes) == ("PENDING", "BeginTime", "")
    assert pending.start.startswith("2026-12-02T") and pending.submit != "N/A"
    assert running.state == "RUNNING" and running.user == "root"
    assert running.time_left and table.user_jobs["5"].time_used == "0:36"
    assert table.user_jobs["6"].time_limit == "1:00:00" and table.user_jobs["6"].cpus == "2"
    assert table.jobs["3"].name.startswith("a\x01b")  # control characters stay inert text


def test_a_duplicated_id_drops_every_record_of_it_and_keeps_the_others():
    one = {"job_id": 11, "job_state": "RUNNING", "name": "fh:t:alice:", "user_name": "alice"}
    other = {**one, "user_name": "mallory", "nodes": "cn02"}
    fine = {**one, "job_id": 12}
    table = parse_job_table(_document(one, other, fine), NOW)
    assert list(table.jobs) == ["12"]
    assert table.problems == ("job 11 listed 2 times: all its records left out",)


@pytest.mark.parametrize(
    "record",
    [
        {"job_id": "11; rm", "job_state": "RUNNING"},
        {"job_id": -1, "job_state": "RUNNING"},
        {"job_id": 11, "job_state": "RUNNING\nPENDING"},
        {"job_id": 11, "job_state": "RUNNING", "name": ["not", "text"]},
        {"job_id": 11, "job_state": "RUNNING", "comment": "x" * 5000},
        "not a record",
    ],
)
def test_a_malformed_record_is_left_out_and_named_never_fatal(record):
    fine = {"job_id": 12, "job_state": "PENDING", "name": "ok", "user_name": "bob"}
    table = parse_job_table(_document(record, fine), NOW)
    assert list(table.jobs) == ["12"] and len(table.problems) == 1
    assert table.problems[0].startswith("job record 0 left out")


@pytest.mark.parametrize("text", ["", "1|RUNNING|None", '{"jobs": 3}', "[]"])
def test_output_that_is_not_a_job_list_fails_the_read(text):
    with pytest.raises(SlurmError):
        parse_job_table(text, NOW)


def test_an_unknown_data_parser_is_named():
    with pytest.raises(SlurmError, match=r"data parser v9\.9\.9"):
        parse_job_table(_document(meta={"plugin": {"type": "openapi/v9.9.9"}}), NOW)


def test_later_data_parsers_numbers_and_state_lists():
    record = {
        "job_id": {"set": True, "infinite": False, "number": 42},
        "job_state": ["RUNNING", "COMPLETING"],
        "start_time": {"set": True, "infinite": False, "number": int(NOW) - 90},
        "end_time": {"set": True, "infinite": False, "number": int(NOW) + 3600},
        "time_limit": {"set": False, "infinite": True, "number": 0},
        "name": "n",
        "user_name": "alice",
    }
    meta = {"plugin": {"type": "", "data_parser": "data_parser/v0.0.40"}}  # as 23.11 prints it
    assert parser_version(meta) == "v0.0.40"
    table = parse_job_table(_document(record, meta=meta), NOW)
    job = table.user_jobs["42"]
    # the flag's word, as squeue's text and 22.05's JSON print it (job_state_string)
    assert (job.state, job.time_used, job.time_limit, job.time_left) == (
        "COMPLETING",
        "1:30",
        "UNLIMITED",
        "1:00:00",
    )


def test_only_the_asked_ids_come_back():
    jobs = parse_job_table(CAPTURED, NOW).jobs
    assert list(only(jobs, ["5", "99"])) == ["5"]


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0:00"), (59, "0:59"), (3600, "1:00:00"), (90061, "1-01:01:01")]
)
def test_durations_print_as_slurm_prints_them(seconds, text):
    assert format_duration(seconds) == text
