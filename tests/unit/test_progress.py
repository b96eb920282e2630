from datetime import datetime

from conftest import job_info

from factoryhub.jobstate import Phase
from factoryhub.reasons import explain_pending
from factoryhub.spawners.progress import ProgressLog, describe_job


def _job(**kw):
    return job_info(**{"reason": "Resources", "start": "2026-11-25T14:32:00", **kw})


def test_queued_sentence_has_position_reason_and_expected_start():
    progress, text = describe_job(
        _job(), Phase.QUEUED, position=2, now=datetime(2026, 11, 25, 14, 20)
    )
    assert progress == 20
    assert text == (
        "Waiting in the queue (job 7, number 2 in line): waiting for the resources"
        " you asked for to free up. Start expected in about 12 minutes (14:32)."
    )


def test_queued_without_estimate():
    _, text = describe_job(_job(start="N/A", reason="Priority"), Phase.QUEUED)
    assert text.endswith("other jobs with higher priority are ahead of you.")


def test_reasons_are_sentences_and_unknown_ones_are_quoted():
    assert "down or reserved" in explain_pending("ReqNodeNotAvail, UnavailableNodes:cn02")
    assert explain_pending("FrobLimit") == "Slurm says 'FrobLimit'."


async def test_progress_log_replays_and_follows():
    log = ProgressLog()
    log.add(5, "a")
    log.add(5, "a")  # repeats are dropped
    log.add(10, "b")
    log.close()
    assert [e["message"] async for e in log.follow()] == ["a", "b"]


def test_limit_families_are_explained_with_their_name():
    assert explain_pending("QOSMaxGRESPerUser").startswith(
        "you already use as much as your quality of service allows at once (QOSMaxGRESPerUser)"
    )
    assert "account's shared budget" in explain_pending("AssocGrpCPUMinutesLimit")
    assert "quality of service is not valid" in explain_pending("InvalidQOS")
