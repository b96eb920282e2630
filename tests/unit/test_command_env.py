"""No secret of the hub, proxy or service reaches a command run for a learner (issue 13,
finding 4): every Slurm command runs with an explicit allow-list of variables."""

from factoryhub.scheduler.slurm import SlurmClient, command_environment

SECRETS = {
    "CONFIGPROXY_AUTH_TOKEN": "proxy-secret",
    "JUPYTERHUB_API_TOKEN": "service-secret",
    "JPY_COOKIE_SECRET": "cookie-secret",
}


def test_the_allow_list_keeps_locale_and_slurm_conf_only():
    environ = {**SECRETS, "LANG": "C.UTF-8", "SLURM_CONF": "/etc/x.conf", "HOME": "/root"}
    assert command_environment(environ) == {
        "LANG": "C.UTF-8",
        "SLURM_CONF": "/etc/x.conf",
        "PATH": "/usr/bin:/bin",
    }


async def test_a_command_given_no_environment_sees_none_of_the_callers(monkeypatch):
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    result = await SlurmClient(bin_dir="/usr/bin", timeout=5).run(["/usr/bin/env"])
    assert not any(secret in result.stdout for secret in SECRETS.values())
    assert "PATH=/usr/bin:/bin" in result.stdout.splitlines()


async def test_commands_exits_are_watched_through_a_pidfd_not_a_thread_each():
    import asyncio
    import sys
    import threading

    from factoryhub.scheduler.slurm import watch_children_with_pidfd

    if sys.version_info >= (3, 12):
        assert not watch_children_with_pidfd()  # Python does it by itself
        return
    previous = asyncio.get_child_watcher()
    try:
        assert watch_children_with_pidfd()
        assert isinstance(asyncio.get_child_watcher(), asyncio.PidfdChildWatcher)
        before = set(threading.enumerate())
        proc = await asyncio.create_subprocess_exec("true")
        started = [t.name for t in set(threading.enumerate()) - before]
        assert not any(name.startswith("waitpid-") for name in started)
        assert await proc.wait() == 0
    finally:
        asyncio.set_child_watcher(previous)  # the other tests' loops


def test_without_a_running_loop_the_default_watcher_stays():
    from factoryhub.scheduler.slurm import watch_children_with_pidfd

    assert not watch_children_with_pidfd()  # e.g. `jupyterhub upgrade-db` loading the config
