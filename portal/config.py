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


def load_config(instance_path: Path, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config from environment variables."""
    env = dict(os.environ if environ is None else environ)
    portal_env = env.get("PORTAL_ENV", "development")
    if portal_env not in ("development", "production", "testing"):
        raise ConfigError(f"PORTAL_ENV must be development or production, not {portal_env!r}.")
    production = portal_env == "production"
    if production:
        missing = [name for name in ("SECRET_KEY", "API_KEY_PEPPER") if not env.get(name)]
        if missing:
            raise ConfigError(
                f"PORTAL_ENV=production needs {' and '.join(missing)} in the environment."
            )
    secret_key = env.get("SECRET_KEY") or _instance_secret(instance_path, "secret_key")
    pepper = env.get("API_KEY_PEPPER") or _instance_secret(instance_path, "api_key_pepper")
    return {
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
        # Each sign-up hashes a password with argon2 (64 MiB): a flood of them is a DoS.
        "REGISTER_LIMIT_PER_IP": env.get("REGISTER_LIMIT_PER_IP", "5/minute;20/hour"),
        "API_DOCS_URL": env.get("API_DOCS_URL", ""),
        "USAGE_FLUSH_SECONDS": float(env.get("USAGE_FLUSH_SECONDS", "2")),
        "USAGE_RETENTION_DAYS": int(env.get("USAGE_RETENTION_DAYS", "400")),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "PREFERRED_URL_SCHEME": "https" if production else "http",
        "WTF_CSRF_TIME_LIMIT": None,
        "MAX_CONTENT_LENGTH": 1024 * 1024,
    }
