"""Writes the *composed* fixtures of this folder (see README.md): one scenario — the same jobs,
reservations, nodes and accounts — printed the way each Slurm release prints it, following
that release's sources in SchedMD/slurm at the tag named in `RELEASES`. Each difference
between releases is a field of `Release`, with the source that shows it.

The 22.05 files recorded live on the embedded site (Debian's slurm-wlm 22.05.8) are not
written here; the text files of later releases whose format did not change copy their rows.

Run from the repository root: python tests/unit/data/slurm/compose.py
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
LIVE_2205 = HERE / "22.05"


@dataclass(frozen=True)
class Release:
    series: str
    tag: str  # SchedMD/slurm tag the files follow
    release: str  # what `scontrol --version` prints after "slurm "
    parser: str  # CLI data parser: src/interfaces/data_parser.h SLURM_DATA_PARSER_VERSION
    meta: str  # "openapi" (22.05), "plugins" (23.02), "plugin" (23.11+)
    state_list: bool  # job_state a list of base state and flags (v0.0.40+)
    gres_prefix: str  # gres_prepend_tres_type: "gres:" to 23.02, "gres/" from 23.11
    numbers: str  # "plain" (v0.0.38), "times-plain" (v0.0.39), "struct" (v0.0.40+)
    resv_comment: bool  # reservation_info.c prints Comment= (23.02+)
    resv_watts: bool  # reservation_info.c prints Watts= (to 24.05)
    resv_allowed: bool  # reservation_info.c prints AllowedPartitions= QOS= (25.11)
    resv_flag: str  # a reservation flag new in this release ("" if none)
    node_state: str  # a node state (sinfo %t) new in this release ("" if none)
    test_only_cluster: bool  # allocate.c: "to start at T on cluster C a using …" (25.05+)
    job_flag: str  # a job state flag new in this release ("" if none)


RELEASES = (
    Release("22.05", "slurm-22-05-8-1", "22.05.8", "v0.0.38", "openapi", False, "gres:",
            "plain", False, True, False, "", "", False, ""),
    Release("23.02", "slurm-23-02-7-1", "23.02.7", "v0.0.39", "plugins", False, "gres:",
            "times-plain", True, True, False, "", "", False, ""),
    Release("23.11", "slurm-23-11-10-1", "23.11.10", "v0.0.40", "plugin", True, "gres/",
            "struct", True, True, False, "", "", False, ""),
    Release("24.05", "slurm-24-05-8-1", "24.05.8", "v0.0.41", "plugin", True, "gres/",
            "struct", True, True, False, "USER_DELETE", "block", False, ""),
    Release("24.11", "slurm-24-11-7-1", "24.11.7", "v0.0.42", "plugin", True, "gres/",
            "struct", True, False, False, "", "", False, ""),
    Release("25.05", "slurm-25-05-8-1", "25.05.8", "v0.0.43", "plugin", True, "gres/",
            "struct", True, False, False, "FORCE_START", "ext", True, ""),
    Release("25.11", "slurm-25-11-7-1", "25.11.7", "v0.0.44", "plugin", True, "gres/",
            "struct", True, False, True, "", "", True, "EXPEDITING"),
)  # fmt: skip

# The scenario: Unix times in 2026-12 (local time is whatever TZ the tests set).
T0 = 1796189000


def _meta(r: Release) -> dict:
    major, minor, micro = r.release.split(".")
    version = {"major": major, "micro": micro, "minor": minor}
    if r.meta == "openapi":  # 22.05 openapi/v0.0.38: src/plugins/openapi/v0.0.38/jobs.c
        return {
            "plugin": {"type": f"openapi/{r.parser}", "name": f"Slurm OpenAPI {r.parser}"},
            "Slurm": {"version": {k: int(v) for k, v in version.items()}, "release": r.release},
        }
    if r.meta == "plugins":  # 23.02: src/interfaces/data_parser.c _populate_cli_response_meta
        return {
            "plugins": {
                "data_parser": f"data_parser/{r.parser}",
                "accounting_storage": "accounting_storage/slurmdbd",
            },
            "command": ["squeue", "--json"],
            "Slurm": {"version": {k: int(v) for k, v in version.items()}, "release": r.release},
        }
    # 23.11+: parsers.c PARSER_ARRAY(OPENAPI_META), filled by data_parser_cli_meta()
    return {
        "plugin": {
            "type": "",
            "name": "",
            "data_parser": f"data_parser/{r.parser}",
            "accounting_storage": "accounting_storage/slurmdbd",
        },
        "client": {"source": "", "user": "factoryhub", "group": "factoryhub"},
        "command": ["squeue", "--json"],
        "slurm": {"version": version, "release": r.release, "cluster": "factory"},
    }


def _time(r: Release, seconds: int | None) -> object:
    """UINT64 (v0.0.38/39) or TIMESTAMP_NO_VAL (v0.0.40+: UINT64_NO_VAL_STRUCT)."""
    if r.numbers in ("plain", "times-plain"):
        return seconds or 0
    if seconds is None:
        return {"set": False, "infinite": False, "number": 0}
    return {"set": True, "infinite": False, "number": seconds}


def _count(r: Release, value: int | None) -> object:
    """UINT32_NO_VAL: a plain number in v0.0.38 (null when INFINITE: openapi/v0.0.38
    jobs.c), the set/infinite/number struct after; None stands for INFINITE."""
    if r.numbers == "plain":
        return value
    if value is None:
        return {"set": False, "infinite": True, "number": 0}
    return {"set": True, "infinite": False, "number": value}


def _state(r: Release, base: str, flag: str = "") -> object:
    """JOB_STATE: job_state_string() (a flag's word before the base state's) up to v0.0.39;
    a list of the base state and its flags from v0.0.40 (add_parse_bit_flag_array)."""
    if r.state_list:
        return [base, flag] if flag else [base]
    return flag or base


def _job(r: Release, job_id: int, **fields: object) -> dict:
    record = {
        "account": "training",
        "batch_flag": True,
        "cluster": "factory",
        "comment": "",
        "cpus": _count(r, 1),
        "end_time": _time(r, None),
        "job_id": job_id,
        "job_state": _state(r, "PENDING"),
        "name": "",
        "nodes": "",
        "partition": "cpu",
        "qos": "normal",
        "start_time": _time(r, None),
        "state_reason": "None",
        "submit_time": _time(r, T0),
        "time_limit": _count(r, 60),
        "tres_per_node": "",
        "user_name": "alice",
    }
    record.update(fields)
    return record


def squeue_json(r: Release) -> str:
    jobs = [
        _job(  # a running session on a GPU node, its port in the comment
            r,
            101,
            job_state=_state(r, "RUNNING"),
            name="fh:demo:alice:",
            comment="fhport:8888",
            nodes="gn01",
            partition="gpu",
            cpus=_count(r, 4),
            tres_per_node=f"{r.gres_prefix}gpu:h100:1",
            start_time=_time(r, T0 + 10),
            end_time=_time(r, T0 + 10 + 3600),
        ),
        _job(  # queued behind others, with an expected start
            r,
            102,
            name="fh:demo:bob:",
            user_name="bob",
            state_reason="Resources",
            cpus=_count(r, 2),
            time_limit=_count(r, 120),
            start_time=_time(r, T0 + 7200),
            end_time=_time(r, T0 + 7200 + 7200),
        ),
        _job(  # allocated, its nodes still booting (CONFIGURING flag on RUNNING)
            r,
            103,
            job_state=_state(r, "RUNNING", "CONFIGURING"),
            name="fh:demo:carol:",
            user_name="carol",
            nodes="cn01",
            start_time=_time(r, T0 + 20),
            end_time=_time(r, T0 + 20 + 3600),
        ),
        _job(  # ended, its epilog still running (COMPLETING flag on COMPLETED)
            r,
            104,
            job_state=_state(r, "COMPLETED", "COMPLETING"),
            name="sweep",
            nodes="cn02",
            time_limit=_count(r, None),
            start_time=_time(r, T0 + 30),
            end_time=_time(r, T0 + 90),
        ),
    ]
    if r.job_flag:  # 25.11: JOB_EXPEDITING (slurm_protocol_defs.c job_state_string)
        jobs.append(_job(r, 105, job_state=_state(r, "PENDING", r.job_flag), name="requeued"))
    return json.dumps({"meta": _meta(r), "errors": [], "warnings": [], "jobs": jobs}, indent=1)


def reservations(r: Release) -> str:
    """src/api/reservation_info.c slurm_sprint_reservation_info, one_liner."""

    def one(name, start, end, duration, nodes, cores, flags, users, accounts, state, comment):
        line = (
            f"ReservationName={name} StartTime={start} EndTime={end} Duration={duration}"
            f" Nodes={nodes} NodeCnt=2"
            f" CoreCnt={cores} Features=(null) PartitionName=(null) Flags={flags}"
            f" TRES=cpu={cores}"
        )
        if r.resv_allowed:
            line += " AllowedPartitions=(null) QOS=(null)"
        line += (
            f" Users={users} Groups=(null) Accounts={accounts} Licenses=(null)"
            f" State={state} BurstBuffer=(null)"
        )
        if r.resv_watts:
            line += " Watts=n/a"
        line += " MaxStartDelay=(null)"
        if r.resv_comment and comment:
            line += f" Comment={comment}"
        return line

    maint_flags = "MAINT,IGNORE_JOBS,SPEC_NODES,ALL_NODES"
    workshop_flags = "SPEC_NODES,PURGE_COMP=00:05:00"
    if r.resv_flag:
        workshop_flags += f",{r.resv_flag}"
    return (
        "\n".join(
            (
                one(
                    "ws-intro",
                    "2026-12-02T09:00:00",
                    "2026-12-02T17:00:00",
                    "08:00:00",
                    "cn[01-02]",
                    8,
                    workshop_flags,
                    "alice,bob",
                    "ws-intro",
                    "ACTIVE",
                    # an admin's free text: spaces and Key=value words (23.02+)
                    "Intro workshop State=INACTIVE Users=mallory",
                ),
                one(
                    "maint-dec",
                    "2026-12-20T06:00:00",
                    "2026-12-20T18:00:00",
                    "12:00:00",
                    "gn[01-02]",
                    32,
                    maint_flags,
                    "root",
                    "(null)",
                    "INACTIVE",
                    "",
                ),
            )
        )
        + "\n"
    )


def sinfo_nodes(r: Release) -> str:
    """The 22.05 rows (sinfo -O formats unchanged: doc/man/man1/sinfo.1 at each tag), and a
    node in the state this release adds (node_state_string_compact, lower-cased by sinfo)."""
    rows = (LIVE_2205 / "sinfo_nodes.txt").read_text()
    if r.node_state:
        rows += f"xn01|cpu*|0/0/8/8|(null)|gpu:0|{r.node_state}|32000|0|\n"
    return rows


def partitions(r: Release) -> str:
    """src/api/partition_info.c: only the keys FactoryHub reads, as that file prints them."""
    rows = (
        ("cpu", "YES", "01:00:00", "12:00:00", "UP"),
        ("gpu", "NO", "01:00:00", "1-00:00:00", "UP"),
        ("debug", "NO", "00:15:00", "00:30:00", "DOWN"),
        ("long", "NO", "NONE", "UNLIMITED", "INACTIVE"),
    )
    return "".join(
        f"PartitionName={name} Default={default} DefaultTime={dflt} MaxTime={most}"
        f" Nodes=cn[01-02] State={state} TotalCPUs=64 TotalNodes=2\n"
        for name, default, dflt, most, state in rows
    )


def nodes(r: Release) -> str:
    """src/api/node_info.c: NodeName, NodeAddr and NodeHostName as it prints them."""
    return "".join(
        f"NodeName={name} Arch=x86_64 CoresPerSocket=1 NodeAddr={addr} NodeHostName={host}"
        f" Version={r.release} State=IDLE Partitions=cpu\n"
        for name, addr, host in (
            ("cn01", "10.1.0.11", "cn01"),
            ("cn02", "10.1.0.12", "cn02"),
            ("gn01", "gn01.ib.factory", "gn01"),
        )
    )


def config(r: Release) -> str:
    """src/api/config_info.c: "%-23s = %s" per key, then the controllers' ping lines."""
    pairs = (
        ("AccountingStorageTRES", "cpu,mem,energy,node,billing,fs/disk,vmem,pages,gres/gpu"),
        ("AccountingStorageType", "accounting_storage/slurmdbd"),
        ("ClusterName", "factory"),
        ("SLURM_VERSION", r.release),
        ("SelectType", "select/cons_tres"),
    )
    body = "".join(f"{key:<23} = {value}\n" for key, value in pairs)
    return (
        f"Configuration data as of 2026-12-02T11:32:39\n{body}\n"
        "Slurmctld(primary) at ctl1 is UP\nSlurmctld(backup) at ctl2 is DOWN\n"
    )


def test_only(r: Release) -> str:
    """src/api/allocate.c slurm_job_will_run, as sbatch prints it (info: "sbatch: …")."""
    if r.test_only_cluster:
        return (
            "sbatch: Job 9 to start at 2026-12-02T12:40:00 on cluster factory a using 4"
            " processors on nodes gn01 in partition gpu\n"
        )
    return (
        "sbatch: Job 9 to start at 2026-12-02T12:40:00 using 4 processors on nodes gn01 in"
        " partition gpu\n"
    )


def write(r: Release) -> None:
    folder = HERE / r.series
    folder.mkdir(exist_ok=True)
    files = {
        "squeue.json": squeue_json(r) + "\n",
        "scontrol_show_reservation.txt": reservations(r),
        "sbatch_test_only.txt": test_only(r),
        "salloc.txt": "salloc: Granted job allocation 4242\n",  # src/salloc/salloc.c
        "sbatch_parsable.txt": "4243;factory\n",  # src/sbatch/sbatch.c (--parsable)
        # squeue --noheader --states=PENDING --sort=-p,i --format=%i (doc/man/man1/squeue.1)
        "squeue_ids.txt": "4250\n4243\n4247_3\n4251\n",
    }
    if r.series != "22.05":  # recorded live at 22.05
        files.update(
            {
                "scontrol_version.txt": f"slurm {r.release}\n",  # proc_args.c
                "scontrol_ping.txt": "Slurmctld(primary) at ctl1 is UP\n",  # scontrol.c
                "scontrol_show_config.txt": config(r),
                "scontrol_show_partition.txt": partitions(r),
                "scontrol_show_node.txt": nodes(r),
                "sinfo_nodes.txt": sinfo_nodes(r),
            }
        )
        for same in (
            "sacct_workshop.txt",
            "sacct_energy.txt",
            "sacctmgr_assoc.txt",
            "sacctmgr_qos.txt",
            "sshare.txt",
            "sreport_account_by_user.txt",
        ):
            files[same] = (LIVE_2205 / same).read_text()
    for name, text in files.items():
        (folder / name).write_text(text)


if __name__ == "__main__":
    for release in RELEASES:
        write(release)
