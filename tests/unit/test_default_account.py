"""Jobs FactoryHub submits for a learner outside the spawn form (Dask workers, course
validation) charge the account the accounting database makes the learner's default, and
site.toml's [access] only where there is no such database or it lists no account."""

from coursekit import good_course

from factoryhub.course import load_course
from factoryhub.courses.validate import plan, validation_script
from factoryhub.scheduler.slurm import Associations
from factoryhub.widgets import SessionContext
from factoryhub.widgets.dask_cluster import default_account, learners_account

GOVERNED = Associations(("ai-research", "training"), ("normal",))  # sacctmgr: default first


def test_the_accounting_databases_default_account_comes_first(demo_site):
    assert default_account(demo_site, "alice", GOVERNED) == "ai-research"
    assert default_account(demo_site, "alice", None) == "training"  # no database: site.toml
    assert default_account(demo_site, "alice", Associations()) == "training"  # none listed
    assert default_account(demo_site, "carol", Associations(("physics",))) == "physics"


def _context(site, client, home):
    return SessionContext(site=site, user="alice", home=home, session_job="50", client=client)


def test_a_cluster_made_in_a_cell_asks_sacctmgr(demo_site, fake_slurm, tmp_path):
    fake_slurm.accounting = GOVERNED
    assert learners_account(_context(demo_site, fake_slurm, tmp_path)) == "ai-research"
    assert ("sacctmgr", "alice") in fake_slurm.calls
    fake_slurm.accounting = None
    assert learners_account(_context(demo_site, fake_slurm, tmp_path)) == "training"


async def test_a_cluster_made_inside_the_kernels_running_loop_asks_sacctmgr_too(
    demo_site, fake_slurm, tmp_path
):
    fake_slurm.accounting = GOVERNED  # a cell runs inside ipykernel's loop: no asyncio.run
    assert learners_account(_context(demo_site, fake_slurm, tmp_path)) == "ai-research"


def test_a_validation_job_charges_the_databases_default_account(demo_site, tmp_path):
    target = plan([load_course(good_course(tmp_path))], tmp_path / "run")[0]
    governed = validation_script(target, demo_site, "trainer", GOVERNED.accounts)
    assert "#SBATCH --account=ai-research" in governed
    assert "#SBATCH --account=training" in validation_script(target, demo_site, "trainer")
