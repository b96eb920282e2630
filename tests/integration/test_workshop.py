"""Workshops on the real site (issue 15): `factoryhub workshop create` makes a Slurm reservation,
an account with its budget in slurmdbd, real seat accounts and a handout; impossible requests
leave nothing; learners join through the hub (browser form and JSON), each on a seat of their
own, and their session runs the locked preset on the reservation, charged to the workshop;
`end` archives every home (checked byte for byte), and its report equals what sacct says."""

from __future__ import annotations

import grp
import hashlib
import html
import io
import json
import pwd
import re
import stat
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import httpx
import pytest
from realsite import REPO, HubClient, _xsrf, server_job, squeue_row, wait_until
from workshopkit import (
    COURSE,
    RECORDS,
    TRAINER_FILES,
    _exists,
    _state,
    left_behind,
    remove_by_hand,
    reservation_line,
    slurm_account_exists,
    unique,
    workshop_cmd,
)

from factoryhub.reasons import explain_pending

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def course(hub_client):
    hub_client.publish_course(REPO / "notebooks" / COURSE)
    return COURSE


def test_a_reservation_slurm_refuses_rolls_back_everything_made_before_it(real_hub, course):
    """Running jobs are not the planner's business (a future slot is free of them), so Slurm
    has the last word: with both CPU nodes held by running jobs, a workshop from now is refused by
    scontrol after the account, the seats and their associations were made; all are undone."""
    holds = [  # one whole node each, by two learners (each within the QoS's 32 CPUs per user)
        subprocess.run(
            ["runuser", "-u", user, "--", "sbatch", "--parsable", "-p", "cpu", "-w", node,
             "--exclusive", "-c", "32", "-t", "5", "-J", "ws-hold", "--wrap", "sleep 300"],
            capture_output=True, text=True, cwd="/tmp", check=True,
        ).stdout.strip()
        for user, node in (("tlearner1", "cn01"), ("tlearner2", "cn02"))
    ]  # fmt: skip
    name = unique("b")
    try:
        deadline = time.monotonic() + 60
        while any(_state(hold) != "RUNNING" for hold in holds):
            if time.monotonic() > deadline:
                pytest.skip("the CPU nodes stayed busy with other jobs: nothing to hold them")
            time.sleep(0.5)
        made = workshop_cmd(
            real_hub, "create", name, "--course", course, "--start", "now",
            "--end", "now+1h", "--seats", "2",
        )  # fmt: skip
        assert made.returncode == 1, made.stdout
        assert f"workshop {name} not created" in made.stderr
        assert "everything made so far was removed" in made.stderr
        assert left_behind(name) == []
    finally:
        subprocess.run(["scancel", *holds], check=False)
        remove_by_hand(name)


@pytest.fixture(scope="module")
def workshop(real_hub, course):
    """A 3-seat workshop from now for an hour, with ttrainer as its trainer."""
    name = unique("a")
    try:
        made = workshop_cmd(
            real_hub, "create", name, "--course", course, "--start", "now",
            "--end", "now+60min", "--seats", "3", "--trainer", "ttrainer",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        code = re.search(r"access code (\S+)", made.stdout).group(1)
        yield {"name": name, "code": code, "out": made.stdout}
    finally:
        remove_by_hand(name)
        assert left_behind(name) == []


def test_create_makes_the_reservation_the_budgeted_account_and_the_seats(real_hub, workshop):
    name, account = workshop["name"], f"ws-{workshop['name']}"
    seats = [f"{account}-0{n}" for n in (1, 2, 3)]
    line = reservation_line(account)
    assert "State=ACTIVE" in line and "PartitionName=cpu" in line, line
    assert f"Users={','.join(seats)}" in line and f"Accounts={account}" in line
    assert "CoreCnt=3" in line  # three seats × the course's one CPU
    assoc = subprocess.run(
        ["sacctmgr", "-n", "-P", "show", "assoc", f"account={account}", "format=user,grptresmins"],
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert sorted(row.split("|")[0] for row in assoc if row.split("|")[0]) == seats
    budget = next(row.split("|")[1] for row in assoc if not row.split("|")[0])
    assert budget.startswith("cpu=") and 170 <= int(budget[4:]) <= 180  # 3 seats × ~60 min
    login_group = grp.getgrnam(real_hub.site.hub.allowed_group).gr_mem
    for seat in seats:
        home = Path(pwd.getpwnam(seat).pw_dir)
        assert (
            stat.S_IMODE(home.stat().st_mode) == 0o700
            and home.stat().st_uid == pwd.getpwnam(seat).pw_uid
        )
        assert seat in login_group
    assert "ttrainer" in grp.getgrnam(f"{account}-trainers").gr_mem
    record = RECORDS / f"{name}.json"
    info = record.stat()
    assert (pwd.getpwuid(info.st_uid).pw_name, stat.S_IMODE(info.st_mode)) == ("factoryhub", 0o600)
    assert workshop["code"] not in record.read_text()
    files = TRAINER_FILES / name
    assert stat.S_IMODE(files.stat().st_mode) == 0o750
    assert grp.getgrgid(files.stat().st_gid).gr_name == f"{account}-trainers"
    for made in ("handout.csv", "handout.html"):
        info = (files / made).stat()
        assert (stat.S_IMODE(info.st_mode), info.st_gid) == (0o640, files.stat().st_gid)
    handout = (files / "handout.csv").read_text()
    assert workshop["code"] in handout and f"http://127.0.0.1:18000/hub/workshop/{name}" in handout
    assert workshop["code"] in (files / "handout.html").read_text()
    listed = workshop_cmd(real_hub, "list")
    assert name in listed.stdout and "active" in listed.stdout
    shown = workshop_cmd(real_hub, "status", name)
    assert "0 of 3 taken" in shown.stdout and "ACTIVE" in shown.stdout, shown.stdout


def test_a_second_workshop_of_the_same_name_is_refused(real_hub, workshop):
    again = workshop_cmd(
        real_hub, "create", workshop["name"], "--course", COURSE, "--start", "now",
        "--end", "now+60min", "--seats", "2",
    )  # fmt: skip
    assert again.returncode == 2
    assert f"name '{workshop['name']}' is taken by another workshop" in again.stderr


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--course", "nope", "--start", "now", "--end", "now+1h", "--seats", "2"],
         "course 'nope' is not in the catalogue"),
        (["--course", COURSE, "--start", "now+2h", "--end", "now+1h", "--seats", "2"],
         "is not after the start"),
        (["--course", COURSE, "--start", "now", "--end", "now+1h", "--seats", "250"],
         "need more than partition cpu has free in that slot"),
        (["--course", COURSE, "--start", "now", "--end", "now+1h", "--seats", "2",
          "--trainer", "nosuchtrainer"], "trainer 'nosuchtrainer' has no account"),
    ],
)  # fmt: skip
def test_an_impossible_workshop_is_refused_with_a_sentence_and_leaves_nothing(
    real_hub, course, args, sentence
):
    name = unique("r")
    try:
        refused = workshop_cmd(real_hub, "create", name, *args)
        assert refused.returncode == 2, refused.stdout
        assert sentence in refused.stderr and "Traceback" not in refused.stderr
        assert left_behind(name) == []
    finally:
        remove_by_hand(name)


# -- join --------------------------------------------------------------------------------------


def join_json(base: str, name: str, code: str, shown: str) -> httpx.Response:
    """A join as a script does it: the page (for the XSRF cookie), then the form as JSON."""
    with httpx.Client(base_url=base, timeout=60) as web:
        web.get(f"/hub/workshop/{name}")
        return web.post(
            f"/hub/workshop/{name}",
            data={"code": code, "name": shown, "_xsrf": _xsrf(web)},
            headers={"Accept": "application/json"},
        )


def test_learners_join_each_on_a_seat_of_their_own_with_the_locked_preset(
    real_hub, hub_client: HubClient, workshop
):
    name, code, account = workshop["name"], workshop["code"], f"ws-{workshop['name']}"
    base = real_hub.site.hub.url
    with httpx.Client(base_url=base, timeout=60, follow_redirects=True) as web:
        page = web.get(f"/hub/workshop/{name}")
        assert page.status_code == 200 and 'name="code"' in page.text
        wrong = web.post(
            f"/hub/workshop/{name}",
            data={"code": "AAAAA-AAAAA", "name": "Eve", "_xsrf": _xsrf(web)},
        )
        assert wrong.status_code == 400 and "not this workshop's" in html.unescape(wrong.text)
        joined = web.post(
            f"/hub/workshop/{name}", data={"code": code.lower(), "name": "Ada", "_xsrf": _xsrf(web)}
        )
        assert joined.status_code == 200, joined.text[:300]
        seat = f"{account}-01"
        assert joined.history[0].headers["location"].endswith(f"/hub/spawn-pending/{seat}")
        admin = hub_client.login_token("tadmin")
        wait_until(
            lambda: (hub_client.server(seat, admin) or {}).get("ready"), 120, "the seat's server"
        )
        landed = web.get(f"/hub/spawn-pending/{seat}")
        assert f"/user/{seat}/lab/tree/courses/{COURSE}/" in str(landed.url), landed.url

    # five more people at once for the two seats left: two seats, three told there are none
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def join(n: int) -> None:
        answer = join_json(base, name, code, f"learner {n}")
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=join, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    given = [a.json()["seat"] for a in answers if a.status_code == 200]
    assert sorted(given) == [f"{account}-02", f"{account}-03"], [a.text for a in answers]
    refused = [a for a in answers if a.status_code == 400]
    assert len(refused) == 3 and all("All 3 seats" in a.json()["message"] for a in refused)

    # the seat's job: the course's preset, on the reservation, charged to the workshop
    job = subprocess.run(
        ["squeue", "-h", "-u", seat, "-o", "%i|%a|%v|%C|%T"], capture_output=True, text=True
    ).stdout.split()
    assert len(job) == 1, job
    _, charged, reservation, cpus, state = job[0].split("|")
    assert (charged, reservation, cpus, state) == (account, account, "1", "RUNNING")

    # a seat asking for anything else is refused with the reason, and nothing is submitted
    token = next(a.json()["token"] for a in answers if a.json().get("seat") == f"{account}-02")
    workshop["tokens"] = {
        a.json()["seat"]: a.json()["token"] for a in answers if a.status_code == 200
    }
    with hub_client.api(token) as api:
        r = api.post(f"/users/{account}-02/server", json={"user_options": {"cpus": 4}})
        assert r.status_code == 400
        assert "a workshop seat runs the course's preset (cpus = 1)" in r.json()["message"]
        r = api.post(f"/users/{account}-02/server", json={"user_options": {"account": "training"}})
        assert r.status_code == 400 and f"charged to {account}" in r.json()["message"]
    assert (
        subprocess.run(
            ["squeue", "-h", "-u", f"{account}-02"], capture_output=True, text=True
        ).stdout.strip()
        == ""
    )
    # through the REST API alone, with the joined seat's token: its preset, on the reservation
    hub_client.start(f"{account}-02", token)
    row = subprocess.run(
        ["squeue", "-h", "-u", f"{account}-02", "-o", "%a|%v|%C|%T"], capture_output=True, text=True
    ).stdout.split()
    assert row == [f"{account}|{account}|1|RUNNING"], row
    status = workshop_cmd(real_hub, "status", name)
    assert "3 of 3 taken" in status.stdout and "Ada" in status.stdout

    # the trainers' cohort page: each seat with its learner and its session's state
    cohort = f"/services/factoryhub/api/workshops/{name}"
    with hub_client._logged_in("ttrainer") as web:
        rows = {r["seat"]: r for r in web.get(cohort).json()["seats"]}
        assert (rows[seat]["display_name"], rows[seat]["state"]) == ("Ada", "running")
        assert rows[f"{account}-02"]["state"] == "running"
        assert rows[f"{account}-03"]["state"] == "not started"
        page = web.get(f"/services/factoryhub/workshops/{name}")
        assert page.status_code == 200 and f'id="seat-{seat}"' in page.text
    with hub_client._logged_in("tlearner1") as web:
        assert web.get(cohort).status_code == 403  # not this workshop's trainer


def test_a_seat_queued_behind_the_full_reservation_is_shown_queued_with_the_reason(
    hub_client: HubClient, workshop
):
    """Seat 02 fills the reservation's third core with a second (named) server of its preset;
    seat 03's session then waits in Slurm's queue, and the cohort page says so and why."""
    account = f"ws-{workshop['name']}"
    second, third = f"{account}-02", f"{account}-03"
    tokens = workshop["tokens"]
    hub_client.start(second, tokens[second], name="extra")
    with hub_client.api(tokens[third]) as api:
        assert api.post(f"/users/{third}/server", json={"user_options": {}}).status_code == 202
    job = wait_until(lambda: server_job(third, "PD"), 60, "seat 03's job queued")
    reason = wait_until(  # "None" until the scheduler has looked at the new job
        lambda: squeue_row(job)["reason"] not in ("", "None") and squeue_row(job)["reason"],
        60,
        "the queued job's reason",
    )
    cohort = f"/services/factoryhub/api/workshops/{workshop['name']}"
    with hub_client._logged_in("ttrainer") as web:
        rows = {r["seat"]: r for r in web.get(cohort).json()["seats"]}
    assert rows[third]["state"] == "queued" and rows[third]["detail"], rows[third]
    assert rows[third]["detail"] == explain_pending(reason)
    assert rows[second]["state"] == "running"  # its default server; "extra" is not counted


# -- end ---------------------------------------------------------------------------------------


def _as_seat(seat: str, script: str) -> None:
    subprocess.run(["runuser", "-u", seat, "--", "bash", "-c", script], check=True, cwd="/")


def _home_files(home: Path) -> dict[str, bytes]:
    found = {}
    for path in home.rglob("*"):
        if path.is_file() and not path.is_symlink():
            found[str(path.relative_to(home))] = path.read_bytes()
    return found


def _sacct_cpu_hours(account: str, start: str) -> dict[str, tuple[int, float]]:
    out = subprocess.run(
        ["sacct", "-n", "-P", "-X", "-a", f"--accounts={account}", f"--starttime={start}",
         "--endtime=now", "--format=User,NCPUS,ElapsedRaw"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    per_user: dict[str, tuple[int, float]] = {}
    for line in out.splitlines():
        user, ncpus, elapsed = line.split("|")
        jobs, hours = per_user.get(user, (0, 0.0))
        per_user[user] = (jobs + 1, hours + int(ncpus) * int(elapsed) / 3600)
    return per_user


def test_end_archives_every_home_reports_what_sacct_says_and_twice_changes_nothing(
    real_hub, hub_client: HubClient, workshop
):
    name, account = workshop["name"], f"ws-{workshop['name']}"
    seats = [f"{account}-0{n}" for n in (1, 2, 3)]
    _as_seat(seats[0], "cd && mkdir -p work && head -c 300000 /dev/urandom > work/data.bin"
             " && echo notes > notes.txt && ln -s /etc/shadow stolen && mkfifo pipe")  # fmt: skip
    record = json.loads((RECORDS / f"{name}.json").read_text())

    ended = workshop_cmd(real_hub, "end", name)
    assert ended.returncode == 0, ended.stderr
    assert (
        subprocess.run(
            ["squeue", "-h", f"--account={account}"], capture_output=True, text=True
        ).stdout.strip()
        == ""
    )
    assert not reservation_line(account).startswith("ReservationName")
    for seat in seats:  # expired (a seat never had a password: locked from the start)
        shadow = subprocess.run(["getent", "shadow", seat], capture_output=True, text=True)
        assert shadow.stdout.split(":")[7] == "1", shadow.stdout
        assert seat not in grp.getgrnam(real_hub.site.hub.allowed_group).gr_mem

    folder = TRAINER_FILES / name / "archives"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [e["seat"] for e in manifest["archives"]] == seats
    for entry in manifest["archives"]:
        data = (folder / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
        home = Path(pwd.getpwnam(entry["seat"]).pw_dir)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            archived = {
                m.name.removeprefix("./"): tar.extractfile(m).read()
                for m in tar.getmembers()
                if m.isfile()
            }
            links = {m.name.removeprefix("./"): m.linkname for m in tar.getmembers() if m.issym()}
        assert archived == _home_files(home)  # byte for byte, every regular file
        if entry["seat"] == seats[0]:
            assert len(archived["work/data.bin"]) == 300000
            assert links["stolen"] == "/etc/shadow"  # kept as a link, never followed
            assert Path("/etc/shadow").read_bytes() not in archived.values()
    assert grp.getgrgid((folder / "manifest.json").stat().st_gid).gr_name == f"{account}-trainers"

    report = json.loads((TRAINER_FILES / name / "report.json").read_text())
    accounted = _sacct_cpu_hours(account, record["start"])
    assert accounted.get(seats[0], (0, 0))[0] >= 1  # the seat's session is in Slurm's books
    for row in report["seats"]:
        jobs, hours = accounted.get(row["seat"], (0, 0.0))
        assert row["jobs"] == jobs
        assert row["cpu_hours"] == pytest.approx(hours, abs=1e-3)
    assert report["total"]["jobs"] == sum(j for j, _ in accounted.values())
    assert report["seats"][0]["display_name"] == "Ada" and report["total"]["energy_wh"] > 0
    assert (TRAINER_FILES / name / "report.csv").read_text().startswith("seat,display_name,jobs")
    assert "<table" in (TRAINER_FILES / name / "report.html").read_text()

    before = {p.name: p.read_bytes() for p in (TRAINER_FILES / name).rglob("*") if p.is_file()}
    again = workshop_cmd(real_hub, "end", name)
    assert again.returncode == 0 and "already ended" in again.stdout
    after = {p.name: p.read_bytes() for p in (TRAINER_FILES / name).rglob("*") if p.is_file()}
    assert after == before

    admin = hub_client.login_token("tadmin")
    for seat in seats:
        wait_until(
            lambda s=seat: hub_client.server(s, admin) is None, 60, f"{seat}'s server cleared"
        )
    wait_until(
        lambda: hub_client.server(seats[1], admin, "extra") is None, 60, "the named server cleared"
    )
    with hub_client._logged_in("ttrainer") as web:  # the cohort page after the end
        rows = web.get(f"/services/factoryhub/api/workshops/{name}").json()["seats"]
        assert [r["state"] for r in rows] == ["stopped", "stopped", "stopped"], rows

    early = workshop_cmd(real_hub, "purge", name)
    assert early.returncode == 1 and "kept 30 days" in early.stderr
    purged = workshop_cmd(real_hub, "purge", name, "--retention-days", "0")
    assert purged.returncode == 0, purged.stderr
    assert not any(_exists(s) for s in seats) and not slurm_account_exists(account)
    assert json.loads((RECORDS / f"{name}.json").read_text())["state"] == "purged"
    assert (TRAINER_FILES / name / "report.json").exists()
