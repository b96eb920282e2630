"""The embedded demo site (`factoryhub.demo`), apart from the product: root-run set-up of munge,
Slurm and its accounting database, Unix accounts, and the hub and proxy as daemons of their
own unprivileged accounts. A real site brings its own Slurm, accounts and service manager; the
product (`factoryhub`, `factoryhub.spawners`, `factoryhub.service`, `factoryhub.session`,
`factoryhub.widgets`, `factoryhub.courses`) never imports this package."""
