"""A learner's refused request is one INFO line in the hub's log (JupyterHub 6.1 would log it
as ERROR, with a traceback, up to three times), and following a course link is no error."""

import logging
from types import SimpleNamespace

import pytest
from tornado import web

from factoryhub.spawners import SlurmSpawner
from factoryhub.spawners.options import ConfirmBeforeStart, take_refusal
from factoryhub.spawners.refusals import REFUSED, RefusalLogFilter, quiet_refusals


class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def hub_log():
    log = logging.getLogger("test-hub-refusals")
    log.setLevel(logging.INFO)
    log.propagate = False
    records = Records()
    log.addHandler(records)
    quiet_refusals(log)
    quiet_refusals(log)  # once is enough
    yield log, records.records
    log.removeHandler(records)
    log.filters.clear()


def _raised(exc):
    try:
        raise exc
    except BaseException as caught:
        return (type(caught), caught, caught.__traceback__)


def test_jupyterhubs_records_of_one_refusal_leave_one_info_line(hub_log):
    log, records = hub_log
    assert sum(isinstance(f, RefusalLogFilter) for f in log.filters) == 1
    refusal = web.HTTPError(400, "walltime: at most 12 h", reason=REFUSED)
    # what JupyterHub 6.1 logs for a refused form (user.py, base.py, pages.py), in order
    log.error(f"Error starting alice's server: {refusal}")
    log.error(f"Error starting server alice: {refusal}")
    log.error("Failed to spawn single-user server with form", exc_info=_raised(refusal))
    log.error(
        "Failed to spawn single-user server with query arguments",
        exc_info=_raised(
            ConfirmBeforeStart("a link's request waits for the learner's confirmation")
        ),
    )
    assert [(r.levelname, r.getMessage()) for r in records] == [
        (
            "INFO",
            "Error starting alice's server: HTTP 400: invalid resource request"
            " (walltime: at most 12 h)",
        )
    ]
    assert not any(r.exc_info for r in records)


def test_anything_else_is_logged_as_jupyterhub_logs_it(hub_log):
    log, records = hub_log
    down = web.HTTPError(503, "The scheduler is not answering")
    log.error(f"Error starting alice's server: {down}")
    log.error("Failed to spawn single-user server with form", exc_info=_raised(down))
    log.error("Failed", exc_info=_raised(RuntimeError("a bug")))
    log.error(f"Error starting alice's server: {web.HTTPError(400, 'no such user')}")
    assert [r.levelname for r in records] == ["ERROR"] * 4
    assert [bool(r.exc_info) for r in records] == [False, True, True, False]


@pytest.fixture
def spawner(fake_slurm, repo, hub_log):
    log, _ = hub_log
    user = SimpleNamespace(name="alice", url="/user/alice/", id=1)
    sp = SlurmSpawner(
        user=user,
        slurm_client=fake_slurm,
        site_path=str(repo / "hub_config" / "site.toml"),
        hub_id="test",
        log=log,
    )
    sp.orm_spawner = SimpleNamespace(user_options={}, state=None, server=None, name="")
    return sp


def test_a_refused_link_is_one_info_line_naming_the_learner(spawner, hub_log):
    _, records = hub_log
    with pytest.raises(web.HTTPError) as refused:
        spawner.options_from_query({"cpus": ["9999"]})
    assert refused.value.status_code == 400 and refused.value.reason == REFUSED
    # JupyterHub's handler then logs it with its traceback: filtered
    spawner.log.error(
        "Failed to spawn single-user server with query arguments", exc_info=_raised(refused.value)
    )
    assert [r.levelname for r in records] == ["INFO"]
    assert records[0].getMessage().startswith("alice: a link's request refused: HTTP 400")
    assert "cpus" in records[0].getMessage()


def test_a_course_link_is_shown_for_confirmation_with_no_error(spawner, hub_log):
    _, records = hub_log
    with pytest.raises(ConfirmBeforeStart) as shown:
        spawner.options_from_query({"partition": ["cpu"]})
    spawner.log.error(
        "Failed to spawn single-user server with query arguments", exc_info=_raised(shown.value)
    )
    assert [(r.levelname, r.getMessage()) for r in records] == [
        ("INFO", "alice: a link's request, shown for confirmation")
    ]


def test_a_malformed_form_is_one_info_line(spawner, hub_log):
    _, records = hub_log
    with pytest.raises(web.HTTPError) as refused:
        spawner.options_from_form({"cpus": ["1", "2"]})
    assert refused.value.reason == REFUSED
    assert [r.levelname for r in records] == ["INFO"]
    assert records[0].getMessage().startswith("alice: form refused:")
    # JupyterHub shows the sentence itself (not "HTTP 400: …"), and the form it renders next
    # keeps the learner's other choices with the sentence next to the field
    assert refused.value.jupyterhub_message == "cpus: give exactly one value"
    refusal = take_refusal("alice")
    assert refusal is not None and refusal.field == "cpus" and refusal.message.startswith("cpus")
