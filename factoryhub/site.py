"""The site model: what an AI factory's `site.toml` says, read once into frozen dataclasses.

The live scheduler is the truth about partitions and nodes; `site.toml` overlays what the
scheduler cannot say (labels, per-job GPU limits, session environments, energy factors) and the
hub's own settings. Unknown keys are rejected with their dotted name so a typo never passes
silently.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

from .hubdatabase import db_url_problem
from .identity import AuthSettings, IdentityError, check_auth
from .sitehooks import HookError, check_extra_directive, check_prologue_line
from .software import SoftwareError, SoftwareSettings, check_environments
from .storage import StorageError, StorageSettings, check_storage
from .workshop import MAX_SEATS
from .workshoppool import PoolError, pool_accounts

SITE_ENV = "FACTORYHUB_SITE_JSON"  # the public site, exported into every session
WARN_ENV = "FACTORYHUB_WARN_SECONDS"  # how long before its end Slurm warns the session


class SiteError(ValueError):
    """A `site.toml` that cannot be used; the message names the key."""


@dataclass(frozen=True)
class HubSettings:
    """How the hub presents itself and where it keeps its state."""

    id: str = "factoryhub"
    title: str = "FactoryHub"
    url: str = "http://127.0.0.1:8000"
    hub_ip: str = "127.0.0.1"
    hub_port: int = 8081
    proxy_api_port: int = 8001
    service_port: int = 8082  # FactoryHub's own hub service (start estimates)
    state_dir: str = "/var/lib/factoryhub"
    catalogue_dir: str = "/srv/factoryhub/catalogue"  # published courses; readable by sessions
    admin_users: tuple[str, ...] = ()
    trainers: tuple[str, ...] = ()
    allowed_group: str = "factoryhub"  # Unix group whose members may log in
    # Sessions are refused while state_dir has less free space than this: a session's job id
    # must be recorded before its job may exist (the hub database lives in state_dir).
    min_free_mb: int = 64
    # How many sessions may be starting at once (JupyterHub's concurrent_spawn_limit; 0: no
    # limit). A Start beyond it is answered 429 and retried 30-60 s later, so a workshop's room
    # pressing Start together should fit under it: at least the largest workshop's seats.
    # JupyterHub's own default, 100, held half of P7's 200 seats back by 30-60 s each.
    concurrent_spawn_limit: int = 200
    # The site's own template directories, searched before FactoryHub's templates (the hub's
    # pages, the spawn form, the service's pages); see docs/admin-guide.md, "Templates".
    template_dirs: tuple[str, ...] = ()
    # HTTPS at the proxy: the site's certificate (chain) and key, PEM files the proxy's
    # account can read; both empty: plain HTTP. `tls_self_signed` makes one for `url`'s host
    # instead (a demo, a test). Either way `url` is https://; see docs/admin-guide.md, "TLS".
    tls_cert: str = ""
    tls_key: str = ""
    tls_self_signed: bool = False
    # Where the proxy listens when a site reverse proxy in front of it answers at `url` (and
    # terminates TLS there), e.g. http://127.0.0.1:8000; empty: the proxy listens at `url`.
    bind_url: str = ""
    # The hub's database: empty keeps SQLite in state_dir; a postgresql:// URL (no password
    # in it) uses PostgreSQL, the password read from db_password_file (factoryhub.hubdatabase).
    db_url: str = ""
    db_password_file: str = ""


@dataclass(frozen=True)
class SlurmSettings:
    """Where the Slurm commands are and how long the hub waits for them."""

    bin_dir: str = "/usr/bin"
    command_timeout: float = 20.0
    poll_interval: float = 10.0
    start_poll_interval: float = 0.25
    # Start a session with an immediate allocation (salloc --immediate, then srun from the hub
    # host) when its partition has room this instant, and queue it with sbatch otherwise.
    # Needs the nodes to reach srun on the hub host (SrunPortRange where a firewall sits).
    immediate_start: bool = True
    sweep_interval: float = 300.0  # how often orphaned jobs are looked for; 0 turns it off
    orphan_grace: float = 120.0  # a tagged job this old with no server record is an orphan
    # options every job gets, e.g. ["--constraint=h100"] (allow-listed: factoryhub.sitehooks)
    extra_directives: tuple[str, ...] = ()


@dataclass(frozen=True)
class Partition:
    """A partition as the site wants learners to see it (limits overlay the scheduler's)."""

    label: str = ""
    description: str = ""
    max_walltime: str = "12:00:00"
    default_walltime: str = "01:00:00"
    max_cpus: int = 16
    max_memory_gb: int = 64
    max_gpus: int = 0
    gpu_types: tuple[str, ...] = ()
    dask_worker_cores: int = 1  # one Dask worker job's CPUs on this partition
    dask_worker_memory_gb: int = 2  # and its memory
    # Kept for workshops (Slurm's ReqResv=YES): only a workshop's seats start sessions there,
    # on their workshop's reservation; no form or widget offers it to anyone else.
    workshops_only: bool = False


@dataclass(frozen=True)
class Environment:
    """A software environment a session can run in: a Python prefix with JupyterLab, and
    either the Lmod modules loaded before it (each also a kernel in JupyterLab) or the
    container image it runs in (the prefix is then inside the image); see factoryhub.software."""

    label: str
    prefix: str
    prologue: tuple[str, ...] = ()  # shell lines before every job's command ("module load …")
    modules: tuple[str, ...] = ()  # e.g. ["python/3.11", "ai-cpu/2026"], loaded in this order
    image: str = ""  # e.g. "/srv/images/pytorch-24.08.sif", run with software.container_runtime


@dataclass(frozen=True)
class SessionDefaults:
    """What a session gets when the learner asks for nothing in particular."""

    partition: str = "cpu"
    cpus: int = 1
    memory_gb: int = 2
    walltime: str = "01:00:00"
    environment: str = "default"
    log_dir: str = ".factoryhub/logs"
    warn_minutes: int = 10  # Slurm signals the session this long before its walltime ends


@dataclass(frozen=True)
class AccessSettings:
    """Slurm accounts and QoS a user may charge, where the site has no accounting database
    to ask (`sacctmgr`). Each maps a name to the users allowed, "*" for everyone."""

    accounts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    qos: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def accounts_of(self, user: str) -> tuple[str, ...]:
        return tuple(n for n, users in self.accounts.items() if "*" in users or user in users)

    def qos_of(self, user: str) -> tuple[str, ...]:
        return tuple(n for n, users in self.qos.items() if "*" in users or user in users)


@dataclass(frozen=True)
class EnergySettings:
    """The transparent energy model: what a core and a GPU draw, the data centre's overhead
    (PUE) and the grid's carbon intensity. Shown next to every figure, labelled an estimate."""

    watts_per_core: float = 10.0
    gpu_watts: dict[str, float] = field(default_factory=dict)  # by GPU type, e.g. h100 = 700
    default_gpu_watts: float = 300.0  # for a GPU type the table does not name
    pue: float = 1.2  # power usage effectiveness: facility energy / IT energy
    carbon_g_per_kwh: float = 250.0  # grid carbon intensity, grams CO2e per kWh
    source: str = ""  # where the factors come from, shown to learners
    use_slurm_energy: bool = False  # read Slurm's own energy accounting (sacct) when gathered


@dataclass(frozen=True)
class LimitSettings:
    """How often one user may ask the hub service (start estimates, the course catalogue):
    each request may run the scheduler, so each user has a bucket of `service_burst`
    requests refilled at `service_per_minute`; past it the service answers 429. Raise them
    if learners' forms show "too many requests"; 0 per minute turns the limit off.

    `accounting_refresh_seconds`: how long one reading of the accounting database (every
    user's accounts and QoS, every account's budget: one `sacctmgr` and one `sshare` call for
    everyone) serves forms, estimates and starts; a new grant or budget shows within about
    twice this. Lower it where slurmdbd answers fast and grants change often."""

    service_burst: int = 20
    service_per_minute: float = 30.0
    accounting_refresh_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.accounting_refresh_seconds < 1:
            raise SiteError("limits: accounting_refresh_seconds must be at least 1")


@dataclass(frozen=True)
class SupportSettings:
    """Where learners' support requests go: the support centre's address, by SMTP (STARTTLS
    when `starttls`), and who answers them on the hub service's support page: the hub's admins
    and the members of the Unix group `staff_group`. No `host`: requests are kept on the
    support page only, and no mail is sent."""

    host: str = ""
    port: int = 25
    starttls: bool = False
    mail_from: str = ""
    mail_to: str = ""
    staff_group: str = ""


@dataclass(frozen=True)
class Dataset:
    """A shared data set: a read-only folder open to the members of `groups` (Unix groups;
    the file system refuses everyone else), linked into their sessions as ~/datasets/<name>."""

    path: str
    description: str = ""
    licence: str = ""
    size: str = ""
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class CullingSettings:
    """Idle sessions stopped by jupyterhub-idle-culler, run by the hub as a service (see
    `factoryhub.culling` for the rules). A session holding GPUs is stopped after
    `gpu_idle_minutes` of inactivity, any other after `idle_minutes`; `max_age_hours` (0: none)
    stops any session that old. Trainers' and admins' sessions (`exempt_staff`), the users,
    server names and reservations (workshops) listed are never stopped. JupyterLab warns the
    learner `warn_minutes` before an idle stop (saving their documents, with a "Keep my
    session" button that keeps it for one more idle period). Where a GPU session's node has
    `nvidia-smi`, the session reads its GPUs every `gpu_sample_seconds`, and a GPU busier than
    `gpu_busy_percent` counts as activity (`factoryhub.gpu_usage`)."""

    enabled: bool = True
    idle_minutes: float = 120.0
    gpu_idle_minutes: float = 30.0
    warn_minutes: float = 5.0
    every_seconds: int = 60  # how often the culler looks at every session
    max_age_hours: float = 0.0
    exempt_staff: bool = True
    exempt_users: tuple[str, ...] = ()
    exempt_servers: tuple[str, ...] = ()
    exempt_reservations: tuple[str, ...] = ()
    gpu_busy_percent: float = 5.0  # GPU utilisation above this counts as activity
    gpu_sample_seconds: int = 60  # how often a GPU session reads its GPUs' utilisation

    def __post_init__(self) -> None:
        if not 0 <= self.gpu_busy_percent < 100 or self.gpu_sample_seconds < 1:
            raise SiteError(
                "culling: gpu_busy_percent must be from 0 to under 100, gpu_sample_seconds >= 1"
            )
        if self.idle_minutes <= 0 or self.gpu_idle_minutes <= 0:
            raise SiteError("culling: idle_minutes and gpu_idle_minutes must be over 0")
        if self.warn_minutes < 0:
            raise SiteError("culling: warn_minutes must be at least 0")
        if self.every_seconds < 1 or self.max_age_hours < 0:
            raise SiteError("culling: every_seconds must be at least 1, max_age_hours >= 0")


@dataclass(frozen=True)
class WorkshopSettings:
    """Where workshops (`factoryhub workshop`) take their seats. `account_pool` names the
    site's pre-created training accounts as Slurm host lists (`["train[001-060]"]`): a
    workshop takes those that exist and no other workshop holds, and `purge` returns them
    (disabled, home emptied). Empty: each workshop's seats are made, ws-<name>-NN, and
    deleted at purge (the embedded site).

    A trainer (not an admin) may order a workshop on the hub's workshops page, with themselves
    among its trainers and within these bounds: `trainer_max_seats` seats;
    `trainer_max_gpu_hours` GPU-hours, both of the workshop's budget (its Slurm account's) and
    of what its reservation holds back from everyone else (seats × the courses' GPUs × the
    slot, whatever smaller budget the order names); a slot of at most `trainer_max_hours`; and
    at most `trainer_max_workshops` of their workshops not yet ended. 0 seats: trainers order
    no workshops (the admins do). Admins are not bounded by these."""

    account_pool: tuple[str, ...] = ()
    trainer_max_seats: int = 30
    trainer_max_gpu_hours: float = 100.0
    trainer_max_hours: float = 12.0
    trainer_max_workshops: int = 3


@dataclass(frozen=True)
class Site:
    """Everything `site.toml` says."""

    hub: HubSettings = field(default_factory=HubSettings)
    slurm: SlurmSettings = field(default_factory=SlurmSettings)
    session: SessionDefaults = field(default_factory=SessionDefaults)
    partitions: dict[str, Partition] = field(default_factory=dict)
    environments: dict[str, Environment] = field(default_factory=dict)
    access: AccessSettings = field(default_factory=AccessSettings)
    energy: EnergySettings = field(default_factory=EnergySettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    support: SupportSettings = field(default_factory=SupportSettings)
    datasets: dict[str, Dataset] = field(default_factory=dict)
    culling: CullingSettings = field(default_factory=CullingSettings)
    workshops: WorkshopSettings = field(default_factory=WorkshopSettings)
    software: SoftwareSettings = field(default_factory=SoftwareSettings)  # Lmod, containers
    storage: StorageSettings = field(default_factory=StorageSettings)  # home, project, scratch
    auth: AuthSettings = field(default_factory=AuthSettings)  # PAM, or OIDC single sign-on

    def partition(self, name: str) -> Partition:
        """The named partition; `KeyError` when the site does not offer it."""
        return self.partitions[name]

    def learner_partitions(self) -> dict[str, Partition]:
        """The partitions an ordinary learner may choose: all but those kept for workshops."""
        return {n: p for n, p in self.partitions.items() if not p.workshops_only}


def _build(cls: type, raw: object, where: str) -> object:
    """Build dataclass `cls` from TOML data, rejecting unknown keys and wrong types."""
    if not isinstance(raw, dict):
        raise SiteError(f"{where or 'site'}: expected a table, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        allowed = ", ".join(sorted(names))
        raise SiteError(f"unknown key {where}{unknown[0]!s} (allowed here: {allowed})")
    values = {key: _convert(hints[key], value, f"{where}{key}") for key, value in raw.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise SiteError(f"{where or 'site'}: {exc}") from None


def _convert(hint: object, value: object, where: str) -> object:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, f"{where}.")
    if origin is dict:
        if not isinstance(value, dict):
            raise SiteError(f"{where}: expected a table")
        return {k: _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list):
            raise SiteError(f"{where}: expected a list")
        return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    expected = {float: (int, float)}.get(hint, hint)
    if (isinstance(value, bool) and hint is not bool) or not isinstance(value, expected):
        raise SiteError(f"{where}: expected {hint.__name__}, got {value!r}")
    return float(value) if hint is float else value


def _check_hooks(site: Site) -> None:
    checks = [("slurm.extra_directives", check_extra_directive, site.slurm.extra_directives)]
    for name, env in site.environments.items():
        checks.append((f"environments.{name}.prologue", check_prologue_line, env.prologue))
    for where, check, values in checks:
        try:
            for value in values:
                check(value)
        except HookError as exc:
            raise SiteError(f"{where}: {exc}") from None


_MAIL_ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+")
DATASET_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


def _check_support_and_datasets(site: Site) -> None:
    support = site.support
    for key in ("mail_from", "mail_to"):
        value = getattr(support, key)
        if (value or support.host) and not _MAIL_ADDRESS.fullmatch(value):
            raise SiteError(f"support.{key}: {value!r} is not one e-mail address")
    for name, dataset in site.datasets.items():
        if not DATASET_NAME.fullmatch(name):
            raise SiteError(f"datasets.{name}: a name is a-z, 0-9, - and _ (40 at most)")
        if not dataset.path.startswith("/") or "/../" in f"{dataset.path}/":
            raise SiteError(f"datasets.{name}.path: {dataset.path!r} is not an absolute path")
        if not dataset.groups:
            raise SiteError(f"datasets.{name}.groups: name the Unix groups that may read it")


def _check_tls(hub: HubSettings) -> None:
    """HTTPS is one choice, made consistently: a certificate (the site's or self-signed) and
    an https:// address where the proxy listens (`bind_url`, else `url`) go together."""
    if bool(hub.tls_cert) != bool(hub.tls_key):
        raise SiteError("hub.tls_cert and hub.tls_key: give both (PEM files) or neither")
    for key in ("tls_cert", "tls_key"):
        value = getattr(hub, key)
        if value and (not value.startswith("/") or any(c.isspace() for c in value)):
            raise SiteError(f"hub.{key}: {value!r} is not an absolute path without spaces")
    if hub.tls_cert and hub.tls_self_signed:
        raise SiteError("hub.tls_self_signed: the site names its own certificate (tls_cert)")
    if hub.bind_url and not re.fullmatch(r"https?://[^/\s?#]+/?", hub.bind_url):
        raise SiteError(f"hub.bind_url {hub.bind_url!r}: http(s)://host:port, nothing after it")
    key, listen = ("bind_url", hub.bind_url) if hub.bind_url else ("url", hub.url)
    tls = bool(hub.tls_cert) or hub.tls_self_signed
    if tls != listen.startswith("https://"):
        raise SiteError(
            f"hub.{key} {listen!r}: the proxy serves https:// with tls_cert and tls_key (or"
            " tls_self_signed = true), and a certificate needs an https:// address"
        )


def _check_spawn_limit(hub: HubSettings) -> None:
    if not 0 <= hub.concurrent_spawn_limit <= 10_000:
        raise SiteError("hub.concurrent_spawn_limit: a whole number from 0 (no limit) to 10000")


def _check_trainer_bounds(workshops: WorkshopSettings) -> None:
    if not 0 <= workshops.trainer_max_seats <= MAX_SEATS:
        raise SiteError(f"workshops.trainer_max_seats: a whole number from 0 to {MAX_SEATS}")
    for key in ("trainer_max_gpu_hours", "trainer_max_hours"):
        hours = getattr(workshops, key)
        if not math.isfinite(hours) or hours < 0:
            raise SiteError(f"workshops.{key}: a number of hours, 0 or more")
    if not 0 <= workshops.trainer_max_workshops <= 100:
        raise SiteError("workshops.trainer_max_workshops: a whole number from 0 to 100")


def _check(site: Site) -> Site:
    _check_hooks(site)
    try:
        pool_accounts(site.workshops.account_pool)
    except PoolError as exc:
        raise SiteError(str(exc)) from None
    _check_trainer_bounds(site.workshops)
    try:
        check_environments(site.software, site.environments)
        check_storage(site.storage)
    except (SoftwareError, StorageError) as exc:
        raise SiteError(str(exc)) from None
    _check_tls(site.hub)
    _check_spawn_limit(site.hub)
    if problem := db_url_problem(site.hub.db_url, site.hub.db_password_file):
        raise SiteError(problem)
    _check_support_and_datasets(site)
    try:
        check_auth(site.auth)
    except IdentityError as exc:
        raise SiteError(str(exc)) from None
    if site.session.partition not in site.partitions:
        raise SiteError(f"session.partition {site.session.partition!r} is not in [partitions]")
    if site.partition(site.session.partition).workshops_only:
        raise SiteError(
            f"session.partition {site.session.partition!r} is kept for workshops"
            " (workshops_only): the default session needs a partition every learner may use"
        )
    if site.session.environment not in site.environments:
        raise SiteError(
            f"session.environment {site.session.environment!r} is not in [environments]"
        )
    return site


def another_hub(raw: dict, hub_id: str, port_base: int, state_dir: str) -> dict:
    """site.toml data for a second hub on the same site (tests, benchmarks): its own tag,
    ports (public `port_base`, proxy API +1, hub API +81, service +82) and state directory."""
    hub = {
        **raw.get("hub", {}),
        "id": hub_id,
        "url": f"http://127.0.0.1:{port_base}",
        "bind_url": "",
        "proxy_api_port": port_base + 1,
        "hub_port": port_base + 81,
        "service_port": port_base + 82,
        "state_dir": state_dir,
    }
    return {**raw, "hub": hub}


def site_from_data(raw: object) -> Site:
    """A `Site` from already-parsed data (TOML or the JSON of `public_site_data`)."""
    return _check(_build(Site, raw, ""))


def public_site_data(site: Site) -> dict[str, object]:
    """What a session may know of the site (JSON-ready): no hub internals beyond its id and
    title. Sessions read it from ``FACTORYHUB_SITE_JSON``."""
    data = dataclasses.asdict(site)
    data["hub"] = {"id": site.hub.id, "title": site.hub.title, "url": site.hub.url}
    data["support"] = {}  # the support centre's mail settings are the hub service's alone
    data["workshops"] = {}  # the training accounts are the support centre's business
    data["auth"] = {}  # how the hub logs people in is the hub's alone
    return data


def parse_site(text: str) -> Site:
    """Parse the text of a `site.toml`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SiteError(f"site.toml is not valid TOML: {exc}") from None
    return site_from_data(raw)


def load_site(path: str | Path) -> Site:
    """Read and parse a `site.toml` file."""
    return parse_site(Path(path).read_text(encoding="utf-8"))
