"""The spawn form: `templates/form.html` rendered on the server from the site (it works without
JavaScript), under the site's own templates (site.toml `[hub] template_dirs`).

This module only gathers what the form shows — values, the effective limits, capacity, the
estimate, a refusal — into the template's context; the template escapes every value, and what
comes back is checked by `parse_request`, never trusted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from factoryhub.capacity import Capacity
from factoryhub.durations import parse_minutes
from factoryhub.estimate import Estimate
from factoryhub.request import (
    ResourceRequest,
    UserAccess,
    effective_limits,
    qos_label,
    qos_limits_of,
)
from factoryhub.servicedb import read_announcements
from factoryhub.site import Site
from factoryhub.templating import template_environment

from .notices import Notices

TEMPLATE = "form.html"


@dataclass(frozen=True)
class Refusal:
    """A request the hub refused, shown again in the form: the learner's own values (strings,
    as sent), the sentence, and the field it is about (None: the request as a whole)."""

    options: dict[str, object] = field(default_factory=dict)
    message: str = ""
    field: str | None = None


def _choices(options: dict[str, str], chosen: object) -> list[dict[str, object]]:
    return [{"value": v, "text": t, "selected": v == chosen} for v, t in options.items()]


def _capacity_rows(site: Site, capacity: Capacity | None) -> list[dict[str, str]] | None:
    if capacity is None:
        return None
    rows = []
    for name in site.learner_partitions():  # a partition kept for workshops is not offered
        if name not in capacity.partitions:
            continue
        free = capacity.summary(name)
        gpus = f"{free['gpus_free']} of {free['gpus_total']}" if free["gpus_total"] else "none"
        rows.append(
            {
                "partition": name,
                "cpus": f"{free['cpus_idle']} of {free['cpus_total']}",
                "gpus": gpus,
                "state": "up" if capacity.partitions[name].up else "not accepting jobs",
            }
        )
    return rows


def _values(site: Site, prefill: ResourceRequest | None, refusal: Refusal | None) -> dict:
    """What each field shows: the site's defaults, or a link's checked request, under the
    values of a refused request (the learner's own, kept)."""
    defaults = site.session
    # The site's default is written as Slurm reads it ("30:00" is 30 minutes): show it in a
    # form the learner's own input is read in.
    chosen = prefill or ResourceRequest(
        partition=defaults.partition,
        cpus=defaults.cpus,
        memory_gb=defaults.memory_gb,
        walltime_minutes=parse_minutes(defaults.walltime),
        environment=defaults.environment,
    )
    values = chosen.to_options()
    if refusal is not None:
        values.update({k: "" if v is None else str(v) for k, v in refusal.options.items()})
    return values


def _access(access: UserAccess, values: dict) -> dict[str, object]:
    """Account and QoS when there is a choice; a reservation only for its members."""
    qos_text = ""
    if len(access.qos) == 1 and qos_label(access.qos[0], access) != access.qos[0]:
        qos_text = f"Your quality of service: {qos_label(access.qos[0], access)}"
    many = len(access.accounts) > 1, len(access.qos) > 1
    return {
        "accounts": _choices({a: a for a in access.accounts}, values.get("account"))
        if many[0]
        else [],
        "qos": _choices({q: qos_label(q, access) for q in access.qos}, values.get("qos"))
        if many[1]
        else [],
        "qos_text": qos_text,
        "reservations": _choices(
            {"": "none", **{r: r for r in access.reservations}}, values.get("reservation", "")
        )
        if access.reservations
        else [],
    }


def _limits(site: Site, access: UserAccess) -> dict[str, object]:
    """Each partition's effective limits under each of the learner's QoS ("": none known),
    for the labels and for the form's script when the learner changes partition or QoS."""
    by_qos: dict[str, dict[str, dict[str, object]]] = {}
    for qos in ("", *access.qos):
        table = by_qos[qos] = {}
        for name, part in site.learner_partitions().items():
            lim = effective_limits(part, qos_limits_of(qos, access) if qos else None)
            table[name] = {**asdict(lim), "label": lim.label(name, part)}
    return {
        "qos": access.qos[0] if access.qos else "",
        "by_qos": by_qos,
        "gpu_partitions": [n for n, p in site.partitions.items() if p.gpu_types],
    }


def _refusal_context(refusal: Refusal | None, shown: set[str]) -> tuple[dict[str, str], str]:
    """A refusal's sentence next to its field when the form shows that field (without the
    field's name, which the label already says), otherwise above the fields."""
    if refusal is None:
        return {}, ""
    if refusal.field in shown:
        prefix = f"{refusal.field}: "
        message = refusal.message.removeprefix(prefix)
        return {refusal.field: message}, ""
    return {}, refusal.message


def _confirm_text(course: str, title: str) -> str:
    """For a link that named a course: what will start (the link itself starts nothing; the
    learner's POST of this form does)."""
    if not course:
        return ""
    return (
        f"Start the course {title or course} with the resources below? Check them and press Start."
    )


def _estimate(estimate: Estimate | None, url: str) -> dict[str, str]:
    return {
        "kind": estimate.kind if estimate else "unknown",
        "message": estimate.message if estimate else "no estimate yet",
        "url": url,
    }


@dataclass(frozen=True)
class FormContext:
    """Everything `render_options_form` needs beyond the site."""

    capacity: Capacity | None = None
    estimate: Estimate | None = None
    estimate_url: str = ""
    access: UserAccess = field(default_factory=UserAccess)
    prefill: ResourceRequest | None = None
    course_title: str = ""
    refusal: Refusal | None = None


def form_context(site: Site, ctx: FormContext) -> dict[str, object]:
    """The template's variables (pure; tests read them without HTML)."""
    values = _values(site, ctx.prefill, ctx.refusal)
    access = _access(ctx.access, values)
    limits = _limits(site, ctx.access)
    table = limits["by_qos"].get(values.get("qos") or limits["qos"], limits["by_qos"][""])
    mine = table.get(values["partition"]) or table[site.session.partition]
    gpu_types = sorted({t for part in site.partitions.values() for t in part.gpu_types})
    shown = {"partition", "cpus", "memory_gb", "gpus", "walltime", "environment"}
    shown |= {"gpu_type"} if gpu_types else set()
    shown |= {n for n, key in (("account", "accounts"), ("qos", "qos")) if access[key]}
    shown |= {"reservation"} if access["reservations"] else set()
    errors, general = _refusal_context(ctx.refusal, shown)
    course = str(values.get("course") or "")
    return {
        "values": values,
        "errors": errors,
        "refusal": general,
        "refused": ctx.refusal is not None,
        "confirm": _confirm_text(course, ctx.course_title),
        "course": course,
        "capacity": _capacity_rows(site, ctx.capacity),
        "estimate": _estimate(ctx.estimate, ctx.estimate_url),
        "partitions": _choices(
            {name: table[name]["label"] for name in site.learner_partitions()},
            values["partition"],
        ),
        "max": {k: mine[k] for k in ("cpus", "memory_gb", "gpus")},
        # "any" sends no type: a GPU type is only taken with GPUs, and then defaults to the
        # partition's first.
        "gpu_types": _choices(
            {"": "any (the partition's)", **{t: t for t in gpu_types}}, values.get("gpu_type")
        )
        if gpu_types
        else [],
        "environments": _choices(
            {name: env.label for name, env in site.environments.items()}, values["environment"]
        ),
        **access,
        "limits": limits,
    }


def render_options_form(
    site: Site,
    capacity: Capacity | None = None,
    estimate: Estimate | None = None,
    estimate_url: str = "",
    access: UserAccess | None = None,
    prefill: ResourceRequest | None = None,
    course_title: str = "",
    refusal: Refusal | None = None,
    notices: Notices | None = None,
) -> str:
    """HTML fields for JupyterHub's spawn page (JupyterHub wraps them in its own form), with
    the site's defaults or, from a link such as the catalogue's, a checked request `prefill`;
    after a refused Start, the learner's own values and the sentence next to its field."""
    ctx = FormContext(
        capacity, estimate, estimate_url, access or UserAccess(), prefill, course_title, refusal
    )
    env = template_environment("factoryhub.spawners", site.hub.template_dirs)
    # the admins' current announcements (factoryhub announce), read from the hub service's
    # database: everyone's, and each partition's labelled with it
    news = read_announcements(site)
    return env.get_template(TEMPLATE).render(
        site_title=site.hub.title,
        announcements=news,
        notices=notices or Notices(),
        **form_context(site, ctx),
    )
