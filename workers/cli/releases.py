"""Placeholder: the engine engineer replaces this file with the real `releases` click group."""

import click


@click.group()
def releases() -> None:
    """(not written yet)"""
