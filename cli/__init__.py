"""The `factoryhub` command (an edge): demo, Slurm, hub, course and job-script commands."""
