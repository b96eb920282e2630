"""What a job costs in energy and CO2e: Slurm's own figure where the site measures it, otherwise a
transparent model whose factors come from `site.toml` and are shown next to the result.

The model: (CPU core-hours × W per core + GPU-hours × W per GPU of that type) × PUE gives the
facility energy; × the grid's carbon intensity gives grams of CO2e. Everything here is pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from .site import EnergySettings


@dataclass(frozen=True)
class JobUsage:
    """What a job holds and for how long (seconds elapsed so far, or in all once ended)."""

    cpus: int
    seconds: float
    gpus: int = 0
    gpu_type: str = ""


@dataclass(frozen=True)
class EnergyFigure:
    """Energy in Wh and CO2e in g; `measured` when Slurm gathered it, otherwise an estimate
    whose factors `basis` spells out."""

    wh: float
    co2e_g: float
    measured: bool
    basis: str

    def label(self) -> str:
        """ "12.3 Wh · 3.1 g CO2e (estimate)" — the figure as a learner reads it."""
        kind = "measured by Slurm" if self.measured else "estimate"
        return f"{_number(self.wh)} Wh · {_number(self.co2e_g)} g CO2e ({kind})"


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def gpu_watts(gpu_type: str, factors: EnergySettings) -> float:
    """The draw the site assumes for one GPU of `gpu_type`."""
    return factors.gpu_watts.get(gpu_type, factors.default_gpu_watts)


def model_basis(usage: JobUsage, factors: EnergySettings) -> str:
    """The model's factors in words, shown beside the figure."""
    parts = [f"{usage.cpus} cores × {factors.watts_per_core:g} W"]
    if usage.gpus:
        watts = gpu_watts(usage.gpu_type, factors)
        parts.append(f"{usage.gpus} {usage.gpu_type or 'GPU'} × {watts:g} W")
    text = " + ".join(parts)
    text += f", × PUE {factors.pue:g}, × {factors.carbon_g_per_kwh:g} g CO2e/kWh"
    return f"{text}{f' ({factors.source})' if factors.source else ''}"


def co2e_grams(wh: float, factors: EnergySettings) -> float:
    """Grams of CO2e for `wh` of facility energy at the site's grid intensity."""
    return wh / 1000 * factors.carbon_g_per_kwh


def estimate_energy(usage: JobUsage, factors: EnergySettings) -> EnergyFigure:
    """The model's figure for `usage`."""
    hours = max(usage.seconds, 0.0) / 3600
    it_watts = usage.cpus * factors.watts_per_core
    if usage.gpus:
        it_watts += usage.gpus * gpu_watts(usage.gpu_type, factors)
    wh = it_watts * hours * factors.pue
    return EnergyFigure(wh, co2e_grams(wh, factors), False, model_basis(usage, factors))


def measured_energy(joules: float, factors: EnergySettings) -> EnergyFigure:
    """Slurm's consumed energy (joules, IT side) with the site's PUE and carbon intensity."""
    wh = joules / 3600 * factors.pue
    basis = (
        f"Slurm's energy accounting, × PUE {factors.pue:g},"
        f" × {factors.carbon_g_per_kwh:g} g CO2e/kWh"
    )
    return EnergyFigure(wh, co2e_grams(wh, factors), True, basis)


def job_energy(
    usage: JobUsage, factors: EnergySettings, joules: float | None = None
) -> EnergyFigure:
    """Slurm's measurement when there is one (a positive figure), the model otherwise."""
    if joules is not None and joules > 0:
        return measured_energy(joules, factors)
    return estimate_energy(usage, factors)


def total(figures: list[EnergyFigure]) -> EnergyFigure:
    """The sum of several figures; measured only if all were."""
    measured = bool(figures) and all(f.measured for f in figures)
    basis = "sum of the jobs above" if figures else "no jobs"
    return EnergyFigure(sum(f.wh for f in figures), sum(f.co2e_g for f in figures), measured, basis)
