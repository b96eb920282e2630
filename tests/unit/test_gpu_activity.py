"""GPU use as activity: reading nvidia-smi's CSV (good, odd and hostile outputs), the job's
GPU ids, the busy decision, and the session's sampler run against small executables made for
each test (a stand-in for nvidia-smi that prints, fails, floods or hangs)."""

import logging
import stat
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from factoryhub.gpu_usage import (
    MAX_OUTPUT,
    GpuReadError,
    GpuUsage,
    describe_readings,
    gpu_busy,
    job_gpus,
    nvidia_smi_argv,
    parse_gpu_usage,
)
from factoryhub.session.gpu_activity import (
    ACTIVITY_SETTING,
    GpuActivity,
    gpu_activity,
    run_nvidia_smi,
)
from factoryhub.site import CullingSettings, Site, SiteError, parse_site

# --- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("87, 1024\n", (GpuUsage(87.0, 1024),)),
        ("0, 0\n100, 81559\n", (GpuUsage(0.0, 0), GpuUsage(100.0, 81559))),
        ("  3 ,  17  \n\n", (GpuUsage(3.0, 17),)),  # spaces and a trailing blank line
        ("[N/A], 512\n", (GpuUsage(None, 512),)),
        ("[Not Supported], [Not Supported]\n", (GpuUsage(None, None),)),
        ("N/A, N/A\r\n", (GpuUsage(None, None),)),
        ("12.5, 3\n", (GpuUsage(12.5, 3),)),
        (b"55, 2048\n", (GpuUsage(55.0, 2048),)),
    ],
)
def test_readings_are_parsed(output, expected):
    assert parse_gpu_usage(output) == expected


@pytest.mark.parametrize(
    ("output", "why"),
    [
        ("", "no reading"),
        ("\n \n", "no reading"),
        ("-5, 100\n", "not a number"),  # negative utilisation
        ("50, -1\n", "not a number"),  # negative memory
        ("101, 0\n", "out of range"),
        ("1e3, 0\n", "not a number"),
        ("nan, 0\n", "not a number"),
        ("٣, 0\n", "not a number"),  # a Unicode digit
        ("50\n", "1 fields"),
        ("50, 10, 7\n", "3 fields"),
        ("utilization.gpu [%], memory.used [MiB]\n", "not a number"),  # a header
        ("No devices were found\n", "1 fields"),
        ("50, 99999999999\n", "not a number"),  # more digits than any memory
        ("50, 20000000\n", "out of range"),  # 20 TiB
        ("[" + "A" * 60 + "], 0\n", "not a number"),  # a bracketed word too long
        ("$(reboot), 0\n", "not a number"),
        ("5" * 300 + ", 0\n", "characters"),  # one huge line
        ("1, 1\n" * 65, "lines"),  # more GPUs than any node
        ("1, 1\n" * 2000, "more than 4096"),  # a flood
        (b"1, 1\n" * 1000, "more than 4096 bytes"),
    ],
)
def test_what_is_not_a_reading_is_refused(output, why):
    with pytest.raises(GpuReadError, match=why):
        parse_gpu_usage(output)


def test_a_count_other_than_the_gpus_asked_for_is_not_a_reading():
    assert len(parse_gpu_usage("1, 1\n2, 2\n", expected=2)) == 2
    with pytest.raises(GpuReadError, match="1 lines for 2 GPUs"):
        parse_gpu_usage("1, 1\n", expected=2)
    with pytest.raises(GpuReadError, match="3 lines for 2 GPUs"):
        parse_gpu_usage("1, 1\n2, 2\n3, 3\n", expected=2)


def test_binary_garbage_is_not_a_reading():
    with pytest.raises(GpuReadError):
        parse_gpu_usage(b"\xff\xfe\x00, 1\n")


# --- the busy decision -----------------------------------------------------------------------


def test_a_gpu_above_the_threshold_is_busy_memory_alone_is_not():
    assert gpu_busy([GpuUsage(6.0, 0)], 5.0)
    assert not gpu_busy([GpuUsage(5.0, 80000)], 5.0)  # at the threshold, memory held
    assert not gpu_busy([GpuUsage(0.0, 80000)], 5.0)  # a model loaded, nothing computed
    assert gpu_busy([GpuUsage(0.0, 0), GpuUsage(90.0, 10)], 5.0)  # any of the job's GPUs
    assert not gpu_busy([GpuUsage(None, 10), GpuUsage(None, None)], 0.0)  # unknown: never
    assert gpu_busy([GpuUsage(1.0, 0)], 0.0)
    assert not gpu_busy([], 5.0)


def test_readings_described_for_the_log():
    text = describe_readings([GpuUsage(87.0, 1024), GpuUsage(None, None)])
    assert text == "GPU 0: 87 %, 1024 MiB; GPU 1: ?, ?"


# --- the job's GPUs and the command ----------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "gpus"),
    [
        ({"SLURM_JOB_GPUS": "0"}, ("0",)),
        ({"SLURM_JOB_GPUS": "1,3", "CUDA_VISIBLE_DEVICES": "0,1"}, ("1", "3")),
        ({"SLURM_STEP_GPUS": "2", "SLURM_JOB_GPUS": "2,3"}, ("2",)),
        ({"CUDA_VISIBLE_DEVICES": "GPU-8f3b1c2d-aaaa-bbbb"}, ("GPU-8f3b1c2d-aaaa-bbbb",)),
        ({"CUDA_VISIBLE_DEVICES": "0,0"}, ("0",)),
        ({}, ()),
        ({"CUDA_VISIBLE_DEVICES": ""}, ()),
        ({"CUDA_VISIBLE_DEVICES": "NoDevFiles"}, ()),
        ({"SLURM_JOB_GPUS": "0 -f /etc/passwd"}, ()),
        ({"SLURM_JOB_GPUS": "0,--help"}, ()),
        ({"SLURM_JOB_GPUS": "-1"}, ()),
        ({"SLURM_JOB_GPUS": ",".join(["1"] * 65)}, ()),
        ({"SLURM_JOB_GPUS": "1" * 100_000}, ()),
    ],
)
def test_the_jobs_gpus_come_from_slurm_checked(environ, gpus):
    assert job_gpus(environ) == gpus


def test_the_command_is_an_argv_for_the_jobs_gpus():
    assert nvidia_smi_argv("/usr/bin/nvidia-smi", ("1", "3")) == [
        "/usr/bin/nvidia-smi",
        "--query-gpu=utilization.gpu,memory.used",
        "--format=csv,noheader,nounits",
        "-i",
        "1,3",
    ]


# --- site.toml ------------------------------------------------------------------------------


SITE = '[hub]\n[session]\npartition="cpu"\nenvironment="d"\n[partitions.cpu]\n'
SITE += '[environments.d]\nlabel="d"\nprefix="/p"\n'


def test_the_threshold_and_sample_period_are_site_settings():
    rules = parse_site(SITE + "[culling]\ngpu_busy_percent = 20\ngpu_sample_seconds = 30\n").culling
    assert (rules.gpu_busy_percent, rules.gpu_sample_seconds) == (20.0, 30)
    assert (CullingSettings().gpu_busy_percent, CullingSettings().gpu_sample_seconds) == (5.0, 60)
    for bad in ("gpu_busy_percent = -1", "gpu_busy_percent = 100", "gpu_sample_seconds = 0"):
        with pytest.raises(SiteError, match="gpu_"):
            parse_site(f"{SITE}[culling]\n{bad}\n")


# --- the session's sampler -------------------------------------------------------------------


def standin(folder: Path, body: str) -> str:
    """A test-only stand-in for nvidia-smi: a Python script with `body`."""
    script = folder / "nvidia-smi"
    script.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def sampler(executable: str, gpus: int = 1, percent: float = 5.0) -> GpuActivity:
    log = logging.getLogger("test-gpu-activity")
    return GpuActivity({}, log, nvidia_smi_argv(executable, ["0"] * gpus), gpus, percent)


async def test_a_busy_gpu_marks_the_server_active(tmp_path):
    activity = sampler(standin(tmp_path, "print('87, 1024')"))
    assert await activity.sample()
    assert ACTIVITY_SETTING in activity.settings
    assert ACTIVITY_SETTING.endswith("_last_activity")  # what jupyter_server counts
    assert activity.settings[ACTIVITY_SETTING].tzinfo is not None


async def test_an_idle_gpu_marks_nothing(tmp_path):
    activity = sampler(standin(tmp_path, "print('0, 80000')"))
    assert not await activity.sample()
    assert activity.settings == {}


async def test_the_argv_reaches_the_command_as_it_is(tmp_path):
    body = "print('50, 1' if sys.argv[1:] == ['--query-gpu=utilization.gpu,memory.used',"
    body += " '--format=csv,noheader,nounits', '-i', '0'] else '0, 0')"
    assert await sampler(standin(tmp_path, body)).sample()


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("print('90, 1'); sys.exit(9)", "status 9"),
        ("sys.stdout.write('9' * 10_000_000)", f"more than {MAX_OUTPUT} bytes"),
        ("print('90, 1', flush=True); time.sleep(60)", "no answer within 0.5 s"),
        ("print('\\x1b[31m90, 1')", "not a number"),  # a terminal escape
    ],
)
async def test_a_failing_or_hostile_command_is_no_reading(tmp_path, body, why):
    argv = sampler(standin(tmp_path, body)).argv
    with pytest.raises(GpuReadError, match=why):
        parse_gpu_usage(await run_nvidia_smi(argv, timeout=0.5), 1)


async def test_a_missing_command_is_no_reading(tmp_path):
    with pytest.raises(GpuReadError, match="could not run"):
        await run_nvidia_smi([str(tmp_path / "nvidia-smi"), "-L"])


async def test_failures_are_logged_once_and_recovery_once(tmp_path, caplog):
    script = standin(tmp_path, "sys.exit(3)")
    activity = sampler(script)
    with caplog.at_level(logging.INFO, logger="test-gpu-activity"):
        for _ in range(3):
            assert not await activity.sample()
        assert [r.levelname for r in caplog.records] == ["WARNING"]
        assert "only kernel and terminal activity" in caplog.records[0].getMessage()
        standin(tmp_path, "print('90, 1')")
        assert await activity.sample()
        assert await activity.sample()
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]
    assert "GPU use read again: GPU 0: 90 %" in caplog.records[1].getMessage()


def fake_server(records: list[str]) -> SimpleNamespace:
    log = SimpleNamespace(info=lambda msg, *a: records.append(msg % a))
    return SimpleNamespace(log=log, web_app=SimpleNamespace(settings={}))


def test_without_gpus_or_nvidia_smi_there_is_no_sampler_and_one_line_says_why():
    site, gpus = Site(), {"SLURM_JOB_GPUS": "0", "PATH": "/nowhere"}
    said: list[str] = []
    assert gpu_activity(fake_server(said), site, {"PATH": "/usr/bin"}) is None
    assert said == []  # no GPUs held: nothing to say
    assert gpu_activity(fake_server(said), site, gpus, which=lambda *a, **k: None) is None
    assert len(said) == 1 and "no nvidia-smi on its PATH" in said[0]
    off = Site(culling=CullingSettings(enabled=False))
    assert gpu_activity(fake_server(said), off, gpus, which=lambda *a, **k: "/x") is None
    assert gpu_activity(fake_server(said), None, gpus, which=lambda *a, **k: "/x") is None


def test_a_session_with_gpus_and_nvidia_smi_samples_them_on_its_path(tmp_path):
    executable = standin(tmp_path, "print('0, 0')")
    said: list[str] = []
    environ = {"SLURM_JOB_GPUS": "1,2", "PATH": f"/nowhere:{tmp_path}"}
    activity = gpu_activity(fake_server(said), Site(), environ)
    assert activity is not None
    assert activity.argv == nvidia_smi_argv(executable, ("1", "2"))
    assert (activity.gpus, activity.busy_percent) == (2, 5.0)
    assert "busier than 5 % counts as activity" in said[0]
