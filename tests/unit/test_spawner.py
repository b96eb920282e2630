"""SlurmSpawner's contract with a fake Slurm client: state, poll mapping, stop, refusals."""

import asyncio
from types import SimpleNamespace

import pytest
from tornado import web

from factoryhub.request import parse_request
from factoryhub.scheduler.livesite import forget_readings
from factoryhub.scheduler.slurm import Associations, QosLimits
from factoryhub.spawners import SlurmSpawner
from factoryhub.spawners.spawner import SessionFailed
from factoryhub.spawners.watcher import _WATCHERS


@pytest.fixture
def spawner(fake_slurm, repo):
    _WATCHERS.clear()
    forget_readings()
    user = SimpleNamespace(name="alice", url="/user/alice/", id=1)
    sp = SlurmSpawner(
        user=user,
        slurm_client=fake_slurm,
        site_path=str(repo / "hub_config" / "site.toml"),
        hub_id="test",
    )
    sp.orm_spawner = SimpleNamespace(user_options={}, state=None, server=None, name="")
    yield sp
    _WATCHERS.clear()


def test_state_round_trip(spawner, fake_slurm):
    spawner.job_id, spawner.job_node = "42", "cn01"
    state = spawner.get_state()
    assert state["job_id"] == "42" and state["job_node"] == "cn01"
    other = SlurmSpawner(user=spawner.user, slurm_client=fake_slurm, site_path=spawner.site_path)
    other.load_state(state)
    assert (other.job_id, other.job_node) == ("42", "cn01")
    assert "42" in other.watcher.tracked
    other.clear_state()
    assert other.job_id == "" and "42" not in other.watcher.tracked


def test_load_state_ignores_a_non_numeric_job_id(spawner):
    spawner.load_state({"job_id": "1; scancel -u bob"})
    assert spawner.job_id == ""


@pytest.mark.parametrize(
    ("state", "started", "expected"),
    [
        ("RUNNING", True, None),
        ("SUSPENDED", True, None),
        ("CONFIGURING", False, None),
        ("PENDING", False, None),
        ("FROBNICATED", True, None),
        ("COMPLETED", True, 0),
        ("CANCELLED", True, 1),
        ("TIMEOUT", True, 1),
        ("NODE_FAIL", True, 1),
        ("COMPLETING", True, 1),
        ("OUT_OF_MEMORY", True, 1),
    ],
)
async def test_poll_maps_states(spawner, fake_slurm, state, started, expected):
    fake_slurm.set_job("7", state)
    spawner.load_state({"job_id": "7", "job_node": "cn01" if started else ""})
    spawner._spawn_pending = not started  # not yet started: a spawn is under way
    assert await spawner.poll() == expected


async def test_poll_keeps_the_server_when_the_scheduler_is_down(spawner, fake_slurm):
    spawner.load_state({"job_id": "7", "job_node": "cn01"})
    fake_slurm.down = True
    assert await spawner.poll() is None
    assert fake_slurm.count("cancel") == 0


async def test_poll_reports_a_job_slurm_forgot_as_gone(spawner, fake_slurm):
    spawner.load_state({"job_id": "7", "job_node": "cn01"})
    assert await spawner.poll() == 0


async def test_requeued_job_of_a_ready_server_is_cancelled(spawner, fake_slurm):
    fake_slurm.set_job("7", "PENDING", reason="BeginTime")
    spawner.load_state({"job_id": "7", "job_node": "cn01"})
    assert await spawner.poll() == 1
    assert ("cancel", "7") in fake_slurm.calls


async def test_one_query_serves_many_polls(fake_slurm, repo):
    _WATCHERS.clear()
    spawners = []
    for i in range(20):
        fake_slurm.set_job(str(i), "RUNNING", user=f"u{i}", name=f"fh:demo:u{i}:")
        sp = SlurmSpawner(
            user=SimpleNamespace(name=f"u{i}"),
            slurm_client=fake_slurm,
            site_path=str(repo / "hub_config" / "site.toml"),
        )
        sp.load_state({"job_id": str(i), "job_node": "cn01"})
        spawners.append(sp)
    results = [await sp.poll() for sp in spawners]
    assert results == [None] * 20
    assert fake_slurm.count("query") == 1


async def test_stop_cancels_and_waits_for_the_queue(spawner, fake_slurm):
    fake_slurm.set_job("7", "RUNNING")
    spawner.load_state({"job_id": "7", "job_node": "cn01"})
    await spawner.stop()
    assert fake_slurm.calls[0] == ("cancel", "7")
    assert fake_slurm.jobs["7"].state == "CANCELLED"


async def test_bad_options_are_a_400_and_nothing_raw_is_kept(spawner, fake_slurm):
    spawner.orm_spawner.user_options = {"cpus": "1; reboot"}
    with pytest.raises(web.HTTPError) as err:
        await spawner.apply_user_options(spawner, {"cpus": "1; reboot"})
    assert err.value.status_code == 400 and "cpus" in err.value.log_message
    assert spawner.orm_spawner.user_options == {}
    assert fake_slurm.calls == []


async def test_good_options_are_stored_normalised(spawner):
    await spawner.apply_user_options(spawner, {"partition": "debug", "walltime": "10"})
    assert spawner.user_options["walltime"] == "00:10:00"
    assert spawner.orm_spawner.user_options == spawner.user_options


async def test_form_shows_live_capacity_and_the_estimate(spawner, fake_slurm):
    options = spawner.options_from_form({"partition": ["gpu"], "gpus": ["1"], "_xsrf": ["x"]})
    assert options == {"partition": "gpu", "gpus": "1"}
    html = await spawner.options_form(spawner)
    assert 'name="partition"' in html and 'value="gpu"' in html
    assert "<td>gpu</td><td>0 of 16</td><td>0 of 4</td><td>up</td>" in html
    assert "training" in spawner.site.partitions  # kept for workshops: neither offered nor shown
    assert "Training (workshops)" not in html and "<td>training</td>" not in html
    assert "Your session: <strong>starts now</strong>" in html
    assert 'data-url="/services/factoryhub/estimate"' in html


async def test_the_forms_first_estimate_holds_the_budget(spawner, fake_slurm):
    from factoryhub.budget import AccountBudget

    spent = {"cpu": 600}  # every CPU-minute of the account used
    accounts = ("training", "ai-research")
    fake_slurm.budgets = {a: AccountBudget(a, dict(spent), dict(spent)) for a in accounts}
    html = await spawner.options_form(spawner)
    assert "Your session: <strong>walltime: cannot start:" in html
    assert "0 CPU-hours left" in html and "starts now" not in html


async def test_estimate_asks_slurm_only_when_capacity_cannot_tell(spawner, fake_slurm, monkeypatch):
    from factoryhub.request import parse_request

    # Slurm's test submission runs in the learner's home: "alice" has no Unix account on a
    # machine where the demo never ran (it failed there, passing only where it had).
    home = SimpleNamespace(pw_dir="/home/alice")
    monkeypatch.setattr("factoryhub.estimate.pwd.getpwnam", lambda name: home)
    busy_gpu = parse_request({"partition": "gpu", "gpus": 1}, spawner.site)
    estimate = await spawner.estimate(busy_gpu, fake_slurm.live)
    assert estimate.kind == "later" and "expected on 1 Jan at 00:00" in estimate.message
    assert fake_slurm.calls[-1][0] == "test_only"
    assert "--gres=gpu:h100:1" in fake_slurm.calls[-1][1]
    calls = len(fake_slurm.calls)
    assert (await spawner.estimate(parse_request({}, spawner.site), fake_slurm.live)).kind == "now"
    assert len(fake_slurm.calls) == calls  # free capacity answered; no scheduler call


async def test_form_without_a_scheduler_still_renders(spawner, fake_slurm):
    from factoryhub.scheduler.livesite import forget_readings

    forget_readings()
    fake_slurm.down = True
    html = await spawner.options_form(spawner)
    assert "Free capacity is unknown" in html and 'name="cpus"' in html


async def test_session_command_reports_its_port_through_the_extension(spawner):
    await spawner.apply_user_options(spawner, {})
    command = spawner.session_command()
    assert command[0] == "/opt/factoryhub/venv/bin/jupyterhub-singleuser"
    assert "--ServerApp.port=0" in command
    assert "--ServerApp.jpserver_extensions=factoryhub.session=True" in command
    assert spawner.job_name() == "fh:test:alice:"
    assert not any("workspaces_dir" in arg for arg in command)  # the learner's usual tabs


async def test_a_named_server_has_jupyterlab_workspaces_of_its_own(spawner, monkeypatch):
    from factoryhub.spawners import spawner as spawner_module

    home = SimpleNamespace(pw_dir="/home/alice")
    monkeypatch.setattr(spawner_module.pwd, "getpwnam", lambda name: home)
    spawner.orm_spawner.name = "gpu-lab"
    await spawner.apply_user_options(spawner, {})
    command = spawner.session_command()
    assert "--LabApp.workspaces_dir=/home/alice/.jupyter/lab/servers/gpu-lab" in command
    assert "--ServerApp.jpserver_extensions=factoryhub.session=True" in command


@pytest.mark.parametrize("state", ["PENDING", "RUNNING", "CONFIGURING"])
async def test_a_spawn_interrupted_by_a_hub_restart_is_cancelled(spawner, fake_slurm, state):
    # Saved at submit, never got to ready (no node recorded), no spawn under way now.
    fake_slurm.set_job("7", state)
    spawner.load_state({"job_id": "7"})
    assert await spawner.poll() == 1
    assert ("cancel", "7") in fake_slurm.calls


async def test_poll_during_a_spawn_keeps_the_pending_job(spawner, fake_slurm):
    fake_slurm.set_job("7", "PENDING")
    spawner.load_state({"job_id": "7"})
    spawner._spawn_pending = True
    assert await spawner.poll() is None
    assert fake_slurm.count("cancel") == 0


@pytest.mark.parametrize(
    ("state", "cancels"),
    [("COMPLETING", True), ("REQUEUED", True), ("COMPLETED", False), ("NODE_FAIL", False)],
)
async def test_a_lost_server_whose_job_could_come_back_is_cancelled(
    spawner, fake_slurm, state, cancels
):
    fake_slurm.set_job("7", state)
    spawner.load_state({"job_id": "7", "job_node": "cn01"})
    assert await spawner.poll() in (0, 1)
    assert (("cancel", "7") in fake_slurm.calls) is cancels


async def test_reservations_are_read_only_when_one_is_named(spawner, fake_slurm):
    from factoryhub.capacity import Reservation

    fake_slurm.live = type(fake_slurm.live)(
        fake_slurm.live.partitions,
        fake_slurm.live.nodes,
        (Reservation("workshop", ("alice",), (), "", True, ""),),
    )
    with pytest.raises(web.HTTPError):
        await spawner.apply_user_options(spawner, {"account": "nope", "reservation": "workshop"})
    assert fake_slurm.count("capacity") == 0  # refused before any scheduler call
    await spawner.apply_user_options(spawner, {"reservation": "workshop"})
    assert spawner.request.reservation == "workshop" and fake_slurm.count("capacity") == 1
    html = await spawner.options_form(spawner)
    assert 'name="reservation"' in html and 'name="account"' in html


async def test_a_request_that_could_never_start_is_refused(spawner, fake_slurm):
    from factoryhub.capacity import parse_partitions

    # Slurm's real limit is shorter than site.toml's: the job would pend forever.
    fake_slurm.live = type(fake_slurm.live)(
        parse_partitions("PartitionName=cpu MaxTime=02:00:00 State=UP\n"), fake_slurm.live.nodes
    )
    with pytest.raises(web.HTTPError) as err:
        await spawner.apply_user_options(spawner, {"walltime": "04:00:00"})
    assert "cannot start: the cpu partition allows at most 2 h" in err.value.log_message
    await spawner.apply_user_options(spawner, {"walltime": "01:00:00"})
    assert spawner.request.walltime_minutes == 60


async def test_scheduler_down_refuses_at_once_after_checking_the_input(spawner, fake_slurm):
    fake_slurm.down = True
    with pytest.raises(web.HTTPError) as err:
        await spawner.apply_user_options(spawner, {"cpus": "x"})
    assert err.value.status_code == 400 and fake_slurm.calls == []  # bad input: no call at all
    with pytest.raises(web.HTTPError) as err:
        await spawner.apply_user_options(spawner, {"cpus": 2})
    assert err.value.status_code == 503 and "nothing was submitted" in err.value.log_message
    assert fake_slurm.count("submit") == 0


async def test_accounts_and_qos_come_from_the_accounting_database_where_there_is_one(
    spawner, fake_slurm
):
    # site.toml offers "training"/"normal"; the accounting database knows better.
    fake_slurm.accounting = Associations(accounts=("ai-research", "hpc-course"), qos=("workshop",))
    await spawner.apply_user_options(spawner, {"account": "ai-research", "qos": "workshop"})
    assert (spawner.request.account, spawner.request.qos) == ("ai-research", "workshop")
    with pytest.raises(web.HTTPError) as err:
        await spawner.apply_user_options(spawner, {"account": "training"})
    assert "account: 'training' is not available to you (yours: ai-research, hpc-course)" in str(
        err.value.log_message
    )
    form = await spawner.options_form(spawner)
    assert 'value="hpc-course"' in form and 'value="training"' not in form


async def test_live_qos_limits_refuse_before_submitting_and_show_in_the_form(spawner, fake_slurm):
    limits = (QosLimits("normal", 720, None, 2), QosLimits("long", 1440, None, 4))
    fake_slurm.accounting = Associations(("training",), ("normal", "long"), limits)
    with pytest.raises(web.HTTPError) as err:
        await spawner.apply_user_options(spawner, {"partition": "gpu", "gpus": 3})
    assert err.value.status_code == 400
    assert "gpus: the QoS normal allows at most 2 GPUs per job" in err.value.log_message
    assert fake_slurm.count("submit") == 0 and spawner.user_options == {}
    await spawner.apply_user_options(spawner, {"partition": "gpu", "gpus": 3, "qos": "long"})
    assert (spawner.request.gpus, spawner.request.qos) == (3, "long")
    form = await spawner.options_form(spawner)
    assert "normal (per job: at most 2 GPUs, 12 h)" in form
    assert "long (per job: at most 4 GPUs, 1 day)" in form


async def test_a_learner_without_a_slurm_account_is_told_in_the_form(spawner, fake_slurm):
    fake_slurm.accounting = Associations()  # the database answered: no association
    form = await spawner.options_form(spawner)
    assert "you have no Slurm account on this site yet" in form
    with pytest.raises(web.HTTPError) as err:
        await spawner.apply_user_options(spawner, {})
    assert err.value.status_code == 400 and fake_slurm.count("submit") == 0


async def test_a_malformed_account_is_refused_before_any_scheduler_call(spawner, fake_slurm):
    with pytest.raises(web.HTTPError) as err:
        await spawner.apply_user_options(spawner, {"account": "training\n#SBATCH --uid=0"})
    assert err.value.status_code == 400 and "not a name Slurm uses" in err.value.log_message
    assert fake_slurm.calls == []


def test_warning_comes_ten_minutes_ahead_or_halfway(demo_site):
    from factoryhub.request import parse_request
    from factoryhub.spawners.options import warning_seconds

    assert warning_seconds(parse_request({"walltime": "02:00:00"}, demo_site), demo_site) == 600
    assert warning_seconds(parse_request({"walltime": "00:06:00"}, demo_site), demo_site) == 180


@pytest.mark.parametrize("name", ["gpu lab", "lab\n#SBATCH", "lab;rm", "x" * 41, "läb"])
async def test_unusable_server_names_are_a_400(spawner, fake_slurm, name):
    spawner.orm_spawner.name = name
    with pytest.raises(web.HTTPError) as err:
        await spawner.apply_user_options(spawner, {})
    assert err.value.status_code == 400 and "server name" in err.value.log_message
    assert fake_slurm.calls == []


@pytest.fixture
def starting(spawner, fake_slurm, repo, tmp_path):
    """A spawner whose site keeps its state in tmp_path, ready for `_submit_and_wait`; the
    job the fake grants next is running with its port reported."""
    import tomllib

    import tomli_w

    raw = tomllib.loads((repo / "hub_config" / "site.toml").read_text())
    raw["hub"]["state_dir"] = str(tmp_path)
    (tmp_path / "site.toml").write_text(tomli_w.dumps(raw))
    spawner.site_path = str(tmp_path / "site.toml")
    spawner.orm_spawner = None
    spawner.get_env = lambda: {"JUPYTERHUB_API_TOKEN": "secret"}  # JupyterHub's, for a hub
    spawner.request = parse_request({"partition": "cpu"}, spawner.site)
    next_id = str(fake_slurm.next_id + 1)
    fake_slurm.set_job(next_id, "RUNNING", nodes="cn01", comment="fhport:45678")
    spawner.api_token = "the-session-token"
    spawner.proofs = []

    async def prove(base_url: str, token: str, **_) -> bool:  # a server holding the token
        spawner.proofs.append((base_url, token))
        return token == "the-session-token"

    spawner.prove_session = prove
    return spawner


async def test_the_server_proves_it_is_the_sessions_before_it_is_routed(starting, fake_slurm):
    assert await starting._submit_and_wait("/home/alice") == ("10.0.0.1", 45678)
    assert starting.proofs == [("http://10.0.0.1:45678/user/alice/", "the-session-token")]


async def test_a_port_without_proof_ends_the_job_and_routes_nothing(starting, fake_slurm):
    starting.api_token = "not what the server holds"
    with pytest.raises(SessionFailed, match="not this session's JupyterLab"):
        await starting._submit_and_wait("/home/alice")
    assert ("cancel", starting.job_id) in fake_slurm.calls and not starting.job_node


async def test_the_host_is_never_taken_from_the_job(starting, fake_slurm):
    job_id = str(fake_slurm.next_id + 1)
    fake_slurm.set_job(job_id, "RUNNING", nodes="127.0.0.2", comment="fhport:4444")
    starting.job_id = job_id
    assert await starting._address_if_ready(fake_slurm.jobs[job_id]) is None
    fake_slurm.set_job(job_id, "RUNNING", nodes="cn01", comment="fhport:4444")
    assert await starting._address_if_ready(fake_slurm.jobs[job_id]) == ("10.0.0.1", 4444)


async def test_node_addresses_are_read_once_for_many_starts_and_again_for_a_new_node(
    starting, fake_slurm, monkeypatch
):
    reads = []
    read = fake_slurm.node_addresses

    async def counted() -> dict[str, str]:
        reads.append(1)
        return await read()

    monkeypatch.setattr(fake_slurm, "node_addresses", counted)
    assert [await starting._node_address("cn01") for _ in range(20)] == ["10.0.0.1"] * 20
    assert len(reads) == 1  # one `scontrol show node` for twenty starts
    fake_slurm.addresses["cn09"] = "10.0.0.9"  # a node added since the reading
    assert await starting._node_address("cn09") == "10.0.0.9" and len(reads) == 2
    assert await starting._node_address("nowhere") is None and len(reads) == 3


class QuietStep:
    """A step's wake-up pipe that stays quiet twice (records how long the spawner waited on
    it each time), then wakes the spawner with `says` (a port, or None for a line that is not
    one): what its session reports, in the job's comment and on the pipe."""

    def __init__(self, fake_slurm, job_id: str, says: int | None) -> None:
        self.waits: list[float] = []
        self.fake_slurm, self.job_id, self.says = fake_slurm, job_id, says
        self.port: int | None = None

    async def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        if len(self.waits) < 3:
            return False
        self.fake_slurm.set_job(self.job_id, "RUNNING", nodes="cn01", comment="fhport:45678")
        self.port = self.says
        return True

    def close(self) -> None:
        pass


def _quiet_start(starting, fake_slurm, says: int | None) -> QuietStep:
    job_id = str(fake_slurm.next_id + 1)
    fake_slurm.set_job(job_id, "RUNNING", nodes="cn01", comment="")
    starting.job_id = job_id
    starting.watcher.track(job_id)
    return QuietStep(fake_slurm, job_id, says)


def _looks(fake_slurm) -> int:
    return len([kind for kind, _ in fake_slurm.calls if kind == "query"])


async def test_a_start_with_a_wake_up_looks_every_second_and_takes_the_port_it_says(
    starting, fake_slurm
):
    """Every look is an `squeue` of the whole site: with a wake-up to come, a start looks only
    every WAKE_FALLBACK seconds (200 starts at a quarter second kept one running all the time),
    and takes the port the step says without another look, proven before it is routed."""
    from factoryhub.spawners.spawner import WAKE_FALLBACK

    step = _quiet_start(starting, fake_slurm, 45678)
    assert await starting._wait_until_listening(step) == ("10.0.0.1", 45678)
    assert step.waits == [WAKE_FALLBACK] * 3 and WAKE_FALLBACK >= 1.0
    # quiet waits (over at once here) found the first look under a second old: no new one
    assert _looks(fake_slurm) == 1
    assert starting.proofs == [("http://10.0.0.1:45678/user/alice/", "the-session-token")]


async def test_a_wake_up_that_says_no_port_is_a_fresh_look_at_the_comment(starting, fake_slurm):
    step = _quiet_start(starting, fake_slurm, None)
    assert await starting._wait_until_listening(step) == ("10.0.0.1", 45678)
    assert _looks(fake_slurm) == 2


async def test_a_port_the_step_says_is_proven_like_the_comments(starting, fake_slurm):
    starting.api_token = "not what the server holds"
    step = _quiet_start(starting, fake_slurm, 45678)
    with pytest.raises(SessionFailed, match="not this session's JupyterLab"):
        await starting._wait_until_listening(step)
    assert ("cancel", starting.job_id) in fake_slurm.calls


def _kinds(fake_slurm) -> list[str]:
    return [kind for kind, _ in fake_slurm.calls if kind in ("salloc", "srun", "submit")]


async def test_room_now_starts_an_allocation_and_the_server_as_its_step(starting, fake_slurm):
    assert await starting._submit_and_wait("/home/alice") == ("10.0.0.1", 45678)
    assert _kinds(fake_slurm) == ["salloc", "srun"]  # no batch job, no scheduler tick
    salloc_options, user, env, _ = dict(fake_slurm.calls)["salloc"]
    assert user == "alice" and "--partition=cpu" in salloc_options
    assert not any("TOKEN" in key for key in env)  # the allocation carries no secret
    job_id, _, command, _, step_env = dict(fake_slurm.calls)["srun"]
    assert job_id == starting.job_id and command[:4] == ["/bin/bash", "--noprofile", "--norc", "-c"]
    assert 'exec /usr/bin/scancel "$SLURM_JOB_ID"' in command[-1]  # no allocation outlives it
    assert "JUPYTERHUB_API_TOKEN" in step_env


async def test_no_room_now_queues_a_batch_job(starting, fake_slurm):
    fake_slurm.room = False
    assert await starting._submit_and_wait("/home/alice") == ("10.0.0.1", 45678)
    assert _kinds(fake_slurm) == ["salloc", "submit"]
    assert "Submitted as Slurm job" in " ".join(e["message"] for e in starting.progress_log.events)


@pytest.fixture
def unix_alice(monkeypatch):
    import factoryhub.spawners.spawner as module

    monkeypatch.setattr(module.pwd, "getpwnam", lambda name: SimpleNamespace(pw_dir="/home/alice"))


async def _follow(spawner) -> list[str]:
    return [event["message"] async for event in spawner.progress()]


async def test_progress_asked_before_start_runs_shows_that_starts_steps(starting, unix_alice):
    # JupyterHub serves the progress stream from the spawn request on, while it still applies
    # the options (which can wait on Slurm): 50 learners at once saw only "Server requested"
    follower = asyncio.create_task(_follow(starting))
    await asyncio.sleep(0)  # the stream is being followed before start() runs
    assert await starting.start() == ("10.0.0.1", 45678)
    seen = await asyncio.wait_for(follower, 5)
    assert any("Slurm job" in m for m in seen) and "JupyterLab is listening on cn01" in seen


async def test_the_next_spawns_stream_never_replays_the_last_ones(starting, unix_alice, fake_slurm):
    await starting.start()
    starting.clear_state()  # the server stopped
    follower = asyncio.create_task(_follow(starting))
    await asyncio.sleep(0.05)
    assert not follower.done()  # waits for the next start, shows nothing of the last one
    starting.api_token = "the-session-token"  # JupyterHub's new token for the next spawn
    this = str(fake_slurm.next_id + 1)
    fake_slurm.set_job(this, "RUNNING", nodes="cn01", comment="fhport:45679")
    await asyncio.wait_for(starting.start(), 5)
    seen = await asyncio.wait_for(follower, 5)
    assert any(f"job {this}" in m for m in seen)
    assert not any(f"job {int(this) - 1}" in m for m in seen)  # the last spawn's job


async def test_a_failed_step_ends_the_allocation_and_says_why(starting, fake_slurm, tmp_path):
    job_id = str(fake_slurm.next_id + 1)
    fake_slurm.set_job(job_id, "RUNNING", nodes="cn01")  # the server never reports a port
    fake_slurm.step_says = (
        "srun: error: Unable to create step for job 101: Job/step already completing\n"
    )
    with pytest.raises(SessionFailed, match="Unable to create step"):
        await starting._submit_and_wait("/home/alice")
    assert ("cancel", job_id) in fake_slurm.calls


async def test_associations_are_read_for_everyone_and_refreshed_behind_the_starts(
    fake_slurm, monkeypatch
):
    from factoryhub.scheduler import livesite

    async def background() -> None:
        for _ in range(3):
            await asyncio.sleep(0)

    cache = livesite.AssociationCache(fake_slurm)
    fake_slurm.accounting = Associations(("ai-research",), ("normal",))
    assert (await cache.get("alice")).accounts == ("ai-research",)
    assert (await cache.get("bob")).accounts == ("ai-research",)
    assert fake_slurm.calls == [("sacctmgr", "*")]  # one reading serves every learner
    assert await cache.get("dave") == Associations()  # not listed: no account (yet)
    assert len(fake_slurm.calls) == 1  # the reading is fresh: not asked again
    monkeypatch.setattr(livesite, "UNLISTED_RECHECK", 0.0)
    fake_slurm.listed = ("alice", "bob", "carol", "dave")  # dave was just given an account
    assert (await cache.get("dave")).accounts == ("ai-research",)  # a new reading, awaited
    assert fake_slurm.calls == [("sacctmgr", "*")] * 2
    # max age 0 (site.toml's accounting_refresh_seconds, made tiny): every call refreshes
    fake_slurm.accounting = None  # sacctmgr does not answer (slurmdbd down)
    assert (await cache.get("alice", 0.0)).accounts == ("ai-research",)  # no wait: the last one
    await background()
    assert (await cache.get("alice", 0.0)).accounts == (
        "ai-research",
    )  # the failed refresh kept it
    fake_slurm.accounting = Associations(("training",), ("normal",))
    await cache.get("alice", 0.0)
    await background()
    assert (await cache.get("alice", 0.0)).accounts == ("training",)
    await background()  # the refresh that last call started
    calls = len(fake_slurm.calls)
    await cache.get("alice")  # the default age: 60 s; this reading is fresh
    await background()
    assert len(fake_slurm.calls) == calls


async def test_without_an_accounting_database_site_toml_applies(fake_slurm):
    from factoryhub.scheduler import livesite

    assert await livesite.AssociationCache(fake_slurm).get("alice") is None


# The spawn form after a refused Start: JupyterHub renders the form again at once; it keeps the
# learner's values and shows the sentence next to its field.


@pytest.fixture
def no_refusal():
    from factoryhub.spawners.options import _REFUSALS

    _REFUSALS.clear()
    yield
    _REFUSALS.clear()


async def test_a_refused_start_keeps_the_choices_and_puts_the_sentence_by_its_field(
    spawner, fake_slurm, no_refusal
):
    posted = {"partition": ["debug"], "cpus": ["3"], "walltime": ["01:00:00"], "_xsrf": ["x"]}
    with pytest.raises(web.HTTPError) as err:
        await spawner.apply_user_options(spawner, spawner.options_from_form(posted))
    sentence = "walltime: the debug partition allows at most 30 minutes (00:30:00)"
    # the plain sentence for JupyterHub's page and the REST API, not "HTTP 400: … (…)"
    assert err.value.status_code == 400 and err.value.jupyterhub_message == sentence
    form = await spawner.options_form(spawner)
    assert '<option value="debug" selected>' in form and 'name="cpus" value="3"' in form
    assert 'class="form-control is-invalid" id="fh-walltime" name="walltime" maxlength="12"' in form
    assert 'value="01:00:00"><div class="invalid-feedback fh-error" id="fh-walltime-error">' in form
    assert "the debug partition allows at most 30 minutes (00:30:00)</div>" in form
    assert 'id="fh-fields" class="fh-refused"' in form and 'id="fh-refusal"' not in form
    again = await spawner.options_form(spawner)  # shown once: a fresh form has the defaults
    assert "fh-refused" not in again and '<option value="cpu" selected>' in again
    assert fake_slurm.count("submit") == 0


async def test_a_refusal_without_a_field_in_the_form_is_shown_above_it(
    spawner, fake_slurm, no_refusal
):
    from factoryhub.capacity import parse_partitions

    fake_slurm.live = type(fake_slurm.live)(
        parse_partitions("PartitionName=cpu MaxTime=02:00:00 State=UP\n"), fake_slurm.live.nodes
    )
    with pytest.raises(web.HTTPError):
        await spawner.apply_user_options(spawner, {"walltime": "04:00:00", "cpus": "2"})
    form = await spawner.options_form(spawner)
    assert 'id="fh-refusal" class="alert alert-danger" role="alert">cannot start: the cpu' in form
    assert 'name="cpus" value="2"' in form and 'value="04:00:00"' in form


async def test_a_scheduler_that_does_not_answer_is_said_in_a_sentence_and_keeps_the_choices(
    spawner, fake_slurm, no_refusal
):
    fake_slurm.down = True
    with pytest.raises(web.HTTPError) as err:
        await spawner.apply_user_options(spawner, {"cpus": "2"})
    assert err.value.status_code == 503
    assert err.value.jupyterhub_message.startswith("The scheduler is not answering right now")
    form = await spawner.options_form(spawner)
    assert "The scheduler is not answering right now" in form and 'name="cpus" value="2"' in form


async def test_a_refused_link_shows_its_values_and_the_sentence(spawner, no_refusal):
    from factoryhub.spawners.options import confirm_query

    with pytest.raises(web.HTTPError) as err:
        confirm_query(spawner, {"partition": ["gpu"], "walltime": ["1:30"]})
    assert err.value.status_code == 400
    form = await spawner.options_form(spawner)
    assert '<option value="gpu" selected>' in form and 'value="1:30"' in form
    assert "01:30:00 or 90" in form and 'id="fh-walltime-error"' in form


async def test_a_later_good_request_clears_the_refusal(spawner, no_refusal):
    with pytest.raises(web.HTTPError):
        await spawner.apply_user_options(spawner, {"cpus": "999"})
    await spawner.apply_user_options(spawner, {"cpus": "2"})
    assert "fh-refused" not in await spawner.options_form(spawner)


async def test_the_form_offers_the_effective_limits_of_partition_and_qos(
    spawner, fake_slurm, no_refusal
):
    import json
    import re

    limits = (QosLimits("normal", 720, None, 2), QosLimits("long", 1440, None, 4))
    fake_slurm.accounting = Associations(("training",), ("normal", "long"), limits)
    form = await spawner.options_form(spawner)
    # the partition allows 4 GPUs and 24 h; the learner's default QoS normal, 2 and 12 h
    assert '<option value="gpu">GPU nodes (H100) (up to 16 CPUs, 2 GPUs, 12 h)</option>' in form
    assert "CPU nodes (up to 32 CPUs, no GPUs, 12 h)" in form
    script = re.search(r'<script type="application/json" id="fh-limits">(.*?)</script>', form)
    table = json.loads(script.group(1))
    assert table["qos"] == "normal" and table["gpu_partitions"] == ["gpu"]
    assert table["by_qos"]["long"]["gpu"]["gpus"] == 4
    assert table["by_qos"]["long"]["gpu"]["walltime_minutes"] == 1440
    assert table["by_qos"]["normal"]["gpu"]["walltime_minutes"] == 720
    assert table["by_qos"]["normal"]["debug"]["walltime_minutes"] == 30  # the lower: debug's


async def test_a_start_said_to_be_granted_another_sessions_job_takes_nothing_of_it(
    starting, fake_slurm, tmp_path
):
    """A start whose grant names a job the hub watches as another session's (a forged grant
    line): refused before anything is recorded, renamed or cancelled; the job stays its
    owner's (before: the watcher's owner was overwritten and the owner's session dropped)."""
    job_id = str(fake_slurm.next_id + 1)
    (tmp_path / "steps").mkdir()
    theirs = tmp_path / "steps" / f"job-{job_id}.log"
    theirs.write_text("the owner's step log\n")
    starting.watcher.track(job_id, "bob", "fh:test:bob:")
    with pytest.raises(SessionFailed, match="another session's job"):
        await starting._submit_and_wait("/home/alice")
    assert starting.job_id == ""
    assert starting.watcher.owned_by_another(job_id, "alice", starting.job_name())
    assert not starting.watcher.owned_by_another(job_id, "bob", "fh:test:bob:")
    assert theirs.read_text() == "the owner's step log\n"
    assert not any(kind == "cancel" for kind, *_ in fake_slurm.calls)
    assert not list((tmp_path / "steps").glob("job-starting-*"))
