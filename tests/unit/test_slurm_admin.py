"""The admin side of the Slurm seam: argv built from checked names only, and reservations
parsed from what Slurm 22.05's `scontrol show reservation --oneliner` printed on the embedded
site."""

from __future__ import annotations

import pytest

from factoryhub.capacity import parse_reservations
from factoryhub.scheduler.admin import AdminError, SlurmAdmin
from factoryhub.slurmoutput import Completed

SHOWN = (  # two reservations made on the embedded site, as printed (one line each)
    "ReservationName=fhprobe StartTime=2026-12-02T09:30:14 EndTime=2026-12-02T10:30:14"
    " Duration=01:00:00 Nodes=gn01 NodeCnt=1 CoreCnt=16 Features=(null) PartitionName=gpu"
    " Flags=MAINT TRES=cpu=16 Users=root Groups=(null) Accounts=(null) Licenses=(null)"
    " State=INACTIVE BurstBuffer=(null) Watts=n/a MaxStartDelay=(null)\n"
    "ReservationName=fhprobe2 StartTime=2026-12-02T10:30:14 EndTime=2026-12-02T11:00:14"
    " Duration=00:30:00 Nodes=cn01 NodeCnt=1 CoreCnt=32 Features=(null) PartitionName=(null)"
    " Flags=SPEC_NODES TRES=cpu=32 Users=(null) Groups=(null) Accounts=ai-research"
    " Licenses=(null) State=INACTIVE BurstBuffer=(null) Watts=n/a MaxStartDelay=(null)\n"
)


class Recorder:
    """Stands in for SlurmClient.run: records each argv, answers `out`."""

    bin_dir = "/usr/bin"

    def __init__(self, out: str = "") -> None:
        self.argvs: list[list[str]] = []
        self.out = out

    async def run(self, argv, **_):
        self.argvs.append(argv)
        return Completed(0, self.out, "")


def test_reservations_are_read_with_their_users_accounts_and_flags():
    first, second = parse_reservations(SHOWN)
    assert (first.name, first.partition, first.nodes, first.users) == (
        "fhprobe",
        "gpu",
        "gn01",
        ("root",),
    )
    assert first.maintenance and not second.maintenance
    assert (first.cores, second.cores, first.state, first.active) == (16, 32, "INACTIVE", False)
    assert (second.partition, second.accounts, second.users) == ("", ("ai-research",), ())
    assert parse_reservations("No reservations in the system\n") == ()


async def test_a_reservation_is_created_as_one_argv_of_checked_pairs():
    client = Recorder()
    admin = SlurmAdmin(client)
    await admin.create_reservation(
        "ws-intro",
        {"StartTime": "2026-12-03T09:00:00", "Duration": "480", "Users": "ws-intro-01,ws-intro-02"},
    )
    assert client.argvs == [
        [
            "/usr/bin/scontrol",
            "create",
            "reservation",
            "ReservationName=ws-intro",
            "StartTime=2026-12-03T09:00:00",
            "Duration=480",
            "Users=ws-intro-01,ws-intro-02",
        ]
    ]


@pytest.mark.parametrize(
    "call",
    [
        lambda a: a.create_reservation("x y", {}),
        lambda a: a.create_reservation("ws", {"Users": "a b"}),
        lambda a: a.add_account("Bad;name"),
        lambda a: a.add_users(["ok", "x\nReservationName=evil"], ["account=a"]),
        lambda a: a.set_account_limits("ws", ["GrpTRESMins=gres/gpu=60 Flags=x"]),
    ],
)
async def test_text_slurm_would_not_take_is_refused_before_any_command(call):
    client = Recorder()
    with pytest.raises(AdminError):
        await call(SlurmAdmin(client))
    assert client.argvs == []


async def test_accounting_rows_come_from_parsable_output():
    client = Recorder("ai-research|\nws-intro|\n")
    assert await SlurmAdmin(client).accounts() == {"ai-research", "ws-intro"}
    assert client.argvs[0][:5] == [
        "/usr/bin/sacctmgr",
        "--immediate",
        "--noheader",
        "--parsable2",
        "show",
    ]
