"""The Slurm spawner: request model and validation, job-script rendering, job watching."""

from .request import RequestError, ResourceRequest, parse_request
from .spawner import SlurmSpawner

__all__ = ["RequestError", "ResourceRequest", "SlurmSpawner", "parse_request"]
