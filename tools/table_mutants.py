"""Mutation testing of the status table's data (mutmut mutates function bodies only, never module data).

Each mutant is appeals/status.py with one change to its data: an allowed move removed, a
refused move allowed, an edge mailing someone else, a status added to or removed from a
status set, a status removed from the vocabulary. The module is re-executed from the
mutated source in place, and the pure tests of tests/test_status.py that read the table
are called; a mutant is killed when one of them fails. Prints the score and every survivor;
exit status 1 if any survived. Run by `tools/mutation.sh table` (never in CI).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appeals import status as table  # noqa: E402
from tests import test_status  # noqa: E402

SOURCE = Path(table.__file__).read_text()
PURE_TESTS = [test_status.test_the_table_is_the_specification, test_status.test_the_status_sets_are_the_specification,
              test_status.test_the_status_sets, test_status.test_each_status_has_its_title_and_explanation]
SETS = ("WAITING_FOR_STAFF", "WAITING_FOR_OWNER", "IN_CORRECTION", "UNDECIDED", "CLAIMABLE", "SENIOR_ONLY", "DECIDED")
RECIPIENTS = {"OWNER": table.OWNER, "OWNER_FIRST_TIME": table.OWNER_FIRST_TIME, "NOBODY": table.NOBODY}


def _with(name: str, value_source: str) -> str:
    """The module's source with the value assigned to `name` replaced by `value_source`."""
    tree = ast.parse(SOURCE)
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id == name:
            node.value = ast.parse(value_source, mode="eval").body
            return ast.unparse(tree)
    raise KeyError(name)


def _edges_source(edges: dict) -> str:
    names = {v: k for k, v in RECIPIENTS.items()}
    return "{" + ", ".join(f"({s!r}, {t!r}): {names[who]}" for (s, t), who in edges.items()) + "}"


def mutants():
    """(description, mutated source) for every data mutant of the table."""
    edges = dict(table.EDGES)
    for edge in edges:
        yield f"EDGES without {edge}", _with("EDGES", _edges_source({e: w for e, w in edges.items() if e != edge}))
    for source in (None, *table.STATUSES):
        for target in table.STATUSES:
            if (source, target) not in edges:
                yield (f"EDGES with {(source, target)}",
                       _with("EDGES", _edges_source({**edges, (source, target): table.OWNER})))
    for edge, who in edges.items():
        for other in RECIPIENTS.values():
            if other != who:
                yield f"EDGES {edge} mails {other!r}", _with("EDGES", _edges_source({**edges, edge: other}))
    for name in SETS:
        members = getattr(table, name)
        for status in table.STATUSES:
            changed = tuple(s for s in members if s != status) if status in members else (*members, status)
            verb = "without" if status in members else "with"
            yield f"{name} {verb} {status}", _with(name, repr(changed))
    for status in table.STATUSES:
        yield f"STATUSES without {status}", _with("STATUSES", repr(tuple(s for s in table.STATUSES if s != status)))


def killed(source: str) -> bool:
    """True when a pure test of the table fails (or the module fails to load) with `source` in force."""
    original = dict(table.__dict__)
    try:
        try:
            exec(compile(source, table.__file__, "exec"), table.__dict__)
        except Exception:
            return True
        for test in PURE_TESTS:
            try:
                test()
            except Exception:  # an AssertionError, or a KeyError from a status the texts lack
                return True
        return False
    finally:
        table.__dict__.clear()
        table.__dict__.update(original)


def main() -> int:
    """Run every data mutant; print the score and the survivors."""
    for test in PURE_TESTS:
        test()  # the unmutated table passes, or no score means anything
    survivors, total = [], 0
    for description, source in mutants():
        total += 1
        if not killed(source):
            survivors.append(description)
    print(f"table: {total - len(survivors)} killed of {total} data mutants; {len(survivors)} survived")
    for description in survivors:
        print(f"    {description}: survived")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
