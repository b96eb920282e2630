"""The embedded single-host Slurm site: configuration, stand-in GPUs, munge, the accounting
database and the daemons.

A straight list of idempotent steps; running `ensure_slurm()` twice changes nothing the second
time. Node names are read from the rendered slurm.conf, so the layout lives in one file
(`deploy/slurm/slurm.conf.in`).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
from pathlib import Path

from . import accounting
from .daemons import run_daemon, running_pid, stop_daemon, wait_for

SLURM_ETC = Path("/etc/slurm")
RUN_DIR = Path("/run/slurm")
MUNGE_PID = Path("/run/munge/munged.pid")
CTLD_PID = RUN_DIR / "slurmctld.pid"
GPU_MAJOR = 195  # NVIDIA's character-device major number
# The hub's own system account: the hub runs as root today and as this user later; with
# slurm.conf's PrivateData it sees every learner's jobs because it is a Slurm operator.
HUB_USER = "factoryhub"
HUB_HOME = Path("/var/lib/factoryhub")


def render_slurm_conf(template: str, host: str) -> str:
    """slurm.conf for this host from the template (pure)."""
    return template.replace("@HOST@", host)


def node_names(slurm_conf: str) -> list[str]:
    """Node names declared one per NodeName line (pure)."""
    return re.findall(r"^NodeName=(\S+)\s", slurm_conf, flags=re.MULTILINE)


def gpu_device_files(gres_conf: str) -> list[Path]:
    """The device files gres.conf names, with `[a-b]` ranges expanded (pure)."""
    files: list[Path] = []
    for stem, low, high in re.findall(r"File=(\S+?)\[(\d+)-(\d+)\]", gres_conf):
        files += [Path(f"{stem}{i}") for i in range(int(low), int(high) + 1)]
    return files


def _write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def ensure_config(deploy_dir: Path) -> bool:
    """Write slurm.conf, gres.conf, the task prolog and slurmdbd.conf; True when any changed."""
    SLURM_ETC.mkdir(parents=True, exist_ok=True)
    template = (deploy_dir / "slurm" / "slurm.conf.in").read_text()
    changed = _write_if_changed(
        SLURM_ETC / "slurm.conf", render_slurm_conf(template, socket.gethostname())
    )
    gres = (deploy_dir / "slurm" / "gres.conf").read_text()
    changed = _write_if_changed(SLURM_ETC / "gres.conf", gres) or changed
    prolog = SLURM_ETC / "taskprolog"  # run by slurmstepd as each job's user
    changed = (
        _write_if_changed(prolog, (deploy_dir / "slurm" / "taskprolog").read_text()) or changed
    )
    prolog.chmod(0o755)
    dbd = SLURM_ETC / "slurmdbd.conf"  # slurmdbd refuses a file others may read
    changed = (
        _write_if_changed(dbd, (deploy_dir / "slurm" / "slurmdbd.conf").read_text()) or changed
    )
    shutil.chown(dbd, "slurm", "slurm")
    dbd.chmod(0o600)
    return changed


def ensure_gpu_devices() -> list[Path]:
    """Stand-in GPU character devices, unless real NVIDIA devices exist."""
    made = []
    for index, path in enumerate(gpu_device_files((SLURM_ETC / "gres.conf").read_text())):
        if path.exists() and stat.S_ISCHR(path.stat().st_mode):
            continue
        path.unlink(missing_ok=True)
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(GPU_MAJOR, index))
        made.append(path)
    return made


def ensure_dirs(nodes: list[str]) -> None:
    slurm = shutil.chown
    for path in (Path("/var/spool/slurmctld"), Path("/var/log/slurm"), RUN_DIR):
        path.mkdir(parents=True, exist_ok=True)
        slurm(path, "slurm", "slurm")
    for node in nodes:
        Path("/var/spool/slurmd", node).mkdir(parents=True, exist_ok=True)
    Path("/run/munge").mkdir(parents=True, exist_ok=True)
    shutil.chown("/run/munge", "munge", "munge")


def ensure_hub_user() -> bool:
    """The hub's system account (no login shell); True when it was created. Its primary
    group is `nogroup`: a group of its own would be named `factoryhub`, which is the learners'
    login group (site.toml's hub.allowed_group)."""
    try:
        pwd.getpwnam(HUB_USER)
        return False
    except KeyError:
        pass
    argv = ["useradd", "--system", "--no-user-group", "--gid", "nogroup"]
    argv += ["--home-dir", str(HUB_HOME), "--shell", "/usr/sbin/nologin", HUB_USER]
    subprocess.run(argv, check=True)
    return True


def slurmd_pidfile(node: str) -> Path:
    return RUN_DIR / f"slurmd-{node}.pid"


def controller_answers() -> bool:
    result = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=15)
    return "UP" in result.stdout


def nodes_ready() -> bool:
    """True when no node is in an unknown or not-responding state."""
    result = subprocess.run(
        ["sinfo", "--noheader", "--Node", "--format=%N %t"],
        capture_output=True,
        text=True,
        timeout=15,
    )
    states = [line.split()[1] for line in result.stdout.splitlines() if line.strip()]
    return bool(states) and not any(s.endswith("*") or s.startswith("unk") for s in states)


def step(text: str) -> None:
    """Say what the set-up does now: some steps take a minute and print nothing else."""
    print(f"... {text}", flush=True)


def ensure_slurm(deploy_dir: Path) -> list[str]:
    """Configure and start munge, the accounting database (MariaDB, slurmdbd), slurmctld and
    one slurmd per node, then the QoS of `qos.conf` and the hub's account as a Slurm operator;
    return the node names."""
    step(f"Slurm configuration in {SLURM_ETC}")
    changed = ensure_config(deploy_dir)
    conf = (SLURM_ETC / "slurm.conf").read_text()
    nodes = node_names(conf)
    step("state directories, stand-in GPU devices and the hub's system account")
    ensure_dirs(nodes)
    ensure_gpu_devices()
    ensure_hub_user()
    if changed:
        step("the Slurm layout changed: stopping the old daemons")
        stop_slurm(nodes)  # a changed layout needs fresh daemons
    step("starting munge")
    run_daemon(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], MUNGE_PID)
    with_accounting = accounting.accounting_enabled(conf)
    if with_accounting:
        step("starting the accounting database (MariaDB) and slurmdbd")
        accounting.ensure_database()
        accounting.ensure_slurmdbd(accounting.cluster_name(conf))
    step("starting slurmctld and waiting for it to answer (up to 30 s)")
    run_daemon(["/usr/sbin/slurmctld"], CTLD_PID)
    wait_for(controller_answers, 30, "slurmctld", interval=0.3)
    step(f"starting {len(nodes)} slurmd ({', '.join(nodes)}) and waiting for them (up to 60 s)")
    for node in nodes:
        run_daemon(["/usr/sbin/slurmd", "-N", node], slurmd_pidfile(node))
    wait_for(nodes_ready, 60, "Slurm nodes", interval=0.5)
    if with_accounting:
        step("QoS of qos.conf, and the hub's account as a Slurm operator")
        accounting.ensure_qos(
            accounting.parse_qos_conf((deploy_dir / "slurm" / "qos.conf").read_text())
        )
        accounting.ensure_operator(HUB_USER)
    return nodes


def stop_slurm(nodes: list[str]) -> None:
    for node in nodes:
        stop_daemon(slurmd_pidfile(node))
    stop_daemon(CTLD_PID)
    accounting.stop_accounting()


def slurm_status(nodes: list[str]) -> dict[str, int | None]:
    status = {"munged": running_pid(MUNGE_PID), "mariadb": running_pid(accounting.DB_PID)}
    status["slurmdbd"] = running_pid(accounting.DBD_PID)
    status["slurmctld"] = running_pid(CTLD_PID)
    status.update({f"slurmd {node}": running_pid(slurmd_pidfile(node)) for node in nodes})
    return status
