"""The foundation: configuration, migrations and the application factory."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from appeals import schema
from appeals.db import Base
from config import ConfigError, Settings


def test_secret_key_required_outside_demo_and_test(tmp_path):
    """Production refuses to start without APPEALS_SECRET_KEY; demo mode uses embedded defaults."""
    with pytest.raises(ConfigError, match="APPEALS_SECRET_KEY"):
        Settings.from_env({"APPEALS_HOME": str(tmp_path)})
    demo = Settings.from_env({"APPEALS_HOME": str(tmp_path), "APPEALS_MODE": "demo"})
    assert demo.database_url == f"sqlite:///{tmp_path.resolve() / 'appeals.sqlite3'}"
    assert demo.redis_url is None
    assert demo.data_dir == tmp_path.resolve() / "data"


def test_hash_key_required_in_production(tmp_path):
    """A production install must bring its own hashing key; its id never reveals it."""
    import secrets

    signing = tmp_path / "signing.pem"
    signing.write_text("a key file")
    env = {"APPEALS_HOME": str(tmp_path), "APPEALS_SECRET_KEY": secrets.token_urlsafe(48),
           "APPEALS_SIGNING_KEY": str(signing)}
    with pytest.raises(ConfigError, match="APPEALS_HASH_KEY"):
        Settings.from_env(env)
    hash_key = secrets.token_urlsafe(48)
    settings = Settings.from_env({**env, "APPEALS_HASH_KEY": hash_key, "APPEALS_DATA_DIR": str(tmp_path / "d")})
    assert settings.hash_key_id.startswith("hmac-sha256:")
    assert hash_key[:8] not in settings.hash_key_id
    assert settings.data_dir == (tmp_path / "d").resolve()


def test_bad_integer_setting_is_named(tmp_path):
    with pytest.raises(ConfigError, match="APPEALS_SLA_DAYS"):
        Settings.from_env({"APPEALS_HOME": str(tmp_path), "APPEALS_MODE": "test", "APPEALS_SLA_DAYS": "two"})


def test_single_migration_head():
    assert len(schema.heads()) == 1


def _migration_urls(tmp_path) -> list[str]:
    urls = [f"sqlite:///{tmp_path / 'migrate.sqlite3'}"]
    pg = os.environ.get("APPEALS_TEST_MIGRATION_DATABASE_URL")
    if pg:
        urls.append(pg)
    return urls


def _empty_database(url: str):
    """An engine on `url`, its database emptied first (PostgreSQL; the SQLite file starts new)."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    return engine


def test_upgrade_matches_models_and_downgrade_empties(tmp_path):
    """Upgrade from empty gives exactly the models' schema; downgrade returns to empty."""
    for url in _migration_urls(tmp_path):
        engine = _empty_database(url)
        schema.upgrade(url)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], f"models and migrations differ on {engine.dialect.name}: {diff}"
        schema.downgrade(url, "base")
        tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
        assert tables == set(), engine.dialect.name
        engine.dispose()


def test_queue_summary_migration_counts_the_appeals_already_there(tmp_path):
    """0010_queue_summary fills appeal_counts, 0011_dataset_counts appeal_dataset_counts and
    0012_dataset_queue_keys the dataset rows' copies and 0013_queue_totals appeal_totals, from the appeals that
    exist; downgrade drops them; again up."""
    for url in _migration_urls(tmp_path):
        engine = _empty_database(url)
        schema.upgrade(url, "0003_standing_decisions")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO accounts (user_id, screen_name, screen_name_lower, password_hash, "
                              "followers, suspended, created_at, session_generation) "
                              "VALUES ('42', 'x', 'x', '!', 0, false, '2026-01-01', 0)"))
            account = conn.execute(text("SELECT id FROM accounts")).scalar()
            for k, (status, reason, due) in enumerate([("filed", "other", "2026-02-01 10:00"),
                                                       ("filed", "other", "2026-02-01 23:00"),
                                                       ("denied", "compromised", "2026-02-01 10:00"),
                                                       ("filed", "other", "2026-02-02 00:00")]):
                conn.execute(text("INSERT INTO appeals (account_id, status, reason, statement, contact_email, "
                                  "created_at, updated_at, due_at, footprint_size, version) VALUES "
                                  "(:a, :s, :r, 'x', 'a@example.org', '2026-01-01', '2026-01-01', :d, 0, 1)"),
                             {"a": account, "s": status, "r": reason, "d": due})
            ids = conn.execute(text("SELECT id FROM appeals ORDER BY id")).scalars().all()
            for appeal_id, dataset in ((ids[0], "alpha"), (ids[1], "alpha"), (ids[2], "alpha"), (ids[2], "beta")):
                conn.execute(text("INSERT INTO appeal_datasets (appeal_id, dataset, version, authored_tweets, "
                                  "referring_rows, hashed_publicly) VALUES (:a, :d, 1, 1, 0, true)"),
                             {"a": appeal_id, "d": dataset})
        schema.upgrade(url)
        with engine.connect() as conn:
            rows = sorted((s, r, str(d), str(c), n) for s, r, d, c, n in conn.execute(
                text("SELECT status, reason, due_day, created_day, appeals FROM appeal_counts")))
        assert rows == [("denied", "compromised", "2026-02-01", "2026-01-01", 1),
                        ("filed", "other", "2026-02-01", "2026-01-01", 2),
                        ("filed", "other", "2026-02-02", "2026-01-01", 1)], engine.dialect.name
        with engine.connect() as conn:
            rows = sorted((ds, s, r, str(d), str(c), n) for ds, s, r, d, c, n in conn.execute(
                text("SELECT dataset, status, reason, due_day, created_day, appeals FROM appeal_dataset_counts")))
        assert rows == [("alpha", "denied", "compromised", "2026-02-01", "2026-01-01", 1),
                        ("alpha", "filed", "other", "2026-02-01", "2026-01-01", 2),
                        ("beta", "denied", "compromised", "2026-02-01", "2026-01-01", 1)], engine.dialect.name
        # 0012_dataset_queue_keys: each dataset row carries its appeal's status and sort keys.
        with engine.connect() as conn:
            rows = sorted((ds, s, str(c)[:10], str(d)[:16], f) for ds, s, c, d, f in conn.execute(text(
                "SELECT dataset, appeal_status, appeal_created_at, appeal_due_at, appeal_footprint "
                "FROM appeal_datasets")))
        assert rows == [("alpha", "denied", "2026-01-01", "2026-02-01 10:00", 0),
                        ("alpha", "filed", "2026-01-01", "2026-02-01 10:00", 0),
                        ("alpha", "filed", "2026-01-01", "2026-02-01 23:00", 0),
                        ("beta", "denied", "2026-01-01", "2026-02-01 10:00", 0)], engine.dialect.name
        # 0013_queue_totals: the counts summed per (dataset or "" for every appeal, status, reason).
        with engine.connect() as conn:
            rows = sorted(conn.execute(text("SELECT dataset, status, reason, appeals FROM appeal_totals")).all())
        assert [tuple(r) for r in rows] == [("", "denied", "compromised", 1), ("", "filed", "other", 3),
                                            ("alpha", "denied", "compromised", 1), ("alpha", "filed", "other", 2),
                                            ("beta", "denied", "compromised", 1)], engine.dialect.name
        schema.downgrade(url, "0010_queue_summary")
        assert "appeal_dataset_counts" not in inspect(engine).get_table_names()
        assert "appeal_counts" in inspect(engine).get_table_names()
        schema.downgrade(url, "0003_standing_decisions")
        assert "appeal_counts" not in inspect(engine).get_table_names()
        schema.upgrade(url)
        schema.downgrade(url, "base")
        engine.dispose()


def test_domain_imports_without_flask():
    """Models, services and the engine load without the web stack (workers rely on it)."""
    code = (
        "import sys, appeals.models, appeals.services.appeals, workers.engine.api;"
        "assert 'flask' not in sys.modules, sorted(m for m in sys.modules if 'flask' in m)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_openapi_document_is_served(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.")
    assert "/tokens" in doc["paths"]


def test_every_api_route_is_documented_and_every_documented_operation_is_served(app):
    from appeals.api import spec

    undocumented, unserved = spec.gaps(app)
    assert (undocumented, unserved) == (set(), set())


def test_the_openapi_document_is_built_in_one_place():
    """appeals/api/spec holds the paths, one area per module, each path in one area; route modules hold routes."""
    from pathlib import Path

    from appeals.api import spec

    declared = [path for area in spec.AREAS for path in area.PATHS]
    assert len(declared) == len(set(declared)) == len(spec.document()["paths"])
    routes = Path(spec.__file__).resolve().parents[1]
    for module in sorted(routes.glob("*.py")):
        source = module.read_text(encoding="utf-8")
        assert "OPENAPI_PATHS" not in source and "#/components/" not in source, module.name


@pytest.mark.parametrize("target, prefix, expected", [
    ("/me", "/", "/me"),
    ("/review/appeals/3", "/review", "/review/appeals/3"),
    ("/me", "/review", None),
    ("//evil.example/x", "/", None),
    ("https://evil.example/", "/", None),
    ("/\\evil.example", "/", None),
    ("", "/", None),
    (None, "/", None),
])
def test_safe_next_allows_only_site_paths(target, prefix, expected):
    """Every login's `next` goes through one check: no redirect ever leaves the site."""
    from appeals.web import safe_next

    assert safe_next(target, prefix) == expected


# --- read-only requests: a session in autocommit that refuses writes ------------------------------


def _in_transaction(dbapi_connection) -> bool:
    """Whether the driver's connection has a transaction open (psycopg or sqlite3)."""
    info = getattr(dbapi_connection, "info", None)
    if info is not None and hasattr(info, "transaction_status"):
        import psycopg

        return info.transaction_status != psycopg.pq.TransactionStatus.IDLE
    return dbapi_connection.in_transaction


def test_a_read_only_session_reads_outside_any_transaction_and_refuses_writes(app, make_staff):
    from appeals import db
    from appeals.models import Staff

    make_staff("reader@example.org")
    db.session.remove()  # the factory's session
    with app.app_context():
        assert db.begin_read_only()
        assert db.session.info["read_only"]
        assert db.session.scalar(text("SELECT count(*) FROM staff")) == 1
        # No BEGIN was sent before the SELECT, so no ROLLBACK is owed when the session is removed.
        assert not _in_transaction(db.session.connection().connection.dbapi_connection)
        db.session.add(Staff(email="writer@example.org", role="reviewer", password_hash="x"))
        with pytest.raises(db.ReadOnlySession):
            db.session.flush()
        db.session.remove()
        # The pooled connection goes back to the default, transactional mode for the next session.
        assert not db.session.info.get("read_only")
        db.session.execute(text("UPDATE staff SET role = 'senior'"))
        assert _in_transaction(db.session.connection().connection.dbapi_connection)
        db.session.rollback()
        assert db.session.scalar(text("SELECT role FROM staff")) == "reviewer"
        assert db.session.scalar(text("SELECT count(*) FROM staff WHERE email = 'writer@example.org'")) == 0
        db.session.remove()


def test_a_read_only_session_is_not_started_over_an_existing_one(app):
    from appeals import db

    with app.app_context():
        db.session.execute(text("SELECT 1"))
        assert not db.begin_read_only()
        assert not db.session.info.get("read_only")
        db.session.remove()


@pytest.mark.parametrize("method, path, read_only", [
    ("GET", "/api/v1/queue", True),
    ("GET", "/api/v1/queue?status=all&per_page=100", True),
    ("POST", "/api/v1/queue/claim-next", False),
    ("GET", "/api/v1/openapi.json", False),
])
def test_only_the_read_only_api_gets_start_a_read_only_session(app, method, path, read_only):
    from appeals import db

    db.session.remove()
    with app.test_request_context(path, method=method):
        app.preprocess_request()
        assert bool(db.session.info.get("read_only")) is read_only
    db.session.remove()
