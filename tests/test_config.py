"""Settings from the environment: production refuses to start without its secrets."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from portal import create_app
from portal.config import ConfigError, check_serving_processes, database_url, load_config
from tests.scale.conftest import free_port, stop, wait_until

ROOT = Path(__file__).resolve().parent.parent

SECRETS = {
    "SECRET_KEY": "s" * 48,
    "API_KEY_PEPPER": "p" * 48,
    "PORTAL_URL": "https://keys.shop-platform.example",
}


@pytest.mark.parametrize(
    ("environ", "missing"),
    [
        ({}, "SECRET_KEY, API_KEY_PEPPER and PORTAL_URL"),
        ({"API_KEY_PEPPER": "p" * 48, "PORTAL_URL": "https://k.example"}, "needs SECRET_KEY in"),
        ({"SECRET_KEY": "s" * 48, "PORTAL_URL": "https://k.example"}, "needs API_KEY_PEPPER in"),
        ({"SECRET_KEY": "s" * 48, "API_KEY_PEPPER": "p" * 48}, "needs PORTAL_URL in"),
        ({"SECRET_KEY": "", "API_KEY_PEPPER": "", "PORTAL_URL": ""}, "SECRET_KEY, API_KEY_PEPPER"),
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


# --- the queue and mail settings --------------------------------------------------------------


def test_the_default_queue_is_a_sqlite_file_and_mail_goes_to_the_console(tmp_path: Path) -> None:
    config = load_config(tmp_path, {})

    assert config["TASK_QUEUE_URL"] == f"sqlite:///{tmp_path / 'tasks.db'}"
    assert config["MAIL_URL"] == "console://"
    assert config["MAIL_DIR"] == str(tmp_path / "mail")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("TASK_QUEUE_URL", "redis://cache:6379/1", "redis://cache:6379/1"),
        ("TASK_QUEUE_URL", "sqlite:////srv/portal/tasks.db", "sqlite:////srv/portal/tasks.db"),
        ("MAIL_URL", "smtp://portal:pw@mail.example:587", "smtp://portal:pw@mail.example:587"),
        ("MAIL_URL", "smtps://portal:pw@mail.example", "smtps://portal:pw@mail.example"),
    ],
)
def test_queue_and_mail_urls_come_from_the_environment(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    assert load_config(tmp_path, {name: value})[name] == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TASK_QUEUE_URL", "amqp://rabbit/"),
        ("TASK_QUEUE_URL", "/var/lib/tasks.db"),
        ("MAIL_URL", "sendmail://"),
        ("MAIL_URL", "mail.example:587"),
    ],
)
def test_an_unknown_queue_or_mail_url_is_refused_by_name(
    tmp_path: Path, name: str, value: str
) -> None:
    with pytest.raises(ConfigError, match=name):
        load_config(tmp_path, {name: value})


@pytest.mark.parametrize("name", ["TASK_QUEUE_URL", "MAIL_URL"])
@pytest.mark.parametrize("value", ["amqp://ops:hunter2-pw@rabbit/", "ops:hunter2-pw@host:587"])
def test_a_refused_url_is_not_repeated_with_its_password(
    tmp_path: Path, name: str, value: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path, {name: value})

    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    ("environ", "refused"),
    [
        ({"DATABASE_URL": "postgresql://u:p@db/portal"}, True),
        ({"DATABASE_URL": "postgres://u:p@db/portal", "TASK_QUEUE_URL": "sqlite:////q.db"}, True),
        ({"DATABASE_URL": "postgresql://u:p@db/portal", "TASK_QUEUE_URL": "redis://r/0"}, False),
        ({}, False),  # SQLite data: one host, so the SQLite queue is right
    ],
)
def test_production_on_postgresql_needs_a_shared_queue(
    tmp_path: Path, environ: dict[str, str], refused: bool
) -> None:
    environ = {"PORTAL_ENV": "production", **SECRETS, **environ}
    if refused:
        with pytest.raises(ConfigError, match="TASK_QUEUE_URL=redis://"):
            load_config(tmp_path, environ)
    else:
        assert load_config(tmp_path, environ)["PORTAL_ENV"] == "production"
    # Development on PostgreSQL with the SQLite queue is allowed (one laptop).
    assert load_config(tmp_path, {**environ, "PORTAL_ENV": "development"})


@pytest.mark.parametrize(
    ("processes", "storage", "portal_env", "outcome"),
    [
        (1, "memory://", "production", None),
        (4, "redis://cache:6379/0", "production", None),
        (2, "memory://", "production", "error"),
        (2, "memory://", "development", "warning"),
    ],
)
def test_several_processes_on_memory_limits(
    tmp_path: Path, processes: int, storage: str, portal_env: str, outcome: str | None
) -> None:
    config = load_config(
        tmp_path, {"PORTAL_ENV": portal_env, "RATELIMIT_STORAGE_URI": storage, **SECRETS}
    )
    if outcome == "error":
        with pytest.raises(ConfigError, match="RATELIMIT_STORAGE_URI=redis://"):
            check_serving_processes(processes, config)
    elif outcome == "warning":
        warning = check_serving_processes(processes, config)
        assert warning and "RATELIMIT_STORAGE_URI" in warning and "serve 10" in warning
    else:
        assert check_serving_processes(processes, config) is None


# --- gunicorn refuses several workers on memory:// limits in production ----------------------


def _gunicorn(
    tmp_path: Path, portal_env: str, workers: int, **environ: str
) -> tuple[subprocess.Popen, Path, int]:
    """gunicorn with gunicorn.conf.py on a SQLite database, memory:// limits (the default)."""
    port = free_port()
    log_path = tmp_path / f"gunicorn-{portal_env}.log"
    env = {
        **os.environ,
        "PORTAL_ENV": portal_env,
        **SECRETS,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.db'}",
        "PORTAL_INSTANCE_PATH": str(tmp_path / "instance"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
    }
    env.pop("RATELIMIT_STORAGE_URI", None)
    env.pop("TASK_QUEUE_URL", None)
    env.update(environ)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "--config", "gunicorn.conf.py"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process, log_path, port


def test_gunicorn_refuses_two_workers_on_memory_limits_in_production(tmp_path: Path) -> None:
    process, log_path, port = _gunicorn(tmp_path, "production", workers=2)
    try:
        exit_code = process.wait(timeout=60)
    finally:
        stop(process)
    log = log_path.read_text()

    assert exit_code != 0, log
    assert "RATELIMIT_STORAGE_URI=redis://" in log
    assert "a limit of 5 would serve 10" in log
    assert "Booting worker" not in log  # refused before any worker served a request
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_gunicorn_refuses_the_sqlite_queue_with_data_on_postgresql(tmp_path: Path) -> None:
    # The check reads the settings only: no PostgreSQL needs to answer at this address.
    database = "postgresql://portal@127.0.0.1:9/portal"
    process, log_path, _ = _gunicorn(tmp_path, "production", workers=1, DATABASE_URL=database)
    try:
        exit_code = process.wait(timeout=60)
    finally:
        stop(process)
    log = log_path.read_text()

    assert exit_code != 0, log
    assert "needs TASK_QUEUE_URL=redis://" in log
    assert "Booting worker" not in log


def test_gunicorn_warns_about_two_workers_on_memory_limits_in_development(
    tmp_path: Path,
) -> None:
    process, log_path, port = _gunicorn(tmp_path, "development", workers=2)
    try:
        wait_until(
            lambda: log_path.read_text().count("Booting worker") >= 2 or process.poll() is not None,
            60,
            "gunicorn to boot two workers",
        )
        assert process.poll() is None, log_path.read_text()
    finally:
        stop(process)
    log = log_path.read_text()

    [warning] = [line for line in log.splitlines() if "RATELIMIT_STORAGE_URI" in line]
    assert "[WARNING]" in warning and "a limit of 5 would serve 10" in warning
