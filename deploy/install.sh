#!/usr/bin/env bash
# Install everything FactoryHub needs on Debian 12, as root, idempotently:
#   deploy/install.sh          the demo (munge, Slurm and its accounting database, Python, proxy)
#   deploy/install.sh --test   the same, plus what the tests need (Chromium, test packages)
#   deploy/install.sh --service-node
#                              only FactoryHub's part, for a site's own service node: Python venv,
#                              the proxy (Debian's nodejs/npm if missing), fh-act-as and its
#                              sudoers file, the systemd units, Lmod (FACTORYHUB_LMOD=no: not);
#                              no Slurm daemon, munge key, database or demo account. The site's
#                              Slurm client commands and munge come from its own packages. Then
#                              `factoryhub hub setup` (docs/admin-guide.md).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
prefix=/opt/factoryhub
with_tests=${1:-}
case "$with_tests" in
  "" | --test | --service-node) ;;
  *) echo "usage: deploy/install.sh [--test | --service-node]" >&2; exit 2 ;;
esac
service_node=""
[ "$with_tests" = "--service-node" ] && service_node=yes

if [ -n "$service_node" ]; then
  debs=(python3 python3-venv sudo)
  command -v npm >/dev/null 2>&1 || debs+=(nodejs npm)
  [ "${FACTORYHUB_LMOD:-yes}" = no ] || debs+=(lmod)
else
debs=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server python3 python3-venv sudo)
# Lmod for the site's software environments; btrfs for the embedded site's project and scratch
# tiers with quotas (this kernel has no ext4/XFS quota support; btrfs quota groups need none).
debs+=(lmod btrfs-progs)
# Rootless Podman for the embedded site's container environment (site.toml
# environments.debian-12): runc as its OCI runtime (see below), uidmap for the learners' ranges.
debs+=(podman uidmap runc catatonit)
fi
# PostgreSQL for the tests of the hub on PostgreSQL (a site uses its own database server).
[ "$with_tests" = "--test" ] && debs+=(chromium postgresql)
missing=()
for p in "${debs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# One shared session environment, readable by every learner (jobs run it as the learner).
# It is built on Debian's Python: an interpreter under /root (pyenv) is unreadable to learners.
mkdir -p "$prefix"
case "$(readlink -f "$prefix/venv/bin/python" 2>/dev/null)" in
  /usr/bin/python3*) ;;
  *) rm -rf "$prefix/venv"; /usr/bin/python3 -m venv "$prefix/venv" ;;
esac
pip=("$prefix/venv/bin/pip" install --quiet --disable-pip-version-check)
# The PostgreSQL driver always: a site switches the hub's database with one site.toml setting.
extra="[postgresql]"
[ "$with_tests" = "--test" ] && extra="[postgresql,test]"
"${pip[@]}" "$repo$extra"
# The package itself is re-installed on every run so the hub and jobs use this checkout.
"${pip[@]}" --no-deps --force-reinstall "$repo"
# rfc3987-syntax (pulled in by jupyter-events -> jsonschema[format-nongpl]) costs ~1 s of import
# in every session start-up, for IRI format checks nothing here uses; jsonschema skips the
# check when it is absent. Measured: jupyterhub.singleuser imports in 0.7 s instead of 1.7 s.
"$prefix/venv/bin/pip" uninstall --quiet --yes rfc3987-syntax 2>/dev/null || true

# The hub's JupyterHub config, where `factoryhub hub setup` takes it from (it is thin: all
# comes from site.toml), and the demo's site.toml as a start for a site's own.
install -d -o root -g root -m 0755 "$prefix/hub_config"
install -o root -g root -m 0644 "$repo/hub_config/jupyterhub_config.py" "$repo/hub_config/site.toml" \
  "$prefix/hub_config/"

# The embedded site's module tree (site.toml [software] module_path) and the second Python
# environment its data-science/2026 module loads: statsmodels and patsy of its own, the
# FactoryHub stack underneath (a .pth file), on Debian's Python like the venv.
if [ -z "$service_node" ]; then
rm -rf "$prefix/modules.new"
cp -r "$repo/deploy/modules" "$prefix/modules.new"
rm -rf "$prefix/modules"
mv "$prefix/modules.new" "$prefix/modules"
ds="$prefix/envs/data-science-2026"
ds_site="$ds/lib/python3.11/site-packages"
if ! [ -x "$ds/bin/python" ] || ! [ -d "$ds_site/statsmodels" ]; then
  rm -rf "$ds"
  /usr/bin/python3 -m venv --without-pip "$ds"
  "${pip[@]}" --no-deps --target "$ds_site" statsmodels==0.15.0 patsy==1.0.3
fi
echo "$prefix/venv/lib/python3.11/site-packages" > "$ds_site/factoryhub-base.pth"
chmod -R a+rX "$prefix/modules" "$prefix/envs"

# The container environment's image: a root file system of this host's own Debian packages
# (nothing downloaded; 8 s), with mount points for what site.toml binds into it. Podman's
# default runtime, crun, refuses a host whose cgroup v2 tree has controllers beside v1's
# ("cgroups in hybrid mode not supported"); runc runs on both kinds.
# Rebuilt when what it is built from changes (the script, its arguments, the host's packages).
image="$prefix/images/debian-12.rootfs"
image_args=(--mount-point="$prefix/venv" --mount-point=/etc/slurm --mount-point=/run/munge
  --mount-point=/project --mount-point=/scratch python3 python3.11 bash dash coreutils slurm-client)
image_stamp=$( { cat "$repo/deploy/containers/build_rootfs.py"; echo "${image_args[*]}";
  stat -c %Y /var/lib/dpkg/status; } | sha256sum | cut -c1-16)
if ! [ -f "$image/etc/factoryhub-image" ] || \
   [ "$(cat "$prefix/images/debian-12.stamp" 2>/dev/null)" != "$image_stamp" ]; then
  install -d -o root -g root -m 0755 "$prefix/images"
  /usr/bin/python3 -I "$repo/deploy/containers/build_rootfs.py" "$image" "${image_args[@]}" >/dev/null
  echo "$image_stamp" > "$prefix/images/debian-12.stamp"
fi
install -d -o root -g root -m 0755 /etc/containers/containers.conf.d
install -o root -g root -m 0644 "$repo/deploy/containers/factoryhub.conf" \
  /etc/containers/containers.conf.d/factoryhub.conf
fi

# Compute nodes of an AI factory have no internet: JupyterLab must not ask for news.
mkdir -p "$prefix/venv/share/jupyter/lab/settings"
cp "$repo/deploy/jupyterlab-overrides.json" "$prefix/venv/share/jupyter/lab/settings/overrides.json"
chmod -R a+rX "$prefix/venv"

# configurable-http-proxy from npm, pinned (security floor: 4.5.1, see docs/security.md).
chp_version=$(sed -n 's/.*"configurable-http-proxy": *"\([^"]*\)".*/\1/p' "$repo/deploy/package.json")
if ! [ -x "$prefix/node/node_modules/.bin/configurable-http-proxy" ] || \
   ! grep -q "\"version\": \"$chp_version\"" "$prefix/node/node_modules/configurable-http-proxy/package.json"; then
  mkdir -p "$prefix/node"
  cp "$repo/deploy/package.json" "$prefix/node/package.json"
  npm install --silent --no-audit --no-fund --prefix "$prefix/node" >/dev/null
fi

# The tests' OpenID Connect provider (tests/oidc/provider.mjs): oidc-provider from npm, pinned.
if [ "$with_tests" = "--test" ]; then
  oidc_version=$(sed -n 's/.*"oidc-provider": *"\([^"]*\)".*/\1/p' "$repo/tests/oidc/package.json")
  if ! grep -qs "\"version\": \"$oidc_version\"" "$prefix/test-oidc/node_modules/oidc-provider/package.json"; then
    mkdir -p "$prefix/test-oidc"
    cp "$repo/tests/oidc/package.json" "$prefix/test-oidc/package.json"
    npm install --silent --no-audit --no-fund --prefix "$prefix/test-oidc" >/dev/null
  fi
  chmod -R a+rX "$prefix/test-oidc"  # the provider runs as nobody
fi

# The hub, its service and the proxy run unprivileged; the hub acts as a learner only through
# fh-act-as, which sudo starts as root for the hub's account alone (scheduler/actas.py).
# It is scheduler/actas.py itself, run by the system's Python in isolated mode (-I -S: no
# environment, no site-packages): standard library only, about 10 ms to start.
install -d -o root -g root -m 0755 "$prefix/bin"
{ echo '#!/usr/bin/python3 -IS'; cat "$repo/scheduler/actas.py"; } > "$prefix/bin/fh-act-as.new"
chown root:root "$prefix/bin/fh-act-as.new"
chmod 0755 "$prefix/bin/fh-act-as.new"
mv "$prefix/bin/fh-act-as.new" "$prefix/bin/fh-act-as"
install -o root -g root -m 0440 "$repo/deploy/sudoers.d/factoryhub" /etc/sudoers.d/factoryhub.new
if visudo -cq -f /etc/sudoers.d/factoryhub.new; then
  mv /etc/sudoers.d/factoryhub.new /etc/sudoers.d/factoryhub
else
  rm -f /etc/sudoers.d/factoryhub.new
  echo "deploy/sudoers.d/factoryhub does not parse; not installed" >&2
  exit 1
fi

# Where systemd is PID 1, the hub and its proxy run as its units (restarted on failure, the hub
# after munge and Slurm), and root's timer runs the workshops ordered on the web page:
# templates, one instance per hub id, which `factoryhub demo start` enables. Elsewhere
# (containers, CI) `factoryhub demo start` supervises them itself.
if [ -d /run/systemd/system ]; then
  for unit in "$repo"/deploy/systemd/*.service "$repo"/deploy/systemd/*.timer; do
    install -o root -g root -m 0644 "$unit" "/etc/systemd/system/$(basename "$unit")"
  done
  systemctl daemon-reload
fi

# A service node's Slurm client and munge are the site's: say what is missing, in a sentence.
if [ -n "$service_node" ]; then
  absent=()
  for cmd in sinfo squeue sbatch scontrol sacctmgr munge unmunge; do
    command -v "$cmd" >/dev/null 2>&1 || absent+=("$cmd")
  done
  if [ ${#absent[@]} -gt 0 ]; then
    echo "Not found on PATH: ${absent[*]}. Install the site's Slurm client commands (the" \
      "controller's release) and munge with its key, and name a Slurm outside PATH in site.toml" \
      "[slurm] bin_dir and /etc/factoryhub/act-as.conf (docs/admin-guide.md, steps 1 and 3)." >&2
  fi
  echo "FactoryHub is installed; next: factoryhub hub setup --site /etc/factoryhub/site.toml"
fi
