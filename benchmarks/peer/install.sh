#!/usr/bin/env bash
# The peer of the spawn benchmarks, installed as its README says, idempotently, as root:
# stock batchspawner 1.3.0 in its own virtual environment with the same JupyterHub and
# JupyterLab as FactoryHub, and sudo (batchspawner runs Slurm's commands through `sudo -E -u`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=/opt/factoryhub/peer-venv
dpkg -s sudo >/dev/null 2>&1 || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends sudo
}
case "$(readlink -f "$venv/bin/python" 2>/dev/null)" in
  /usr/bin/python3*) ;;
  *) rm -rf "$venv"; /usr/bin/python3 -m venv "$venv" ;;
esac
if ! cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/requirements.txt"
fi
chmod -R a+rX "$venv"
# Stock batchspawner connects to the node *name* Slurm reports (%B). On a real cluster node names
# resolve; on the embedded one-host site they do not, so map each node to its NodeAddr (needs
# slurmctld up).
scontrol show node --oneliner | sed -n 's/^NodeName=\([^ ]*\) .*NodeAddr=\([^ ]*\) .*/\2 \1/p' |
  while read -r addr name; do
    grep -qE "^[0-9.]+ $name # factoryhub embedded node$" /etc/hosts ||
      echo "$addr $name # factoryhub embedded node" >> /etc/hosts
  done
