"""Workshop seats (issue 15): coming back to one's seat with a rejoin key (never with a name
alone), per-seat access codes, the site's pool of training accounts, and the report's figures
beside Slurm's rolled-up totals (sreport) and the seats' progress."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from conftest import REPO

from factoryhub.site import EnergySettings, SiteError, parse_site
from factoryhub.workshop import WorkshopRefused, plan_workshop
from factoryhub.workshoppool import PoolError, pool_accounts, pool_state
from factoryhub.workshoprecord import (
    JoinRefused,
    from_plan,
    rejoin_key,
    rejoin_keys_match,
    workshop_from_json,
)
from factoryhub.workshopreport import (
    AccountedJob,
    handout_csv,
    handout_html,
    parse_sacct,
    report_csv,
    report_html,
    report_json,
    usage_report,
)
from factoryhub.workshoprollup import parse_sreport, rollup_window, sreport_check
from factoryhub.workshopstore import SeatClaims, workshop_of

from .test_workshop import NODES, NOW, _node, facts, request

BIG = (*NODES, _node("cn03", "cpu", 256, 1024000))


def workshop(codes: str = "workshop", seat_codes=None, pool=None, **changes):
    plan = plan_workshop(request(start=NOW, codes=codes, **changes), facts(nodes=BIG, pool=pool))
    code = "" if codes == "per-seat" else "ABCDE-FGHJK"
    return from_plan(plan, "test", code, "salt", NOW, seat_codes)


# -- rejoin keys -------------------------------------------------------------------------------


def test_a_rejoin_key_is_the_claims_own_and_unguessable_without_the_secret():
    key = rejoin_key("s3cret", "dl101@t", "ws-dl101-01", "2026-12-02T09:00:00")
    assert len(key) == 11 and key[5] == "-" and not set(key) & set("01OIL")
    assert key == rejoin_key("s3cret", "dl101@t", "ws-dl101-01", "2026-12-02T09:00:00")
    others = {
        rejoin_key("other", "dl101@t", "ws-dl101-01", "2026-12-02T09:00:00"),
        rejoin_key("s3cret", "dl101@t", "ws-dl101-02", "2026-12-02T09:00:00"),
        rejoin_key("s3cret", "dl101@u", "ws-dl101-01", "2026-12-02T09:00:00"),
        rejoin_key("s3cret", "dl101@t", "ws-dl101-01", "2026-12-02T09:00:01"),
    }
    assert key not in others and len(others) == 4
    assert rejoin_keys_match(key, key.lower().replace("-", " "))
    assert not rejoin_keys_match(key, "") and not rejoin_keys_match(key, "AAAAA-AAAAA")


def test_the_same_name_with_the_code_gets_no_seat_back_and_no_second_seat(tmp_path):
    ws = workshop(seats=3)
    claims = SeatClaims(tmp_path / "c.sqlite")
    assert claims.claim(ws, "Ada Lovelace", NOW) == "ws-dl101-01"
    with pytest.raises(JoinRefused, match="Someone has already joined as 'ada lovelace'"):
        claims.claim(ws, "ada lovelace", NOW)  # an attacker who knows a name and the code
    assert set(claims.claims(ws)) == {"ws-dl101-01"}  # nothing taken by the refusal
    assert claims.claim(ws, "Grace", NOW) == "ws-dl101-02"


def test_the_claims_file_is_private_from_the_start(tmp_path):
    SeatClaims(tmp_path / "c.sqlite")
    assert (tmp_path / "c.sqlite").stat().st_mode & 0o777 == 0o600


def test_the_rejoin_key_gives_that_seat_back_and_no_other(tmp_path):
    ws = workshop(seats=3)
    claims = SeatClaims(tmp_path / "c.sqlite")
    claims.claim(ws, "Ada", NOW)
    claims.claim(ws, "Grace", NOW)
    ada, grace = claims.rejoin_key(ws, "ws-dl101-01"), claims.rejoin_key(ws, "ws-dl101-02")
    assert ada != grace and claims.rejoin_key(ws, "ws-dl101-03") is None  # free: no key
    assert claims.seat_of_rejoin_key(ws, ada.lower()).seat == "ws-dl101-01"
    assert claims.seat_of_rejoin_key(ws, grace).display_name == "Grace"
    assert claims.seat_of_rejoin_key(ws, "AAAAA-AAAAA") is None
    again = SeatClaims(tmp_path / "c.sqlite")  # another process: the same secret, same keys
    assert again.rejoin_key(ws, "ws-dl101-01") == ada
    later = replace(ws, created="2026-12-09T09:00:00")  # a later workshop of the same name
    assert claims.seat_of_rejoin_key(later, ada) is None


# -- per-seat codes --------------------------------------------------------------------------


def test_per_seat_codes_admit_each_to_its_own_seat_and_are_kept_hashed():
    codes = {"ws-dl101-01": "AAAAA-BBBBB", "ws-dl101-02": "CCCCC-DDDDD"}
    ws = workshop("per-seat", codes, seats=2)
    text = ws.to_json()
    assert "AAAAA" not in text and "CCCCC" not in text
    again = workshop_from_json(text)
    assert again == ws and again.codes == "per-seat"
    assert again.seat_of_code("aaaaa bbbbb") == "ws-dl101-01"
    assert again.seat_of_code("CCCCC-DDDDD") == "ws-dl101-02"
    assert again.seat_of_code("ABCDE-FGHJK") is None and again.seat_of_code("") is None
    assert not again.code_matches("") and not again.code_matches("AAAAA-BBBBB")
    # the same code on another seat's slot: each seat's hash has its own salt
    assert len(set(again.seat_code_sha256.values())) == 2


def test_a_per_seat_claim_takes_that_seat_only(tmp_path):
    ws = workshop("per-seat", {"ws-dl101-01": "A", "ws-dl101-02": "B"}, seats=2)
    claims = SeatClaims(tmp_path / "c.sqlite")
    assert claims.claim(ws, "Grace", NOW, only="ws-dl101-02") == "ws-dl101-02"
    assert claims.claim(ws, "Ada", NOW, only="ws-dl101-02") is None
    assert set(claims.claims(ws)) == {"ws-dl101-02"}


def test_the_handout_has_a_line_and_a_slip_per_seat_with_per_seat_codes():
    codes = {"ws-dl101-01": "AAAAA-BBBBB", "ws-dl101-02": "CCCCC-DDDDD"}
    ws = workshop("per-seat", codes, seats=2)
    rows = handout_csv(ws, "http://hub:8000", "", codes).splitlines()
    assert rows[0].startswith("workshop,seat,join_url,access_code")
    assert rows[1].startswith("dl101,ws-dl101-01,http://hub:8000/hub/workshop/dl101,AAAAA-BBBBB")
    assert rows[2].startswith("dl101,ws-dl101-02,http://hub:8000/hub/workshop/dl101,CCCCC-DDDDD")
    assert len(rows) == 3
    page = handout_html(ws, "http://hub:8000", "", "Site", codes)
    assert page.count("class='slip'") == 2 and "CCCCC-DDDDD" in page
    assert "rejoin key" in page
    one = handout_csv(workshop(seats=2), "http://hub:8000", "ABCDE-FGHJK").splitlines()
    assert len(one) == 2 and ",ABCDE-FGHJK," in one[1]


def test_an_unknown_code_mode_is_refused_with_a_sentence():
    with pytest.raises(WorkshopRefused, match="--codes 'each': choose workshop or per-seat"):
        plan_workshop(request(codes="each"), facts())


# -- the site's pool ------------------------------------------------------------------------


def test_the_pool_is_read_as_slurm_host_lists():
    assert pool_accounts(["train[01-03]", "guest7", "train02"]) == (
        "train01",
        "train02",
        "train03",
        "guest7",
    )
    assert pool_accounts(["t[008-010,12]"]) == ("t008", "t009", "t010", "t12")


@pytest.mark.parametrize(
    ("entries", "sentence"),
    [
        (["train[1-99999]"], "more than 5000 accounts"),
        (["train[9-1]"], "counts down"),
        (["Train01"], "is not an account name or a range"),
        (["a;rm -rf /"], "is not an account name or a range"),
        (["-oops"], "is not an account name or a range"),
    ],
)
def test_a_pool_that_is_not_a_list_of_accounts_is_refused(entries, sentence):
    with pytest.raises(PoolError, match=sentence.replace("(", r"\(")):
        pool_accounts(entries)


def test_site_toml_names_the_pool_and_refuses_a_bad_one(demo_site):
    assert demo_site.workshops.account_pool == ()  # the embedded site makes ws-<name>-NN
    demo = (REPO / "hub_config" / "site.toml").read_text()
    assert "\n[workshops]\naccount_pool = []\n" in demo  # documented, empty
    text = demo.replace("account_pool = []", 'account_pool = ["train[001-060]"]')
    assert parse_site(text).workshops.account_pool == ("train[001-060]",)
    with pytest.raises(SiteError, match=r"workshops\.account_pool: 'train 1'"):
        parse_site(text.replace("train[001-060]", "train 1"))
    with pytest.raises(SiteError, match=r"unknown key workshops\.pool"):
        parse_site(text.replace("account_pool", "pool"))


def test_the_pool_state_says_which_accounts_are_free_and_why_others_are_not():
    accounts = pool_accounts(["train[01-06]"])
    state = pool_state(
        accounts,
        existing={"train01", "train02", "train03", "train04", "train05"},
        held_by={"train02": "older", "train03": "older"},
        staff={"train05"},
    )
    assert state.free == ("train01", "train04")
    assert state.note == (
        "2 held by workshop(s) older; 1 do not exist on this site: train06;"
        " 1 are admins or trainers (train05)"
    )


def test_a_workshop_takes_its_seats_from_the_pool_or_is_refused_when_it_is_too_small():
    plan = plan_workshop(request(seats=2), facts(pool=("train01", "train04", "train07")))
    assert plan.seats == ("train01", "train04") and plan.pooled
    assert plan.reservation_settings(NOW)["Users"] == "train01,train04"
    assert any("from the site's pool" in line for line in plan.describe())
    with pytest.raises(WorkshopRefused) as refused:
        plan_workshop(request(seats=4), facts(pool=("train01",), pool_note="3 held by x"))
    assert refused.value.reasons == (
        "--seats 4: the site's account pool has 1 free account(s) (3 held by x); ask for 1 to"
        " 1, or grow the pool",
    )
    # pool accounts exist by design: their names are not "taken"
    taken = facts(pool=("train01", "train02"), taken_names=frozenset({"train01", "train02"}))
    assert plan_workshop(request(seats=2), taken).seats == ("train01", "train02")


def _record(folder, name, seats, state="active", created="2026-12-02T09:00:00"):
    ws = replace(workshop(seats=len(seats)), name=name, seats=tuple(seats), state=state)
    ws = replace(ws, created=created)
    (folder / f"{name}.json").write_text(ws.to_json())
    return ws


def test_the_hub_finds_a_pool_seats_workshop_by_its_record_and_sees_changes(tmp_path):
    _record(tmp_path, "older", ["train01", "train02"], state="purged")
    assert workshop_of(tmp_path, "train01") is None  # a purged workshop holds nobody
    newer = _record(tmp_path, "newer", ["train01"])
    assert workshop_of(tmp_path, "train01") == newer
    assert workshop_of(tmp_path, "train02") is None and workshop_of(tmp_path, "alice") is None
    ending = replace(newer, state="ending")
    tmp = tmp_path / ".newer.json.tmp"
    tmp.write_text(ending.to_json())
    tmp.rename(tmp_path / "newer.json")  # how root writes a record: a rename into the folder
    assert workshop_of(tmp_path, "train01").state == "ending"
    assert workshop_of(tmp_path / "missing", "train01") is None


# -- the report: progress and sreport -------------------------------------------------------

# `sreport -nP cluster AccountUtilizationByUser account=ws-dl101 … -t seconds -T cpu,gres/gpu`
SREPORT = """\
factory|ws-dl101|||cpu|7440
factory|ws-dl101|||gres/gpu|0
factory|ws-dl101|ws-dl101-01||cpu|7440
factory|ws-dl101|ws-dl101-01||gres/gpu|0
factory|training|alice||cpu|99
not a row
"""


def test_sreport_is_read_per_account_and_user():
    rolled = parse_sreport(SREPORT, "ws-dl101")
    assert rolled.total == {"cpu": 7440, "gres/gpu": 0}
    assert rolled.users == {"ws-dl101-01": {"cpu": 7440, "gres/gpu": 0}}


def _job(seconds: int, cpus: int = 2, account: str = "ws-dl101") -> AccountedJob:
    return AccountedJob("41", "ws-dl101-01", account, "COMPLETED", seconds, cpus, 0, None)


def test_the_rollup_window_is_the_slots_whole_hours_rolled_up_by_now():
    ws = replace(workshop(), start="2026-12-02T09:20:00", end="2026-12-02T11:30:00")
    assert rollup_window(ws, datetime(2026, 12, 2, 10, 5)) is None  # 09:00 not yet rolled
    assert rollup_window(ws, datetime(2026, 12, 2, 10, 15)) == (
        datetime(2026, 12, 2, 9, 0),
        datetime(2026, 12, 2, 10, 0),
    )
    assert rollup_window(ws, datetime(2026, 12, 3, 8, 0))[1] == datetime(2026, 12, 2, 12, 0)
    ended_early = replace(ws, ended="2026-12-02T10:40:00")
    assert rollup_window(ended_early, datetime(2026, 12, 3, 8, 0))[1] == datetime(2026, 12, 2, 11)


def test_sreport_and_sacct_for_the_same_hours_agree_or_the_report_says_they_differ():
    window = (datetime(2026, 12, 2, 9), datetime(2026, 12, 2, 11))
    rolled = parse_sreport(SREPORT, "ws-dl101")
    same = sreport_check(window, rolled, [_job(3720)], [_job(3720)], "ws-dl101")
    assert same.agree and same.covers_slot and same.sreport_cpu_hours == round(7440 / 3600, 4)
    assert "they agree" in same.sentence() and "09:00:00 to 2026-12-02T11:00:00" in same.sentence()
    off = sreport_check(window, rolled, [_job(3000)], [_job(3720)], "ws-dl101")
    assert off.agree is False and "they DIFFER" in off.sentence() and not off.covers_slot
    none = sreport_check(None, None, [], [_job(10)], "ws-dl101")
    assert none.agree is None and "not rolled up an hour of this slot yet" in none.sentence()


def test_the_report_has_progress_per_seat_and_the_sreport_check():
    ws = workshop(seats=2)
    progress = {
        "ws-dl101-01": SimpleNamespace(
            notebooks_opened=2, cells_run=40, exercises_passed=3, notebooks_completed=1
        ),
        "ws-dl101-02": SimpleNamespace(notebooks_opened=True, exercises_passed="9"),  # junk
    }
    jobs = parse_sacct("41|ws-dl101-01|ws-dl101|COMPLETED|3720|cpu=2,mem=4G,node=1|0\n")
    check = sreport_check(
        (datetime(2026, 12, 2, 9), datetime(2026, 12, 2, 11)),
        parse_sreport(SREPORT, "ws-dl101"),
        jobs,
        jobs,
        "ws-dl101",
    )
    report = usage_report(ws, jobs, {}, EnergySettings(), progress, check)
    one, two = report.seats
    assert (one.notebooks_opened, one.exercises_passed) == (2, 3)
    assert (two.notebooks_opened, two.exercises_passed) == (0, 0)
    assert (report.total.notebooks_opened, report.total.exercises_passed) == (2, 3)
    assert (one.notebooks_completed, two.notebooks_completed) == (1, 0)
    assert report.total.notebooks_completed == 1
    header = ",notebooks_opened,notebooks_completed,exercises_passed"
    assert report_csv(report).splitlines()[0].endswith(header)
    assert report_csv(report).splitlines()[1].endswith(",2,1,3")
    assert "<th>notebooks completed</th>" in report_html(report, "T")
    assert json.loads(report_json(report))["total"]["notebooks_completed"] == 1
    assert "they agree" in report_html(report, "T")
    data = json.loads(json.dumps(report, default=lambda o: o.__dict__))
    assert data["sreport"]["agree"] is True
    assert report.total.cpu_hours == check.sreport_cpu_hours  # the whole slot rolled up


def test_a_slot_before_the_clock_is_a_plain_timedelta():
    assert rollup_window(workshop(), NOW + timedelta(minutes=5)) is None


# -- a seat's next holder ----------------------------------------------------------------------


def test_a_new_holder_of_a_seat_shuts_out_the_earlier_holder_and_trainer():
    """A pool account (or a seat name a later workshop of the same name makes again) taken by a
    new person: the earlier holder's hub cookie (it names the account's cookie_id), their API
    and OAuth tokens and the earlier workshop's trainer's share of the server stop working. On
    the code before, none was touched: the earlier holder's 14-day cookie opened the next
    learner's session. The hub's own ORM, in memory."""
    from jupyterhub import orm

    from factoryhub.spawners.workshop import forget_earlier_holder

    db = orm.new_session_factory("sqlite://")()
    seat, trainer, other = orm.User(name="train01"), orm.User(name="alice"), orm.User(name="bob")
    db.add_all([seat, trainer, other, orm.OAuthClient(identifier="jupyterhub")])
    db.commit()
    server = orm.Spawner(user=seat, name="")
    theirs = orm.Spawner(user=other, name="")
    db.add_all([server, theirs])
    db.commit()
    old_token = seat.new_api_token(note="workshop a")
    bobs_token = other.new_api_token(note="bob's own")
    db.add_all(
        [
            orm.Share(owner=seat, spawner=server, user=trainer, scopes=["access:servers"]),
            orm.Share(owner=other, spawner=theirs, user=trainer, scopes=["access:servers"]),
        ]
    )
    db.commit()
    old_cookie = seat.cookie_id

    forget_earlier_holder(db, seat)

    assert db.query(orm.User).filter(orm.User.cookie_id == old_cookie).first() is None
    assert orm.APIToken.find(db, old_token) is None
    assert [s.owner.name for s in db.query(orm.Share)] == ["bob"]  # another's share stays
    assert orm.APIToken.find(db, bobs_token) is not None


def test_a_pool_seats_scratch_is_emptied_for_its_next_holder_without_following_links(
    tmp_path, monkeypatch
):
    import os
    import pwd

    from factoryhub.cli import seats

    me = pwd.getpwuid(os.getuid())
    home, scratch, outside = tmp_path / "home", tmp_path / "scratch", tmp_path / "outside"
    for folder in (home, scratch / "train001" / "run", outside):
        folder.mkdir(parents=True)
    (outside / "keep.txt").write_text("not the seat's")
    (home / "notes.txt").write_text("the last holder's")
    (scratch / "train001" / "run" / "big.bin").write_bytes(b"x" * 10)
    os.symlink(outside, scratch / "train001" / "elsewhere")  # planted by the last holder
    fields = list(me)
    fields[0], fields[2], fields[5] = "train001", 4242, str(home)  # name, uid, home of a pool seat
    seat = pwd.struct_passwd(fields)
    for folder in (home, scratch / "train001"):
        os.chown(folder, 4242, -1)  # the seat's own folders (the tests run as root)
    monkeypatch.setattr(seats.pwd, "getpwnam", lambda name: seat)
    assert seats.clean_home("train001", ["train001"], str(scratch)) == 3
    assert list(home.iterdir()) == [] and list((scratch / "train001").iterdir()) == []
    assert (outside / "keep.txt").read_text() == "not the seat's"  # the link was not followed


def test_a_seat_given_out_joins_the_hub_group_the_services_token_right_is_limited_to():
    """The hub service may make tokens only for the hub's group of seats (`tokens!group=`): a
    seat joins it when the join page gives it out (once, however often), and JupyterHub's own
    scope filter lets the service's role reach that seat and not an admin."""
    from jupyterhub import orm
    from jupyterhub.scopes import check_scope_filter, parse_scopes

    from factoryhub.spawners.hubconfig import SERVICE_SCOPES
    from factoryhub.spawners.workshop import in_seats_group
    from factoryhub.workshop import SEATS_GROUP

    db = orm.new_session_factory("sqlite://")()
    seat, admin = orm.User(name="ws-intro-01"), orm.User(name="admin", admin=True)
    db.add_all([seat, admin])
    db.commit()
    in_seats_group(db, seat)
    in_seats_group(db, seat)
    assert [g.name for g in seat.groups] == [SEATS_GROUP] and admin.groups == []
    assert "tokens" not in SERVICE_SCOPES  # never the unfiltered right
    tokens = parse_scopes([s for s in SERVICE_SCOPES if s.startswith("tokens")])["tokens"]
    assert check_scope_filter(tokens, seat, "user")
    assert not check_scope_filter(tokens, admin, "user")
