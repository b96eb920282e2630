"""The spawn form, rendered on the server from the site (works without JavaScript).

The live form (free capacity, estimates, per-QoS limits) grows here; every value shown is
escaped, and what comes back is checked by `parse_request`, never trusted.
"""

from __future__ import annotations

from html import escape

from factoryhub.site import Site


def _select(name: str, label: str, options: dict[str, str], chosen: str) -> str:
    items = "".join(
        f'<option value="{escape(value)}"{" selected" if value == chosen else ""}>'
        f"{escape(text)}</option>"
        for value, text in options.items()
    )
    return (
        f'<div class="form-group"><label for="fh-{name}">{escape(label)}</label>'
        f'<select class="form-control" id="fh-{name}" name="{name}">{items}</select></div>'
    )


def _number(name: str, label: str, value: int, low: int, high: int) -> str:
    return (
        f'<div class="form-group"><label for="fh-{name}">{escape(label)}</label>'
        f'<input class="form-control" type="number" id="fh-{name}" name="{name}"'
        f' value="{value}" min="{low}" max="{high}"></div>'
    )


def render_options_form(site: Site) -> str:
    """HTML fields for JupyterHub's spawn page (JupyterHub wraps them in its own form)."""
    defaults = site.session
    partitions = {
        name: f"{part.label or name} (up to {part.max_cpus} CPUs, {part.max_gpus} GPUs,"
        f" {part.max_walltime})"
        for name, part in site.partitions.items()
    }
    gpu_types = sorted({t for part in site.partitions.values() for t in part.gpu_types})
    largest = max(site.partitions.values(), key=lambda p: p.max_cpus)
    fields = [
        _select("partition", "Partition", partitions, defaults.partition),
        _number("cpus", "CPUs", defaults.cpus, 1, largest.max_cpus),
        _number("memory_gb", "Memory (GB)", defaults.memory_gb, 1, largest.max_memory_gb),
        _number("gpus", "GPUs", 0, 0, max(p.max_gpus for p in site.partitions.values())),
    ]
    if gpu_types:
        fields.append(_select("gpu_type", "GPU type", {t: t for t in gpu_types}, gpu_types[0]))
    fields += [
        '<div class="form-group"><label for="fh-walltime">Walltime (HH:MM:SS)</label>'
        f'<input class="form-control" id="fh-walltime" name="walltime" maxlength="12"'
        f' value="{escape(defaults.walltime)}"></div>',
        _select(
            "environment",
            "Software environment",
            {name: env.label for name, env in site.environments.items()},
            defaults.environment,
        ),
    ]
    return "\n".join(fields)
