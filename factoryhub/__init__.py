"""FactoryHub: the training and support environment of an AI factory.

The modules directly in `factoryhub` are the pure core every part shares: the site model, the
request model and its validation, estimates, pending reasons, access rules, job states, the one
job-script renderer, job-name tags, the Slurm interface (`slurmapi`) and its parsers. The core
runs no command and imports no JupyterHub or tornado (tests/unit/test_layout.py checks it).

Each process or edge is a subpackage that imports the core, never the other way:
`factoryhub.scheduler` (the Slurm client: the one seam), `factoryhub.spawners` (the hub's
spawner and configuration), `factoryhub.service` (the hub service's web app),
`factoryhub.session` (the extension inside a learner's JupyterLab), `factoryhub.widgets`,
`factoryhub.courses`, `factoryhub.cli` (the `factoryhub` command) and `factoryhub.demo` (the
embedded site's set-up).
"""

__version__ = "0.1.0"
