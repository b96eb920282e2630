"""Whether a session on a node can reach the hub (pure): the addresses a session's server must
reach, the argv of the tiny Slurm job that tries them from a node of each partition
(`factoryhub site check --from-nodes`), and what that job printed, read back.

A session's server reports to the hub's API (JupyterHub gives it `JUPYTERHUB_API_URL`, at
`hub_ip:hub_port`) and calls the hub service through the proxy at the public `url`
(announcements, support requests, course progress: `factoryhub.announcements.service_url`).
The service's own port (`service_port`) listens on the hub's loopback and is reached only
through the proxy, so it is not one a node needs. The probe itself is
`factoryhub.cli.nodeprobe`, standard library only, run with the environment's Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from .site import Site
from .sitecheck import ERROR, WARNING, Finding

PROBE_MODULE = "factoryhub.cli.nodeprobe"
PROBE_JOB_NAME = "fh-site-check"
WAIT_SECONDS = 30  # srun --immediate: how long the probe job may wait for a node
CONNECT_SECONDS = 5.0  # the probe's wait for each connection
# JupyterHub's own rule (objects.Server.connect_ip): a hub listening on every interface is
# reached at its host name.
_EVERY_INTERFACE = ("", "0.0.0.0", "::")  # noqa: S104 - names the wildcard, binds nothing
_LINE = re.compile(r"^reach (\S+) (\d{1,5}) (.+)$")


@dataclass(frozen=True)
class Address:
    """One address a session's server must reach, and what it is to the session."""

    what: str  # e.g. "the hub's API"
    host: str
    port: int
    consequence: str  # what a session cannot do without it

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class NodeProbe:
    """One probe job: the partition it asked for, the addresses it tried, and either what it
    printed or why it did not run (`failure`, Slurm's own words)."""

    partition: str
    addresses: tuple[Address, ...]
    output: str = ""
    failure: str = ""


def session_addresses(site: Site, hostname: str) -> tuple[Address, ...]:
    """What a session's server connects to: the hub's API and the proxy's public address.
    `hostname` is the hub host's name, used as JupyterHub uses it when `hub_ip` is every
    interface."""
    hub = site.hub
    api_host = hostname if hub.hub_ip in _EVERY_INTERFACE else hub.hub_ip
    public = urlsplit(hub.url)
    public_port = public.port or (443 if public.scheme == "https" else 80)
    return (
        Address(
            "the hub's API",
            api_host,
            hub.hub_port,
            "its sessions can never report to the hub and never become ready",
        ),
        Address(
            "the hub's public address (the proxy, through which sessions call the hub service)",
            public.hostname or "",
            public_port,
            "its sessions show no announcements, and support requests and course progress fail",
        ),
    )


def probe_argv(srun: str, partition: str, python: str, addresses: tuple[Address, ...]) -> list[str]:
    """`srun` of one task for a minute on one node of `partition`, refused unless it starts
    within `WAIT_SECONDS`, that runs the probe against `addresses`."""
    return [
        srun,
        f"--partition={partition}",
        "--nodes=1",
        "--ntasks=1",
        "--cpus-per-task=1",
        "--mem=256M",
        "--time=1",
        f"--immediate={WAIT_SECONDS}",
        f"--job-name={PROBE_JOB_NAME}",
        "--input=none",
        "--quiet",
        python,
        "-I",
        "-m",
        PROBE_MODULE,
        f"--timeout={CONNECT_SECONDS:g}",
        *(f"{a.host}:{a.port}" for a in addresses),
    ]


def parse_probe(output: str) -> tuple[str, dict[tuple[str, int], str]]:
    """(the node's name, "ok" or the reason, by (host, port)) from the probe's output; lines
    that are not the probe's (a site's prologue, srun's messages) are passed over."""
    node = ""
    reached: dict[tuple[str, int], str] = {}
    for line in output.splitlines():
        if line.startswith("node ") and not node:
            node = line.removeprefix("node ").strip()
        elif match := _LINE.match(line.strip()):
            reached[(match.group(1), int(match.group(2)))] = match.group(3).strip()
    return node, reached


def reach_findings(probes: tuple[NodeProbe, ...]) -> list[Finding]:
    """What the probe jobs found, one sentence each: an address a node cannot reach is an
    error; a probe job that did not run, or said nothing of an address, a warning."""
    found = []
    for probe in probes:
        if probe.failure:
            found.append(
                Finding(
                    WARNING,
                    f"could not check partition {probe.partition} from its nodes: the probe job"
                    f" did not run ({probe.failure})",
                )
            )
            continue
        node, reached = parse_probe(probe.output)
        where = f"from a node of partition {probe.partition} ({node or 'unnamed'})"
        for address in probe.addresses:
            said = reached.get((address.host, address.port))
            if said is None:
                found.append(
                    Finding(
                        WARNING,
                        f"{where}, the probe said nothing of {address.what} at {address}"
                        f" (its output: {probe.output.strip()[:200]!r})",
                    )
                )
            elif said != "ok":
                found.append(
                    Finding(
                        ERROR,
                        f"{where}, {address.what} at {address} is not reachable: {said}:"
                        f" {address.consequence}",
                    )
                )
    return found


def reached_everything(probes: tuple[NodeProbe, ...]) -> str:
    """The sentence for the probes that reached every address ("" when none did): what the
    check saw work, so that an admin knows it was tried, and where."""
    good = []
    for probe in probes:
        node, reached = parse_probe(probe.output)
        if not probe.failure and all(
            reached.get((a.host, a.port)) == "ok" for a in probe.addresses
        ):
            good.append(f"{probe.partition} ({node})")
    if not good:
        return ""
    addresses = " and ".join(str(a) for a in probes[0].addresses)
    return f"from a node of {', '.join(good)}: {addresses} reachable"
