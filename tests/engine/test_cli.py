"""The click groups through CliRunner, and the engine's independence from Flask."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from workers.cli.datasets import datasets
from workers.cli.releases import releases

from .conftest import make_alpha


@pytest.fixture
def env(settings_env):
    """The test settings (a migrated database: imports read the ledger; Redis: they take the lock)."""
    return settings_env


def test_cli_flow(tmp_path, env):
    r = CliRunner()
    src = make_alpha(tmp_path / "src", "alpha")
    res = r.invoke(datasets, ["import", str(src), "--name", "alpha"], env=env)
    assert res.exit_code == 0, res.output
    res = r.invoke(datasets, ["list", "--json"], env=env)
    assert json.loads(res.output)[0]["name"] == "alpha"
    res = r.invoke(datasets, ["show", "alpha", "--json"], env=env)
    doc = json.loads(res.output)
    assert doc["name"] == "alpha" and doc["current_version"] == 1
    v = doc["versions"][0]
    assert v["version"] == 1 and v["status"] == "current" and v["created_at"].endswith("Z")
    for k in ("accounts_removed", "accounts_rehashed", "rows_removed", "rows_rewritten", "files_changed"):
        assert v[k] == 0
    assert r.invoke(datasets, ["show", "alpha"], env=env).exit_code == 0
    assert r.invoke(datasets, ["reindex"], env=env).exit_code == 0
    res = r.invoke(datasets, ["verify", "alpha"], env=env)
    assert res.exit_code == 0 and "ok" in res.output
    res = r.invoke(datasets, ["rederive", "alpha"], env=env)
    assert res.exit_code == 0 and "published alpha version 2 (version 1 withdrawn)" in res.output, res.output
    out = tmp_path / "out"
    res = r.invoke(releases, ["export", "alpha", "--variant", "hashed", "--to", str(out)], env=env)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == sorted([
        "alpha_users_csv_hashed.csv", "alpha_tweets_csv_hashed_1.csv", "alpha_tweets_csv_hashed_2.csv",
        "alpha_tweet_media_hashed_1.zip", "manifest.json"])
    m = json.loads((out / "manifest.json").read_text())
    assert "hash_key" not in json.dumps(m) and m["key_id"].startswith("hmac-sha256:")


def test_cli_errors_are_clean(tmp_path, env):
    r = CliRunner()
    for group, args in ((datasets, ["show", "nope"]), (datasets, ["verify", "nope"]),
                        (datasets, ["import", str(tmp_path / "missing"), "--name", "x"]),
                        (releases, ["export", "nope", "--variant", "hashed", "--to", str(tmp_path / "o")])):
        res = r.invoke(group, args, env=env)
        assert res.exit_code != 0
        assert "Traceback" not in res.output and "error:" in res.output
    assert json.loads(r.invoke(datasets, ["list", "--json"], env=env).output) == []


def test_verify_detects_damage(tmp_path, env):
    r = CliRunner()
    r.invoke(datasets, ["import", str(make_alpha(tmp_path / "src")), "--name", "alpha"], env=env)
    from config import Settings
    from workers.engine.api import Engine

    s = Settings.from_env(env)
    e = Engine(s.data_dir, s.hash_key, s.hash_key_id)
    p = e.file_path("alpha", 1, "hashed", "alpha_tweets_csv_hashed_2.csv")
    p.chmod(0o644)
    p.write_bytes(p.read_bytes()[:-5])
    res = r.invoke(datasets, ["verify", "alpha"], env=env)
    assert res.exit_code == 1 and "checksum" in res.output


def test_file_path_refuses_unknown_names(world):
    from workers.engine.api import UnknownFile

    for name in ("../HEAD.json", "alpha_users_csv_unhashed.csv/../x", "nope.csv"):
        with pytest.raises(UnknownFile):
            world.file_path("alpha", 1, "unhashed", name)
    assert world.file_path("alpha", 1, "unhashed", "alpha_users_csv_unhashed.csv").exists()


def test_engine_does_not_import_flask():
    root = Path(__file__).resolve().parents[2]
    code = ("import sys; sys.path.insert(0, %r); import workers.engine.api, "
            "workers.cli.releases; print('flask' in sys.modules)" % str(root))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
