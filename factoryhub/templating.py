"""Jinja environments for FactoryHub's packaged templates, which a site overrides.

Each process that renders HTML (the hub's spawn form, the hub service's pages) ships its
templates as package data in ``<package>/templates``. A site names its own template directories
in site.toml (``[hub] template_dirs``); a template found there wins over ours, and may extend
ours under the ``factoryhub/`` prefix (``{% extends "factoryhub/form.html" %}``) to change one
block and keep the rest — the way JupyterHub's own pages extend ``templates/page.html``.

Autoescape is on for every template: what a learner, a course or Slurm wrote is escaped unless
a template says otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    PrefixLoader,
)
from jinja2.loaders import split_template_path

PREFIX = "factoryhub"  # site templates extend ours as "factoryhub/<name>"


class SiteFirstLoader(ChoiceLoader):
    """A `ChoiceLoader` (the site's directories, then ours) whose compiled templates also go
    stale when a site file appears or goes away ahead of the one in use, not only when that
    one changes: an admin who adds ``form.html`` sees it on the next page, no restart."""

    load = BaseLoader.load  # compile through `get_source` below, keeping its freshness check

    def __init__(self, site_dirs: Sequence[str], loaders: list[BaseLoader]) -> None:
        super().__init__(loaders)
        self.site_dirs = tuple(site_dirs)

    def _site_file(self, template: str) -> str | None:
        pieces = split_template_path(template)
        paths = (os.path.join(d, *pieces) for d in self.site_dirs)
        return next((p for p in paths if os.path.isfile(p)), None)

    def get_source(self, environment: Environment, template: str):
        source, filename, uptodate = super().get_source(environment, template)
        chosen = self._site_file(template)

        def fresh() -> bool:
            same = self._site_file(template) == chosen
            return same and (uptodate is None or bool(uptodate()))

        return source, filename, fresh


def template_loader(package: str, site_dirs: Sequence[str] = ()) -> SiteFirstLoader:
    """The site's directories first, then `package`'s own templates, which are also reachable
    as ``factoryhub/<name>`` so a site's template can extend the one it replaces."""
    ours = PackageLoader(package, "templates")
    site = FileSystemLoader(list(site_dirs))
    return SiteFirstLoader(site_dirs, [site, ours, PrefixLoader({PREFIX: ours}, delimiter="/")])


@lru_cache(maxsize=16)
def _environment(package: str, site_dirs: tuple[str, ...]) -> Environment:
    # Jinja checks a cached template's freshness before each use (auto_reload), so a site's
    # new or edited template shows on the next page without a restart.
    return Environment(
        loader=template_loader(package, site_dirs),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def template_environment(package: str, site_dirs: Sequence[str] = ()) -> Environment:
    """The (cached) environment rendering `package`'s templates under the site's overrides."""
    return _environment(package, tuple(str(d) for d in site_dirs))
