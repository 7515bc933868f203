#!/usr/bin/env bash
# Mutation testing of the rule modules with mutmut (never run in CI: minutes to hours of CPU).
#
#   tools/mutation.sh                 all the rule modules
#   tools/mutation.sh status policy   only these (names below)
#   tools/mutation.sh table           the status table's data (tools/table_mutants.py; seconds)
#
# Each module is mutated in its own scratch copy of the repository under build/mutation/<name>
# (the worktree is never touched), against the tests that pin its rule, at nice 10 and one
# child process, so it can share a busy machine. Needs `pip install -e '.[mutation]'`.
# Prints mutmut's result per module and a score line; the survivors are listed by
# `cd build/mutation/<name> && mutmut results` and shown with `mutmut show <mutant>`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MUTMUT=${MUTMUT:-$ROOT/.venv/bin/mutmut}
CHILDREN=${MUTATION_CHILDREN:-1}
[ -x "$MUTMUT" ] || { echo "mutmut missing: .venv/bin/pip install -e '.[mutation]'" >&2; exit 2; }

# name -> "files to mutate|tests that pin their rule" (the fast, focused tests of that rule).
# `status` is the appeal state machine: the status table (appeals/status.py) and `transition`,
# which enforces it (appeals/services/appeals.py). mutmut mutates function bodies only, so the
# table's data (EDGES and the status sets) is pinned by tests/test_status.py against a spec
# written out by hand; `table` mutates that data (tools/table_mutants.py) against those tests.
declare -A MODULES=(
  [hashing]="workers/engine/hashing.py|tests/engine/test_rule_mutants.py"
  [correct]="workers/engine/correct.py|tests/engine/test_rule_mutants.py tests/engine/test_fast_paths.py"
  [status]="appeals/status.py appeals/services/appeals.py|tests/test_status.py"
  [policy]="appeals/services/policy.py|tests/test_policy.py"
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(hashing correct status table policy)

for name in "${names[@]}"; do
  if [ "$name" = table ]; then
    echo "== table: mutating the data of appeals/status.py"
    nice -n 10 "$(dirname "$MUTMUT")/python" tools/table_mutants.py || true
    continue
  fi
  spec=${MODULES[$name]:-}
  [ -n "$spec" ] || { echo "unknown module $name (one of: ${!MODULES[*]})" >&2; exit 2; }
  targets=${spec%%|*}
  tests=${spec#*|}
  only=""
  for t in $targets; do only+="\"$t\", "; done
  work=$ROOT/build/mutation/$name
  rm -rf "$work"
  mkdir -p "$work"
  # The tracked and new files of the worktree, as they are now (no .venv, no build output).
  git ls-files -co --exclude-standard -z | rsync -a --from0 --files-from=- ./ "$work/"
  # mutmut reads [tool.mutmut] from pyproject.toml: this copy's only.
  {
    echo
    echo "[tool.mutmut]"
    echo "source_paths = [\"appeals\", \"workers\", \"reviewer_ui\"]"
    echo "also_copy = [\"config.py\", \"migrations\", \"alembic.ini\"]"
    echo "only_mutate = [${only%, }]"
    printf 'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]\n'
    # Test selection: the listed tests, minus browser and slow ones.
    sel=""
    marker=""
    for t in $tests; do
      case $t in
        -m) ;;
        not_browser_and_not_slow) marker="not browser and not slow" ;;
        *) sel+="\"$t\", " ;;
      esac
    done
    [ -n "$marker" ] || marker="not slow"
    echo "pytest_add_cli_args_test_selection = [${sel}\"-m\", \"$marker\"]"
  } >> "$work/pyproject.toml"
  echo "== $name: mutating $targets"
  (cd "$work" && nice -n 10 "$MUTMUT" run --max-children "$CHILDREN" >"$work/run.log" 2>&1) || {
    echo "mutmut run failed for $name; see $work/run.log" >&2; tail -20 "$work/run.log" >&2; exit 1; }
  (cd "$work" && "$MUTMUT" results --all true > "$work/results.txt" 2>&1) || true
  total=$(grep -c ': ' "$work/results.txt" || true)
  killed=$(grep -c ': killed' "$work/results.txt" || true)
  survived=$(grep -c ': survived' "$work/results.txt" || true)
  echo "$name: $killed killed of $total mutants; $survived survived"
  grep -v ': killed' "$work/results.txt" || true
done
