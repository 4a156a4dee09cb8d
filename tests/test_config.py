"""Settings from the environment: production refuses to start without its secrets."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from portal import create_app
from portal.config import ConfigError, database_url, load_config

SECRETS = {"SECRET_KEY": "s" * 48, "API_KEY_PEPPER": "p" * 48}


@pytest.mark.parametrize(
    ("environ", "missing"),
    [
        ({}, "SECRET_KEY and API_KEY_PEPPER"),
        ({"API_KEY_PEPPER": "p" * 48}, "SECRET_KEY"),
        ({"SECRET_KEY": "s" * 48}, "API_KEY_PEPPER"),
        ({"SECRET_KEY": "", "API_KEY_PEPPER": ""}, "SECRET_KEY and API_KEY_PEPPER"),
    ],
)
def test_production_refuses_to_start_without_its_secrets(
    tmp_path: Path, environ: dict[str, str], missing: str
) -> None:
    with pytest.raises(ConfigError, match=missing):
        load_config(tmp_path, {"PORTAL_ENV": "production", **environ})

    assert list(tmp_path.iterdir()) == []  # and it did not fall back to generated secrets


def test_production_uses_the_secrets_and_secure_cookies(tmp_path: Path) -> None:
    config = load_config(tmp_path, {"PORTAL_ENV": "production", **SECRETS})

    assert config["SECRET_KEY"] == SECRETS["SECRET_KEY"]
    assert config["API_KEY_PEPPER"] == SECRETS["API_KEY_PEPPER"].encode()
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["SESSION_COOKIE_HTTPONLY"] is True
    assert config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert config["PREFERRED_URL_SCHEME"] == "https"
    assert not (tmp_path / "secret_key").exists() and not (tmp_path / "api_key_pepper").exists()


def test_create_app_refuses_production_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("API_KEY_PEPPER", raising=False)

    with pytest.raises(ConfigError):
        create_app()


def test_development_generates_the_secrets_once_and_reuses_them(tmp_path: Path) -> None:
    instance = tmp_path / "instance"

    first = load_config(instance, {})
    second = load_config(instance, {})

    assert first["PORTAL_ENV"] == "development"
    assert first["SESSION_COOKIE_SECURE"] is False
    secret_file, pepper_file = instance / "secret_key", instance / "api_key_pepper"
    assert first["SECRET_KEY"] == secret_file.read_text().strip() == second["SECRET_KEY"]
    assert first["API_KEY_PEPPER"] == pepper_file.read_text().strip().encode()
    assert first["API_KEY_PEPPER"] == second["API_KEY_PEPPER"]
    assert first["SECRET_KEY"].encode() != first["API_KEY_PEPPER"]
    assert len(first["SECRET_KEY"]) >= 32 and len(first["API_KEY_PEPPER"]) >= 32
    for path in (secret_file, pepper_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_development_secrets_differ_between_instances(tmp_path: Path) -> None:
    one = load_config(tmp_path / "one", {})
    two = load_config(tmp_path / "two", {})

    assert one["SECRET_KEY"] != two["SECRET_KEY"]
    assert one["API_KEY_PEPPER"] != two["API_KEY_PEPPER"]


def test_environment_secrets_win_over_generated_ones(tmp_path: Path) -> None:
    config = load_config(tmp_path, SECRETS)

    assert config["SECRET_KEY"] == SECRETS["SECRET_KEY"]
    assert config["API_KEY_PEPPER"] == SECRETS["API_KEY_PEPPER"].encode()
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_environment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PORTAL_ENV"):
        load_config(tmp_path, {"PORTAL_ENV": "prod"})


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, {"RATELIMIT_STORAGE_URI": "memory://", "LOGIN_LIMIT_PER_ACCOUNT": "5/minute"}),
        (
            {"RATELIMIT_STORAGE_URI": "redis://cache:6379/0", "LOGIN_LIMIT_PER_IP": "10/minute"},
            {"RATELIMIT_STORAGE_URI": "redis://cache:6379/0", "LOGIN_LIMIT_PER_IP": "10/minute"},
        ),
    ],
)
def test_limiter_settings_come_from_the_environment(
    tmp_path: Path, environ: dict[str, str], expected: dict[str, str]
) -> None:
    config = load_config(tmp_path, environ)

    assert {name: config[name] for name in expected} == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgres://u:p@db/portal", "postgresql+psycopg://u:p@db/portal"),
        ("postgresql://u:p@db/portal", "postgresql+psycopg://u:p@db/portal"),
        ("postgresql+psycopg://u:p@db/portal", "postgresql+psycopg://u:p@db/portal"),
        ("sqlite:////tmp/other.db", "sqlite:////tmp/other.db"),
    ],
)
def test_database_url_from_the_environment(tmp_path: Path, raw: str, expected: str) -> None:
    assert database_url(raw, tmp_path) == expected
    assert load_config(tmp_path, {"DATABASE_URL": raw})["SQLALCHEMY_DATABASE_URI"] == expected


def test_the_default_database_is_sqlite_under_the_instance_folder(tmp_path: Path) -> None:
    assert load_config(tmp_path, {})["SQLALCHEMY_DATABASE_URI"] == (
        f"sqlite:///{tmp_path / 'portal.db'}"
    )
