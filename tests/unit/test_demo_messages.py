"""`make demo` says what it is doing at each step, as it does it (flushed, so `make`'s output
shows it live)."""

from types import SimpleNamespace

from factoryhub.cli import main as cli
from factoryhub.demo import embedded


def test_each_step_is_one_flushed_line(monkeypatch):
    flushed = []
    monkeypatch.setattr("builtins.print", lambda *a, **k: flushed.append((a, k)))
    embedded.step("starting munge")
    assert flushed == [(("... starting munge",), {"flush": True})]


def test_demo_start_announces_every_step_before_it_runs(monkeypatch, demo_site, tmp_path):
    said = []

    def doing(what, result=None):
        def run(*args, **kwargs):
            said.append(f"RUN {what}")
            return result

        return run

    hub = SimpleNamespace(site=demo_site)
    monkeypatch.setattr(cli, "require_floors", doing("floors"))
    monkeypatch.setattr(cli, "_hub", lambda repo: hub)
    monkeypatch.setattr(cli, "ensure_slurm", doing("slurm", ["cn01"]))
    monkeypatch.setattr(cli, "load_demo_accounts", lambda path, site: ())
    monkeypatch.setattr(cli, "ensure_accounts", doing("accounts", []))
    monkeypatch.setattr(cli, "load_members", lambda path: {})
    monkeypatch.setattr(cli, "ensure_datasets", doing("datasets", []))
    monkeypatch.setattr(cli, "install_kernels", doing("kernels", []))
    monkeypatch.setattr(cli, "ensure_storage", doing("storage", []))
    monkeypatch.setattr(cli.storage_cli, "purge", doing("purge", 0))
    monkeypatch.setattr(cli, "start_hub", doing("hub"))
    monkeypatch.setattr(cli, "find_courses", doing("courses", []))
    monkeypatch.setattr(cli, "step", lambda text: said.append(f"... {text}"))
    cli.demo_start(tmp_path)
    steps = [line for line in said if line.startswith(("...", "RUN"))]
    assert steps == [
        "... checking the installed versions against the security floors",
        "RUN floors",
        "RUN slurm",  # ensure_slurm says its own steps
        "... demo accounts: Unix users, the login group, Slurm associations",
        "RUN accounts",
        "... shared data sets: their groups and read-only folders",
        "RUN datasets",
        "... software environments: a JupyterLab kernel per set of Lmod modules",
        "RUN kernels",
        "... storage tiers: project and scratch with quotas (btrfs images)",
        "RUN storage",
        "RUN purge",
        "... starting the proxy and the hub, and waiting for the hub to answer",
        "RUN hub",
        "... publishing the courses of notebooks/ into the catalogue",
        "RUN courses",
    ]
