"""Every `appeals` sub-command, gathered in one list for the CLI group."""

from appeals.commands import accounts, corrections, db, demo, serve, staff, worker
from workers.cli.datasets import datasets
from workers.cli.releases import releases

COMMANDS = [
    datasets,
    releases,
    *db.commands,
    *accounts.commands,
    *staff.commands,
    *corrections.commands,
    *worker.commands,
    *serve.commands,
    *demo.commands,
]
