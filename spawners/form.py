"""The spawn form, rendered on the server from the site (works without JavaScript).

The live form (free capacity, estimates, per-QoS limits) grows here; every value shown is
escaped, and what comes back is checked by `parse_request`, never trusted.
"""

from __future__ import annotations

from html import escape

from factoryhub.capacity import Capacity
from factoryhub.durations import describe_minutes, format_minutes, parse_minutes
from factoryhub.estimate import Estimate
from factoryhub.request import ResourceRequest, UserAccess
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


def _capacity_table(site: Site, capacity: Capacity | None) -> str:
    if capacity is None:
        return (
            '<p class="text-warning">Free capacity is unknown: the scheduler is not answering.</p>'
        )
    rows = []
    for name in site.partitions:
        if name not in capacity.partitions:
            continue
        free = capacity.summary(name)
        gpus = f"{free['gpus_free']} of {free['gpus_total']}" if free["gpus_total"] else "none"
        state = "up" if capacity.partitions[name].up else "not accepting jobs"
        rows.append(
            f"<tr><td>{escape(name)}</td><td>{free['cpus_idle']} of {free['cpus_total']}</td>"
            f"<td>{escape(gpus)}</td><td>{escape(state)}</td></tr>"
        )
    return (
        '<table class="table table-sm" id="fh-capacity"><caption>Free right now</caption>'
        "<thead><tr><th>Partition</th><th>Idle CPUs</th><th>Free GPUs</th><th>State</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _estimate_line(estimate: Estimate | None, url: str) -> str:
    text = estimate.message if estimate else "no estimate yet"
    kind = estimate.kind if estimate else "unknown"
    return (
        f'<p id="fh-estimate" data-kind="{escape(kind)}" data-url="{escape(url)}">'
        f"Your session: <strong>{escape(text)}</strong></p>"
    )


# Progressive enhancement: with JavaScript the estimate follows the learner's edits; without it
# the form still works and shows the estimate for the defaults.
_LIVE_ESTIMATE = """<script>
(() => {
  const line = document.getElementById("fh-estimate");
  const form = line.closest("form");
  const text = line.querySelector("strong");
  let timer;
  async function update() {
    const params = new URLSearchParams(new FormData(form));
    params.delete("_xsrf");
    try {
      const reply = await fetch(line.dataset.url + "?" + params, {credentials: "same-origin"});
      const body = await reply.json();
      text.textContent = body.message;
      line.dataset.kind = reply.ok ? body.kind : "invalid";
    } catch (err) {
      text.textContent = "no estimate right now";
    }
  }
  form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(update, 250); });
})();
</script>"""


def qos_label(name: str, access: UserAccess) -> str:
    """A QoS with its per-job limits from the accounting database, e.g. "normal (per job: at
    most 2 GPUs, 12 h)"."""
    limit = next((q for q in access.qos_limits if q.name == name), None)
    if limit is None:
        return name
    parts = []
    if limit.max_gpus_per_job is not None:
        parts.append(f"{limit.max_gpus_per_job} GPUs")
    if limit.max_cpus_per_job is not None:
        parts.append(f"{limit.max_cpus_per_job} CPUs")
    if limit.max_memory_mb_per_job is not None:
        parts.append(f"{limit.max_memory_mb_per_job // 1024} GB")
    if limit.max_walltime_minutes is not None:
        parts.append(describe_minutes(limit.max_walltime_minutes))
    return f"{name} (per job: at most {', '.join(parts)})" if parts else name


def _access_fields(access: UserAccess) -> list[str]:
    """Account and QoS when there is a choice; a reservation only for its members."""
    fields = []
    if len(access.accounts) > 1:
        accounts = {a: a for a in access.accounts}
        fields.append(_select("account", "Account to charge", accounts, access.accounts[0]))
    if len(access.qos) > 1:
        choices = {q: qos_label(q, access) for q in access.qos}
        fields.append(_select("qos", "Quality of service", choices, access.qos[0]))
    elif access.qos and qos_label(access.qos[0], access) != access.qos[0]:
        text = f"Your quality of service: {qos_label(access.qos[0], access)}"
        fields.append(f'<p id="fh-qos">{escape(text)}</p>')
    if access.reservations:
        choices = {"": "none", **{r: r for r in access.reservations}}
        fields.append(_select("reservation", "Reservation (e.g. your workshop)", choices, ""))
    return fields


def _confirm_course(request: ResourceRequest, title: str) -> list[str]:
    """For a link that named a course: what will start, and the course as a form field (the
    link itself starts nothing; the learner's POST of this form does)."""
    text = f"Start the course {title} with the resources below? Check them and press Start."
    return [
        f'<p id="fh-confirm" class="alert alert-info">{escape(text)}</p>',
        f'<input type="hidden" name="course" value="{escape(request.course)}">',
    ]


def render_options_form(
    site: Site,
    capacity: Capacity | None = None,
    estimate: Estimate | None = None,
    estimate_url: str = "",
    access: UserAccess | None = None,
    prefill: ResourceRequest | None = None,
    course_title: str = "",
) -> str:
    """HTML fields for JupyterHub's spawn page (JupyterHub wraps them in its own form), with
    the site's defaults or, from a link such as the catalogue's, a checked request `prefill`."""
    defaults = site.session
    partitions = {
        name: f"{part.label or name} (up to {part.max_cpus} CPUs, {part.max_gpus} GPUs,"
        f" {part.max_walltime})"
        for name, part in site.partitions.items()
    }
    gpu_types = sorted({t for part in site.partitions.values() for t in part.gpu_types})
    largest = max(site.partitions.values(), key=lambda p: p.max_cpus)
    # The site's default is written as Slurm reads it ("30:00" is 30 minutes): show it in a
    # form the learner's own input is read in.
    chosen = prefill or ResourceRequest(
        partition=defaults.partition,
        cpus=defaults.cpus,
        memory_gb=defaults.memory_gb,
        walltime_minutes=parse_minutes(defaults.walltime),
        environment=defaults.environment,
    )
    fields = (
        _confirm_course(prefill, course_title or prefill.course)
        if prefill and prefill.course
        else []
    )
    fields += [
        _capacity_table(site, capacity),
        _estimate_line(estimate, estimate_url),
        _select("partition", "Partition", partitions, chosen.partition),
        _number("cpus", "CPUs", chosen.cpus, 1, largest.max_cpus),
        _number("memory_gb", "Memory (GB)", chosen.memory_gb, 1, largest.max_memory_gb),
        _number("gpus", "GPUs", chosen.gpus, 0, max(p.max_gpus for p in site.partitions.values())),
    ]
    if gpu_types:
        # "any" sends no type: a GPU type is only taken with GPUs, and then defaults to the
        # partition's first.
        types = {"": "any (the partition's)", **{t: t for t in gpu_types}}
        fields.append(_select("gpu_type", "GPU type", types, chosen.gpu_type))
    fields += [
        '<div class="form-group"><label for="fh-walltime">Walltime (minutes, or HH:MM:SS)'
        '</label><input class="form-control" id="fh-walltime" name="walltime" maxlength="12"'
        f' value="{escape(format_minutes(chosen.walltime_minutes))}"></div>',
        _select(
            "environment",
            "Software environment",
            {name: env.label for name, env in site.environments.items()},
            chosen.environment,
        ),
    ]
    fields += _access_fields(access or UserAccess())
    if estimate_url:
        fields.append(_LIVE_ESTIMATE)
    return "\n".join(fields)
