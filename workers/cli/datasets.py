"""Placeholder: the engine engineer replaces this file with the real `datasets` click group."""

import click


@click.group()
def datasets() -> None:
    """(not written yet)"""
