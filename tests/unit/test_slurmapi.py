"""The one Slurm interface: `SlurmAPI` names every public async method of the real client, and
the client and the unit tests' fake both implement each with the same parameters, so a method
added to the client cannot be missing from the fake (where it would once have run real code).
The fake answers from its scripted job table, so code under test reaches every step: the
spawner's stop() now cancels its session's Dask workers here too."""

import inspect
from types import SimpleNamespace

import pytest
from conftest import FakeSlurm

from factoryhub.scheduler.slurm import SlurmClient
from factoryhub.slurmapi import SlurmAPI


def _async_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(function)
        for name, function in inspect.getmembers(cls, inspect.iscoroutinefunction)
        if not name.startswith("_")
    }


def _parameters(signature: inspect.Signature) -> list[tuple[str, object, object]]:
    """Names, kinds and defaults (annotations are left to the type checker)."""
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


INTERFACE = _async_methods(SlurmAPI)


def test_the_protocol_names_every_public_async_method_of_the_client():
    assert set(_async_methods(SlurmClient)) == set(INTERFACE)
    assert {"tagged_jobs", "job_table", "set_comment", "job_end", "run_as"} <= set(INTERFACE)


@pytest.mark.parametrize("implementation", [SlurmClient, FakeSlurm])
def test_each_implementation_has_every_method_with_the_protocols_parameters(implementation):
    methods = _async_methods(implementation)
    assert sorted(set(INTERFACE) - set(methods)) == []
    for name, signature in INTERFACE.items():
        assert _parameters(methods[name]) == _parameters(signature), name


def test_the_fake_is_no_client_underneath():
    assert SlurmClient not in FakeSlurm.__mro__
    assert isinstance(FakeSlurm(), SlurmAPI) and isinstance(SlurmClient(), SlurmAPI)


async def test_the_fake_answers_from_its_job_table(fake_slurm):
    fake_slurm.set_job("7", "RUNNING", name="fh-dask-7-1", end="2030-01-01T01:00:00")
    fake_slurm.set_job("8", "PENDING", name="fh:test:alice:")
    assert [j.job_id for j in await fake_slurm.tagged_jobs("fh-dask-")] == ["7"]
    assert set((await fake_slurm.job_table()).jobs) == {"7", "8"}
    assert await fake_slurm.job_end("7") == "2030-01-01T01:00:00"
    assert await fake_slurm.job_end("8") == ""
    await fake_slurm.set_comment("8", "fhport:4242")
    assert fake_slurm.jobs["8"].comment == "fhport:4242"
    fake_slurm.energy = {"7": 3600.0}
    assert await fake_slurm.consumed_energy(["7", "8"]) == {"7": 3600.0}
    assert (await fake_slurm.run_as("alice", "tail", ["-n", "5", "x"])).returncode == 0
    assert ("run_as", ("alice", "tail", ("-n", "5", "x"))) in fake_slurm.calls


async def test_stop_cancels_the_sessions_own_dask_workers_and_no_one_elses(fake_slurm, repo):
    from factoryhub.spawners import SlurmSpawner
    from factoryhub.spawners.watcher import _WATCHERS

    _WATCHERS.clear()
    spawner = SlurmSpawner(
        user=SimpleNamespace(name="alice", url="/user/alice/", id=1),
        slurm_client=fake_slurm,
        site_path=str(repo / "hub_config" / "site.toml"),
        hub_id="test",
    )
    fake_slurm.set_job("7", "RUNNING", name="fh:test:alice:")
    fake_slurm.set_job("21", "RUNNING", name="fh-dask-7-500", user="alice")
    fake_slurm.set_job("22", "PENDING", name="fh-dask-7-500", user="mallory")  # named like it
    fake_slurm.set_job("23", "RUNNING", name="fh-dask-8-500", user="alice")  # another session's
    spawner.load_state({"job_id": "7", "job_node": "cn01"})
    try:
        await spawner.stop()
    finally:
        _WATCHERS.clear()
    cancelled = [job for kind, job in fake_slurm.calls if kind == "cancel"]
    assert cancelled == ["7", "21"]
    assert ("tagged_jobs", "fh-dask-7-") in fake_slurm.calls
