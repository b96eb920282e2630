"""The energy model: arithmetic, the measured path, labels that say what they are."""

import pytest

from factoryhub.energy import JobUsage, estimate_energy, job_energy, total
from factoryhub.site import EnergySettings

FACTORS = EnergySettings(
    watts_per_core=10.0,
    gpu_watts={"h100": 700.0},
    default_gpu_watts=300.0,
    pue=1.5,
    carbon_g_per_kwh=200.0,
    source="test factors",
)


def test_cpu_hours_times_watts_times_pue():
    figure = estimate_energy(JobUsage(cpus=4, seconds=1800), FACTORS)
    assert figure.wh == pytest.approx(4 * 10 * 0.5 * 1.5)  # 30 Wh
    assert figure.co2e_g == pytest.approx(30 / 1000 * 200)  # 6 g
    assert not figure.measured


def test_gpus_use_their_type_and_unknown_types_the_default():
    h100 = estimate_energy(JobUsage(cpus=1, seconds=3600, gpus=2, gpu_type="h100"), FACTORS)
    other = estimate_energy(JobUsage(cpus=1, seconds=3600, gpus=2, gpu_type="a40"), FACTORS)
    assert h100.wh == pytest.approx((10 + 2 * 700) * 1.5)
    assert other.wh == pytest.approx((10 + 2 * 300) * 1.5)
    assert "2 h100 × 700 W" in h100.basis and "PUE 1.5" in h100.basis
    assert "test factors" in h100.basis


def test_slurm_measurement_wins_when_positive():
    usage = JobUsage(cpus=4, seconds=3600)
    measured = job_energy(usage, FACTORS, joules=36_000)  # 10 Wh at the wall
    assert measured.measured and measured.wh == pytest.approx(15.0)
    assert "measured by Slurm" in measured.label()
    assert not job_energy(usage, FACTORS, joules=0).measured  # 0 means "not gathered"


def test_label_marks_estimates_and_total_adds_up():
    a = estimate_energy(JobUsage(cpus=1, seconds=3600), FACTORS)
    b = estimate_energy(JobUsage(cpus=2, seconds=3600), FACTORS)
    summed = total([a, b])
    assert summed.wh == pytest.approx(a.wh + b.wh)
    assert a.label().endswith("(estimate)")
    assert a.label().startswith("15.0 Wh")


def test_negative_elapsed_counts_as_nothing():
    assert estimate_energy(JobUsage(cpus=1, seconds=-5), FACTORS).wh == 0
