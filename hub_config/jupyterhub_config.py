# FactoryHub's JupyterHub configuration: thin by design; everything comes from site.toml.
# FACTORYHUB_SITE points at another site.toml (tests, real sites); the default is the demo's.
import os
from pathlib import Path

from factoryhub.site import load_site
from factoryhub.spawners.hubconfig import apply_site

here = Path(__file__).resolve().parent
site_path = Path(os.environ.get("FACTORYHUB_SITE", here / "site.toml")).resolve()
c = get_config()  # noqa: F821 - provided by JupyterHub
apply_site(c, load_site(site_path), site_path)
