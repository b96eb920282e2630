"""The one Slurm seam (an edge): the client that runs Slurm's commands, as the hub or as a
learner through fh-act-as, and the live site view read through it. Everything that talks to
Slurm goes through `SlurmClient` (`factoryhub.slurmapi` is its interface)."""
