"""Every `appeals` sub-command by name, and where it is defined; the CLI group loads one when it is used.

A command's module is imported only when that command runs (or when `--help` lists them all),
so an operator's command does not pay for the imports of the others.
"""

from __future__ import annotations

import importlib

COMMANDS = {
    "accounts": "appeals.commands.accounts:accounts",
    "corrections": "appeals.commands.corrections:corrections",
    "datasets": "workers.cli.datasets:datasets",
    "db": "appeals.commands.db:db_group",
    "demo": "appeals.commands.demo:demo",
    "releases": "workers.cli.releases:releases",
    "serve": "appeals.commands.serve:serve",
    "staff": "appeals.commands.staff:staff",
    "worker": "appeals.commands.worker:worker",
}


def load(name: str):
    """The click command called `name` (a key of COMMANDS)."""
    module, attribute = COMMANDS[name].split(":")
    return getattr(importlib.import_module(module), attribute)
