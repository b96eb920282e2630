"""FactoryHub: the training and support environment of an AI factory.

The core every part shares lives here: the site model (`factoryhub.site`), the Slurm client
(`factoryhub.slurm`), job-state classification (`factoryhub.jobstate`) and the command line
(`factoryhub.cli`). Spawner, widgets and courses are the subpackages `factoryhub.spawners`,
`factoryhub.widgets` and `factoryhub.courses`.
"""

__version__ = "0.1.0"
