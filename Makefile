# FactoryHub: the README's commands. Run as root on Debian 12.
PY := /opt/factoryhub/venv/bin

.PHONY: demo test stop status lint unit courses bench

demo:            ## install everything, start Slurm + proxy + hub, print URL and accounts
	deploy/install.sh
	$(PY)/factoryhub demo start --repo $(CURDIR)

test:            ## install what the tests need too, start Slurm, lint, run every test
	deploy/install.sh --test
	$(PY)/factoryhub slurm start --repo $(CURDIR)
	$(MAKE) lint
	FACTORYHUB_TESTS=all $(PY)/pytest -p no:cacheprovider --durations=30 --junitxml=reports/pytest.xml
	$(PY)/factoryhub course check
	$(PY)/factoryhub course validate --on slurm --as ttrainer --reports reports  # the tests' trainer (made by pytest), never the demo's
	benchmarks/peer/install.sh
	$(PY)/python benchmarks/run.py --smoke --out reports/bench-smoke

lint:
	$(PY)/ruff check .
	$(PY)/ruff format --check .

bench:           ## FactoryHub against its peers (docs/performance.md, benchmarks/results/)
	deploy/install.sh --test
	$(PY)/factoryhub slurm start --repo $(CURDIR)
	benchmarks/peer/install.sh
	$(PY)/python benchmarks/run.py

courses:         ## validate every course in notebooks/ on the embedded Slurm (reports/)
	$(PY)/factoryhub course validate --on slurm --reports reports

unit:            ## the fast tests only (no Slurm, no browser), of the working tree
	$(PY)/python tests/worktree.py build/worktree
	PYTHONPATH=$(CURDIR)/build/worktree $(PY)/pytest -p no:cacheprovider tests/unit

stop:            ## stop the hub, the proxy and Slurm
	$(PY)/factoryhub demo stop --repo $(CURDIR)

status:          ## which daemons run
	$(PY)/factoryhub demo status --repo $(CURDIR)
