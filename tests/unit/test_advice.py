"""The GPU widget's advice after a refusal offers the effective limit — the partition's,
lowered by the learner's QoS per job — as the spawn form does, not the partition's alone
(it advised 4 GPUs where the QoS allows 2, and the next request was refused)."""

from __future__ import annotations

import pytest

from factoryhub.request import RequestError, access_for, parse_request
from factoryhub.slurmoutput import Associations, QosLimits
from factoryhub.widgets.advice import suggest

NORMAL = QosLimits("normal", max_walltime_minutes=720, max_gpus_per_job=2, max_gpus_per_user=4)


def _advice(site, options, limits=(NORMAL,)):
    access = access_for(site, "carol", (), Associations(("training",), ("normal",), limits))
    with pytest.raises(RequestError) as refused:
        parse_request(options, site, access)
    return suggest(options, refused.value, site, access)


def test_the_qos_per_job_limit_lowers_the_partitions(demo_site):
    assert (
        _advice(demo_site, {"partition": "gpu", "gpus": 6})
        == "On gpu you can ask for up to 2 GPUs."
    )


def test_without_a_qos_limit_the_partitions_own_is_offered(demo_site):
    assert (
        _advice(demo_site, {"partition": "gpu", "gpus": 6}, ())
        == "On gpu you can ask for up to 4 GPUs."
    )


def test_a_walltime_offers_the_qos_walltime(demo_site):
    said = _advice(demo_site, {"partition": "gpu", "walltime": "2-00:00:00"})
    assert said == "On gpu you can ask for up to 12:00:00 of walltime."
