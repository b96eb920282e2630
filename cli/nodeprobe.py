"""`python -I -m factoryhub.cli.nodeprobe [--timeout=S] HOST:PORT …`: the probe that
`factoryhub site check --from-nodes` runs as a one-task Slurm job on a node of each partition.

It tries a TCP connection to each address, as a session's server would, and prints one line
each for the check to read (`factoryhub.nodereach.parse_probe`):

    node <the node's Slurm name>
    reach <host> <port> ok | reach <host> <port> <why not>

Standard library only, nothing written, nothing sent: it connects and closes.
"""

from __future__ import annotations

import os
import socket
import sys


def why_not(exc: OSError) -> str:
    """The reason a connection failed, in a few words."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens there)"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer (a firewall may drop it)"
    if isinstance(exc, socket.gaierror):
        return f"the name does not resolve on the node ({exc.strerror})"
    return exc.strerror or str(exc) or type(exc).__name__


def reach(host: str, port: int, timeout: float) -> str:
    """ "ok", or why a TCP connection to host:port failed."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return "ok"
    except OSError as exc:
        return why_not(exc)


def main(argv: list[str]) -> int:
    timeout = 5.0
    targets = []
    for arg in argv:
        if arg.startswith("--timeout="):
            timeout = float(arg.removeprefix("--timeout="))
            continue
        host, _, port = arg.rpartition(":")
        targets.append((host.strip("[]"), int(port)))
    print(f"node {os.environ.get('SLURMD_NODENAME') or socket.gethostname()}", flush=True)
    for host, port in targets:
        print(f"reach {host} {port} {reach(host, port, timeout)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
