import re
from dataclasses import replace

import pytest

from factoryhub.request import RequestError, access_for, draft_request, parse_request
from factoryhub.scheduler.slurm import Associations, QosLimits
from factoryhub.site import AccessSettings


def test_defaults_come_from_the_site(demo_site):
    req = parse_request({}, demo_site)
    assert (req.partition, req.cpus, req.memory_gb, req.walltime_minutes, req.gpus) == (
        "cpu",
        1,
        2,
        60,
        0,
    )


def test_form_lists_and_json_values_give_the_same_request(demo_site):
    form = {
        "partition": ["gpu"],
        "cpus": ["4"],
        "memory_gb": ["16"],
        "gpus": ["2"],
        "gpu_type": ["h100"],
        "walltime": ["02:00:00"],
        "environment": ["default"],
    }
    rest = {"partition": "gpu", "cpus": 4, "memory_gb": 16, "gpus": 2, "walltime": "120"}
    assert parse_request(form, demo_site) == parse_request(rest, demo_site)
    assert parse_request(rest, demo_site).gpu_type == "h100"


def test_normalised_options_parse_back_to_the_same_request(demo_site):
    for raw in ({"partition": "debug", "walltime": "20"}, {"partition": "gpu", "gpus": 3}, {}):
        req = parse_request(raw, demo_site)
        assert parse_request(req.to_options(), demo_site) == req


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"gpus": 5, "partition": "gpu"}, "the gpu partition allows at most 4 GPUs per job"),
        ({"gpus": 1}, "the cpu partition has no GPUs"),
        (
            {"walltime": "01:00:00", "partition": "debug"},
            "debug partition allows at most 30 minutes",
        ),
        ({"cpus": 64}, "at most 32 CPUs"),
        ({"cpus": 0}, "cpus: at least 1"),
        ({"cpus": -1}, "cpus: '-1' is not a whole number|cpus: at least 1"),
        ({"cpus": "1.5"}, "not a whole number"),
        ({"cpus": 1.5}, "expected a whole number"),
        ({"cpus": True}, "expected a whole number"),
        ({"cpus": "١٢"}, "not a whole number"),
        ({"cpus": "99999999999"}, "not a whole number"),
        ({"cpus": None}, "expected a whole number"),
        ({"cpus": ["1", "2"]}, "exactly one value"),
        ({"partition": "cpu\n#SBATCH --uid=0"}, "is not offered here"),
        ({"partition": "cpu; rm -rf ~"}, "is not offered here"),
        ({"partition": ""}, "is not offered here"),
        ({"partition": {"a": 1}}, "is not offered here"),
        ({"gpus": 1, "partition": "gpu", "gpu_type": "a100"}, "gpu_type: 'a100' is not offered"),
        ({"walltime": "$(reboot)"}, "is not a time"),
        ({"walltime": "0"}, "at least 1 minute"),
        ({"environment": "../../etc"}, "environment"),
        ({"command": "bash"}, "unknown option 'command'"),
        ({"cpus": "1" * 5000}, "options are too large"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(demo_site, options, message):
    with pytest.raises(RequestError, match=message):
        parse_request(options, demo_site)


@pytest.mark.parametrize("raw", [None, [], "cpus=1", 7])
def test_options_must_be_an_object(demo_site, raw):
    with pytest.raises(RequestError, match="JSON object"):
        parse_request(raw, demo_site)


def _access(demo_site, user, reservations=()):
    from factoryhub.capacity import Reservation

    live = tuple(
        Reservation(name=n, users=u, accounts=(), partition="", active=a, end="")
        for n, u, a in reservations
    )
    return access_for(demo_site, user, live)


def test_accounts_qos_and_reservations_are_per_user(demo_site):
    access = _access(
        demo_site,
        "alice",
        [
            ("workshop", ("alice", "bob"), True),
            ("old", ("alice",), False),
            ("private", ("bob",), True),
        ],
    )
    assert access.accounts == ("training", "ai-research")
    assert access.qos == ("normal",)
    assert access.reservations == ("workshop",)  # active, and alice is in it
    req = parse_request({"account": "ai-research", "reservation": "workshop"}, demo_site, access)
    assert (req.account, req.qos, req.reservation) == ("ai-research", "normal", "workshop")
    assert parse_request({}, demo_site, access).reservation == ""


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"account": "ai-research"},
            "account: 'ai-research' is not available to you (yours: training)",
        ),
        ({"qos": "long"}, "qos: 'long' is not available to you (yours: normal)"),
        (
            {"reservation": "workshop"},
            "reservation: 'workshop' is not available to you (yours: none)",
        ),
        # not even a Slurm name: refused as such, before the learner's access is looked at
        ({"account": "training\n#SBATCH --uid=0"}, "is not a name Slurm uses"),
        ({"qos": 3}, "qos: 'int' is not a name Slurm uses"),
    ],
)
def test_names_the_user_is_not_entitled_to_are_refused(demo_site, options, message):
    access = _access(demo_site, "carol", [("workshop", ("alice",), True)])
    with pytest.raises(RequestError, match=re.escape(message)):
        parse_request(options, demo_site, access)


NORMAL = QosLimits("normal", max_walltime_minutes=720, max_gpus_per_job=2, max_gpus_per_user=4)
LONG = QosLimits("long", max_walltime_minutes=1440, max_cpus_per_job=8, max_memory_mb_per_job=32768)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"partition": "gpu", "gpus": 3}, "gpus: the QoS normal allows at most 2 GPUs per job"),
        (
            {"partition": "gpu", "walltime": "13:00:00"},
            "walltime: the QoS normal allows at most 12 h (12:00:00) per job",
        ),
        ({"qos": "long", "cpus": 9}, "cpus: the QoS long allows at most 8 CPUs per job"),
        ({"qos": "long", "memory_gb": 33}, "memory_gb: the QoS long allows at most 32 GB per job"),
        ({"partition": "gpu", "gpus": 5}, "the gpu partition allows at most 4 GPUs per job"),
    ],
)
def test_live_qos_limits_are_checked_with_the_limit_in_the_message(demo_site, options, message):
    live = Associations(("training",), ("normal", "long"), (NORMAL, LONG))
    access = access_for(demo_site, "trainer", (), live)
    with pytest.raises(RequestError, match=re.escape(message)):
        parse_request(options, demo_site, access)


def test_a_qos_with_a_higher_limit_allows_what_the_default_does_not(demo_site):
    live = Associations(("training",), ("normal", "long"), (NORMAL, LONG))
    access = access_for(demo_site, "trainer", (), live)
    request = parse_request({"partition": "gpu", "gpus": 4, "qos": "long"}, demo_site, access)
    assert (request.gpus, request.qos, request.account) == (4, "long", "training")
    assert parse_request({"partition": "gpu", "gpus": 2}, demo_site, access).qos == "normal"


def test_a_user_the_accounting_database_does_not_know_is_told_so(demo_site):
    access = access_for(demo_site, "mallory", (), Associations())
    with pytest.raises(RequestError, match="you have no Slurm account on this site yet"):
        parse_request({}, demo_site, access)


def test_a_site_without_accounts_lets_slurm_choose_the_default(demo_site):
    site = replace(demo_site, access=AccessSettings())
    request = parse_request({}, site, access_for(site, "alice"))
    assert (request.account, request.qos) == ("", "")
    with pytest.raises(RequestError, match="'x' is not available to you"):
        parse_request({"account": "x"}, site, access_for(site, "alice"))


def test_a_course_starts_from_its_preset_and_must_be_published(demo_site):
    presets = {"deep-learning": {"partition": "gpu", "gpus": 1, "cpus": 4, "memory_gb": 8}}
    request = parse_request({"course": "deep-learning"}, demo_site, courses=presets)
    assert (request.partition, request.gpus, request.cpus, request.course) == (
        "gpu",
        1,
        4,
        "deep-learning",
    )
    assert request.to_options()["course"] == "deep-learning"
    mine = parse_request({"course": "deep-learning", "cpus": 2}, demo_site, courses=presets)
    assert mine.cpus == 2 and mine.gpus == 1  # the learner's choice over the preset
    with pytest.raises(
        RequestError, match=r"course: 'nope' is not in the catalogue \(deep-learning\)"
    ):
        parse_request({"course": "nope"}, demo_site, courses=presets)
    with pytest.raises(RequestError, match="not in the catalogue"):
        parse_request({"course": "deep-learning"}, demo_site)  # nothing published


@pytest.mark.parametrize(
    "raw",
    [{"walltime": "1:30"}, {"walltime": ["1:30"]}, {"walltime": " 1:30 "}],
    ids=["rest", "form", "spaces"],
)
def test_an_ambiguous_walltime_is_refused_with_what_slurm_would_read(demo_site, raw):
    # Slurm reads "1:30" as 1 minute 30 seconds: a learner asking for an hour and a half
    # would get a 2-minute session.
    with pytest.raises(RequestError) as refused:
        parse_request(raw, demo_site)
    message = str(refused.value)
    assert refused.value.field == "walltime"
    assert "1 min 30 s to Slurm" in message
    assert "01:30:00 or 90" in message


@pytest.mark.parametrize(
    ("walltime", "minutes"),
    [("90", 90), (90, 90), ("01:30:00", 90), ("0-02", 120), ("0-01:30", 90), ("00:30:30", 31)],
)
def test_walltimes_nobody_misreads_are_accepted(demo_site, walltime, minutes):
    assert parse_request({"walltime": walltime}, demo_site).walltime_minutes == minutes


def test_the_sites_own_default_walltime_is_read_as_slurm_reads_it(demo_site):
    # An admin who copies Slurm's "30:00" (its MaxTime output) into site.toml means 30 minutes.
    cpu = replace(demo_site.partitions["cpu"], default_walltime="30:00")
    site = replace(demo_site, partitions={**demo_site.partitions, "cpu": cpu})
    assert parse_request({}, site).walltime_minutes == 30


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"partition": "gpu", "gpu_type": "h100"}, "gpu_type: h100 asked for with no GPUs"),
        ({"partition": "gpu", "gpus": 0, "gpu_type": "h100"}, "with no GPUs"),
        ({"partition": "gpu", "gpu_type": "zz9"}, "gpu_type: 'zz9' is not offered"),
        ({"gpu_type": "h100"}, "gpu_type: the cpu partition has no GPUs"),
        ({"partition": "gpu", "gpus": 1, "gpu_type": 7}, "gpu_type: 'int' is not offered"),
    ],
)
def test_a_gpu_type_is_only_taken_when_offered_and_with_gpus(demo_site, options, message):
    with pytest.raises(RequestError, match=message) as refused:
        parse_request(options, demo_site)
    assert refused.value.field == "gpu_type"


def test_an_empty_gpu_type_means_the_partitions_first(demo_site):
    # The form's "any" choice sends an empty GPU type, with or without GPUs.
    assert parse_request({"partition": "gpu", "gpu_type": ""}, demo_site).gpu_type == ""
    with_gpu = parse_request({"partition": "gpu", "gpus": 1, "gpu_type": [""]}, demo_site)
    assert with_gpu.gpu_type == "h100"


def test_the_form_sends_no_gpu_type_by_default_and_a_walltime_the_learner_may_send(demo_site):
    from factoryhub.spawners.form import render_options_form

    cpu = replace(demo_site.partitions["cpu"], default_walltime="30:00")
    site = replace(
        demo_site,
        partitions={**demo_site.partitions, "cpu": cpu},
        session=replace(demo_site.session, walltime="30:00"),
    )
    form = render_options_form(site)
    assert '<option value="" selected>any' in form
    assert 'name="walltime" maxlength="12" value="00:30:00"' in form
    # what the untouched form posts is a valid request
    assert parse_request({"gpu_type": [""], "walltime": ["00:30:00"]}, site).walltime_minutes == 30


class _Spawner:
    """What `confirm_query` reads of a spawner."""

    def __init__(self, site):
        self.site = site
        self.user = type("User", (), {"name": "alice"})()


def test_a_link_never_starts_a_server_it_prefills_the_form(demo_site):
    from tornado import web

    from factoryhub.spawners.form import render_options_form
    from factoryhub.spawners.options import _PREFILLS, ConfirmBeforeStart, confirm_query

    spawner = _Spawner(demo_site)
    with pytest.raises(ConfirmBeforeStart) as shown:
        confirm_query(spawner, {"partition": ["gpu"], "gpus": ["2"], "walltime": ["90"]})
    # JupyterHub shows the form instead of spawning, with no error line
    assert shown.value.jupyterhub_message is None and shown.value.jupyterhub_html_message is None
    prefill = _PREFILLS.pop(spawner)
    form = render_options_form(demo_site, prefill=prefill)
    assert '<option value="gpu" selected>' in form and 'id="fh-gpus" name="gpus" value="2"' in form
    assert 'value="01:30:00"' in form and '<option value="h100" selected>' in form
    with pytest.raises(web.HTTPError) as refused:
        confirm_query(_Spawner(demo_site), {"walltime": ["1:30"]})
    assert refused.value.status_code == 400 and "01:30:00 or 90" in refused.value.log_message


def test_a_partition_kept_for_workshops_takes_a_workshop_seat_only(demo_site):
    options = {"partition": "training", "cpus": 1, "memory_gb": 1}
    with pytest.raises(RequestError) as refused:
        draft_request(options, demo_site)
    assert refused.value.field == "partition"
    assert str(refused.value) == (
        "partition: training is kept for workshops; only a workshop's seats start sessions"
        " there (choose one of: cpu, gpu, debug)"
    )
    with pytest.raises(RequestError, match="kept for workshops"):
        parse_request({**options, "reservation": "ws-p7"}, demo_site)  # naming one is not enough
    seat = draft_request({**options, "reservation": "ws-p7"}, demo_site, workshop_seat=True)
    assert (seat.partition, seat.cpus, seat.memory_gb, seat.reservation) == (
        "training",
        1,
        1,
        "ws-p7",
    )
