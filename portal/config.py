"""Settings from the environment; production refuses to start without its secrets."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any


class ConfigError(RuntimeError):
    """Raised when the environment cannot make a safe configuration."""


def _instance_secret(instance_path: Path, name: str) -> str:
    """Read a development secret from instance/, creating it once."""
    path = instance_path / name
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def database_url(raw: str | None, instance_path: Path) -> str:
    """The SQLAlchemy URL: SQLite under instance/ by default, psycopg 3 for PostgreSQL."""
    if not raw:
        instance_path.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{instance_path / 'portal.db'}"
    for legacy in ("postgres://", "postgresql://"):
        if raw.startswith(legacy):
            return "postgresql+psycopg://" + raw[len(legacy) :]
    return raw


def task_queue_url(raw: str | None, instance_path: Path) -> str:
    """The huey queue: a SQLite file under instance/ by default, or `redis://host:port/db`."""
    if not raw:
        return f"sqlite:///{instance_path / 'tasks.db'}"
    if raw.startswith(("sqlite:///", "redis://", "rediss://")):
        return raw
    # Name the scheme only: the rest of a URL may hold a password.
    raise ConfigError(
        f"TASK_QUEUE_URL must be redis://host:port/db or sqlite:///path, not {_scheme(raw)}."
    )


def mail_url(raw: str | None) -> str:
    """Where mail goes: `console://` (the log and instance/mail/), `smtp://` or `smtps://`."""
    url = raw or "console://"
    if _scheme(url) not in ("console://", "smtp://", "smtps://"):
        raise ConfigError(
            "MAIL_URL must be console://, smtp://user:pass@host:587 (STARTTLS) or "
            f"smtps://user:pass@host:465 (TLS), not {_scheme(url)}."
        )
    return url


def _scheme(url: str) -> str:
    """The scheme of a URL, for error messages that must not repeat a password."""
    scheme, separator, _ = url.partition("://")
    return f"{scheme}://" if separator else "a URL without a scheme"


def _check_production_queue(config: dict[str, Any]) -> None:
    """Production data on PostgreSQL means several hosts: a SQLite queue would split the work."""
    on_postgres = config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
    if on_postgres and config["TASK_QUEUE_URL"].startswith("sqlite"):
        raise ConfigError(
            "PORTAL_ENV=production with the data on PostgreSQL needs TASK_QUEUE_URL="
            "redis://host:port/db: the default SQLite queue is one file on one host."
        )


def check_serving_processes(processes: int, config: dict[str, Any]) -> str | None:
    """Why `processes` serving processes cannot share these limits: an error in production.

    Returns the warning to log in development (None when all is well); raises ConfigError in
    production. Each process counts `memory://` limits on its own, so N processes serve N
    times every limit.
    """
    if processes <= 1 or not config["RATELIMIT_STORAGE_URI"].startswith("memory://"):
        return None
    message = (
        f"{processes} serving processes with RATELIMIT_STORAGE_URI=memory:// count every rate "
        f"limit once per process (a limit of 5 would serve {5 * processes}): set "
        "RATELIMIT_STORAGE_URI=redis://host:port/db"
    )
    if config["PORTAL_ENV"] == "production":
        raise ConfigError(message + ", or serve with one process.")
    return message + " (a start-up error in production)."


def load_config(instance_path: Path, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config from environment variables."""
    env = dict(os.environ if environ is None else environ)
    portal_env = env.get("PORTAL_ENV", "development")
    if portal_env not in ("development", "production", "testing"):
        raise ConfigError(f"PORTAL_ENV must be development or production, not {portal_env!r}.")
    production = portal_env == "production"
    if production:
        # PORTAL_URL: mail links (sign-up confirmation, invitations) and the API document's
        # servers are built from it, never from a request's Host header.
        required = ("SECRET_KEY", "API_KEY_PEPPER", "PORTAL_URL")
        missing = [name for name in required if not env.get(name)]
        if missing:
            names = (
                ", ".join(missing[:-1]) + " and " + missing[-1] if len(missing) > 1 else missing[0]
            )
            raise ConfigError(f"PORTAL_ENV=production needs {names} in the environment.")
    secret_key = env.get("SECRET_KEY") or _instance_secret(instance_path, "secret_key")
    pepper = env.get("API_KEY_PEPPER") or _instance_secret(instance_path, "api_key_pepper")
    config = {
        "PORTAL_ENV": portal_env,
        "SECRET_KEY": secret_key,
        "API_KEY_PEPPER": pepper.encode(),
        "SQLALCHEMY_DATABASE_URI": database_url(env.get("DATABASE_URL"), instance_path),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_STRATEGY": "fixed-window",
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        # Several deployments (or test runs) sharing one Redis keep their counters apart.
        "RATELIMIT_KEY_PREFIX": env.get("RATELIMIT_KEY_PREFIX") or "portal",
        "LOGIN_LIMIT_PER_IP": env.get("LOGIN_LIMIT_PER_IP", "20/minute"),
        "LOGIN_LIMIT_PER_ACCOUNT": env.get("LOGIN_LIMIT_PER_ACCOUNT", "5/minute"),
        # The code step of a sign-in with two factors: per client IP, per (user, IP), and the
        # wrong codes one pending sign-in may take before the password is asked again.
        "TWO_FACTOR_LIMIT_PER_IP": env.get("TWO_FACTOR_LIMIT_PER_IP", "30/minute"),
        "TWO_FACTOR_LIMIT_PER_ACCOUNT": env.get("TWO_FACTOR_LIMIT_PER_ACCOUNT", "10/minute"),
        "TWO_FACTOR_FAILURES_PER_SIGN_IN": "5 per 10 minutes",
        # ... and per account from everywhere: whoever has the password and many addresses
        # cannot guess on (the member then waits, or an operator helps).
        "TWO_FACTOR_FAILURES_PER_USER": env.get("TWO_FACTOR_FAILURES_PER_USER", "20 per hour"),
        # Wrong passwords on the re-authentication page, per user.
        "REAUTH_FAILURES_PER_USER": env.get("REAUTH_FAILURES_PER_USER", "5 per 10 minutes"),
        "LEAKED_KEYS_LIMIT_PER_IP": env.get("LEAKED_KEYS_LIMIT_PER_IP", "30/minute"),
        # Webhook deliveries to private, loopback or link-local addresses: never in production.
        "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": not production,
        "FORWARDED_ALLOW_IPS": env.get("FORWARDED_ALLOW_IPS", ""),  # portal/proxy.py reads it
        "PROXY_HOPS": env.get("PROXY_HOPS", "0"),
        # Each sign-up hashes a password with argon2 (64 MiB): a flood of them is a DoS.
        "REGISTER_LIMIT_PER_IP": env.get("REGISTER_LIMIT_PER_IP", "5/minute;20/hour"),
        # Sign-up mails to an address that has an account (someone tried, or a new link).
        "SIGN_UP_MAILS_PER_EMAIL": env.get("SIGN_UP_MAILS_PER_EMAIL", "3/hour"),
        "API_DOCS_URL": env.get("API_DOCS_URL", ""),
        "USAGE_FLUSH_SECONDS": float(env.get("USAGE_FLUSH_SECONDS", "2")),
        "USAGE_RETENTION_DAYS": int(env.get("USAGE_RETENTION_DAYS", "400")),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "PREFERRED_URL_SCHEME": "https" if production else "http",
        "WTF_CSRF_TIME_LIMIT": None,
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "TASK_QUEUE_URL": task_queue_url(env.get("TASK_QUEUE_URL"), instance_path),
        # Several deployments sharing one Redis keep their queues apart.
        "TASK_QUEUE_NAME": env.get("TASK_QUEUE_NAME") or "portal",
        # Tests run each task at once, in the process that enqueues it.
        "TASK_IMMEDIATE": False,
        "MAIL_URL": mail_url(env.get("MAIL_URL")),
        "MAIL_FROM": env.get("MAIL_FROM") or "Merchant key portal <no-reply@localhost>",
        "MAIL_DIR": str(instance_path / "mail"),
        # Links in mails point here (mails sent by the worker have no request to go by).
        "PORTAL_URL": (env.get("PORTAL_URL") or "http://127.0.0.1:5000").rstrip("/"),
    }
    if production:
        _check_production_queue(config)
    return config
