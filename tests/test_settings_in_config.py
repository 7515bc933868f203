"""Every setting is read in config.py: no other module of the product reads an APPEALS_* variable (issue 12)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("appeals", "workers", "reviewer_ui")


def _is_os_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ"
            and isinstance(node.value, ast.Name) and node.value.id == "os") or \
           (isinstance(node, ast.Name) and node.id == "environ")


def _appeals_name(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("APPEALS_")


def environment_reads(tree: ast.AST) -> list[int]:
    """Line numbers where `tree` reads an APPEALS_* name from the environment (writes are allowed)."""
    lines = []
    for node in ast.walk(tree):
        # os.environ.get("APPEALS_X"), os.environ.setdefault(...), os.environ.pop(...), os.getenv("APPEALS_X")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args \
                and _appeals_name(node.args[0]):
            owner = node.func.value
            if (_is_os_environ(owner) and node.func.attr in ("get", "setdefault", "pop")) or \
                    (isinstance(owner, ast.Name) and owner.id == "os" and node.func.attr == "getenv"):
                lines.append(node.lineno)
        # os.environ["APPEALS_X"] read (an assignment target is a write)
        if isinstance(node, ast.Subscript) and _is_os_environ(node.value) and _appeals_name(node.slice) \
                and isinstance(node.ctx, ast.Load):
            lines.append(node.lineno)
        # "APPEALS_X" in os.environ
        if isinstance(node, ast.Compare) and _appeals_name(node.left) \
                and any(_is_os_environ(c) for c in node.comparators):
            lines.append(node.lineno)
    return lines


def test_the_scanner_finds_each_way_of_reading():
    """The scan itself: each form of read is caught, a write is not."""
    source = '''
import os
a = os.environ.get("APPEALS_A")
b = os.getenv("APPEALS_B")
c = os.environ["APPEALS_C"]
d = "APPEALS_D" in os.environ
e = os.environ.setdefault("APPEALS_E", "1")
os.environ["APPEALS_F"] = "written, not read"
g = os.environ.get("HOME")
'''
    assert environment_reads(ast.parse(source)) == [3, 4, 5, 6, 7]


def test_no_module_outside_config_reads_an_appeals_variable():
    """appeals/, workers/ and reviewer_ui/ take settings from config.Settings only."""
    offenders = []
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            for line in environment_reads(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                offenders.append(f"{path.relative_to(ROOT)}:{line}")
    assert offenders == []


def test_no_private_imports_across_the_pipelines_modules():
    """workers/ and appeals/commands import no underscore names from other modules (e.g. config._int, db._engines)."""
    offenders = []
    for path in sorted([*(ROOT / "workers").rglob("*.py"), *(ROOT / "appeals" / "commands").rglob("*.py"),
                        ROOT / "appeals" / "runtime.py", ROOT / "appeals" / "db.py", ROOT / "appeals" / "cli.py"]):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                offenders += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_") and a.name != "__future__"
                              and node.module.split(".")[0] in ("appeals", "workers", "config", "reviewer_ui")]
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") \
                    and isinstance(node.value, ast.Name) and node.value.id in ("db", "config", "runtime", "queues",
                                                                                "jobs", "locks", "connection"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value.id}.{node.attr}")
    assert offenders == []
