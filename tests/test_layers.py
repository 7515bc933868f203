"""The layers point downward: read from the sources (AST), imports inside functions included.

- appeals/services never reaches the worker adapter (jobs, queues, runner): dispatch is injected.
- appeals/services has no import cycle; appeals/status.py and appeals/requests.py are leaves.
- no request path delivers mail: only the worker calls notify.deliver_pending.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_SERVICES = ("workers.jobs", "workers.queues", "workers.runner")


def _modules(folder: str) -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path, module: str) -> set[str]:
    """Every module `path` imports, at the top or inside a function, resolved to dotted names."""
    names = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _reaches(name: str, targets) -> bool:
    return any(name == t or name.startswith(t + ".") for t in targets)


def test_services_never_import_the_worker_adapter():
    """Nothing in appeals/services imports workers.jobs, workers.queues or workers.runner, anywhere."""
    offenders = {
        module: sorted(n for n in _imports(path, module) if _reaches(n, FORBIDDEN_IN_SERVICES))
        for module, path in _modules("appeals/services").items()
    }
    assert {m: names for m, names in offenders.items() if names} == {}


def test_the_scan_sees_imports_hidden_in_functions(tmp_path):
    """The scanner itself: a function-level import of a forbidden module is found."""
    source = tmp_path / "sample.py"
    source.write_text("def later():\n    from workers import queues\n    import workers.jobs as j\n")
    found = _imports(source, "appeals.services.sample")
    assert _reaches("workers.queues", FORBIDDEN_IN_SERVICES) and {"workers.queues", "workers.jobs"} <= found


def test_services_have_no_import_cycle():
    """The services import each other in one direction only (appeals <-> notify was a cycle)."""
    modules = _modules("appeals/services")
    graph = {m: {n for n in _imports(p, m) if n in modules and n != m} for m, p in modules.items()}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        raise AssertionError(f"import cycle: {' -> '.join(error.args[1])}") from None


def test_the_status_table_and_the_request_layer_are_leaves():
    """appeals/status.py imports only the translation markers; appeals/requests.py those and the error types."""
    i18n = {"appeals", "appeals.i18n", "appeals.i18n.lazy_gettext", "appeals.i18n.gettext"}

    def app_imports(path, module):
        return {n for n in _imports(ROOT / path, module) if n.startswith(("appeals", "workers", "flask"))}

    assert app_imports("appeals/status.py", "appeals.status") <= i18n
    assert app_imports("appeals/requests.py", "appeals.requests") <= i18n | {
        "appeals.services.errors", "appeals.services.errors.Invalid"}
    # appeals/i18n.py is itself a leaf (Babel and the standard library only).
    assert app_imports("appeals/i18n.py", "appeals.i18n") == set()


def test_only_the_worker_delivers_mail():
    """Requests write outbox rows and call dispatch.mail(); notify.deliver_pending runs in workers/ only."""
    callers = []
    for folder in ("appeals", "reviewer_ui"):
        for module, path in _modules(folder).items():
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute) and node.attr == "deliver_pending" and module != "appeals.services.notify":
                    callers.append(module)
    assert callers == []
