"""The operator commands (`flask --app wsgi ...`), through the CLI runner."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import select

from portal.accounts import service as accounts
from portal.accounts.models import Market, Merchant, User
from portal.database import utcnow
from portal.demo import DEMO_EMAIL, DEMO_PASSWORD
from portal.extensions import db
from portal.keys import service as keys
from portal.keys import tokens
from portal.keys.models import ApiKey, AuditEvent
from portal.store.models import Product
from tests.conftest import PASSWORD, make_key, sign_in
from tests.helpers import count, snapshot


def run(runner: CliRunner, *args: str) -> Result:
    """Invoke a `flask` command."""
    result = runner.invoke(args=list(args))
    db.session.expire_all()
    return result


def create_key(runner: CliRunner, *args: str) -> Result:
    """`create-key` for `user` with --json and the given options."""
    return run(runner, "create-key", "--merchant-email", "owner@shop.test", "--json", *args)


# --- create-merchant ------------------------------------------------------------------------


def test_create_merchant(runner: CliRunner) -> None:
    result = run(
        runner, "create-merchant", "--email", "Boss@Shop.test", "--password", PASSWORD,
        "--name", "Boss Shop",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "Boss Shop" in result.output and "boss@shop.test" in result.output
    assert accounts.authenticate("boss@shop.test", PASSWORD).merchant.name == "Boss Shop"


@pytest.mark.parametrize(
    ("email", "password", "reason"),
    [
        ("owner@shop.test", PASSWORD, "already exists"),
        ("new@shop.test", "short", "at least 10"),
        ("not-an-email", PASSWORD, "valid email"),
    ],
)
def test_create_merchant_refuses_bad_input(
    runner: CliRunner, user: User, email: str, password: str, reason: str
) -> None:
    result = run(runner, "create-merchant", "--email", email, "--password", password, "--name", "X")

    assert result.exit_code != 0
    assert reason in result.output
    assert count(Merchant) == 1


# --- create-key -----------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["publishable", "secret"])
def test_create_key_prints_json_with_a_working_key(
    app: Flask, runner: CliRunner, user: User, key_type: str
) -> None:
    result = create_key(runner, "--type", key_type, "--label", "CLI key")

    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert set(printed) == {"id", "key"}
    token = printed["key"]
    parsed = tokens.parse_token(token)
    assert parsed is not None and parsed.key_type == key_type
    key = db.session.scalar(
        select(ApiKey).where(
            ApiKey.key_hash == tokens.hash_token(token, app.config["API_KEY_PEPPER"])
        )
    )
    assert key is not None and key.id == printed["id"]
    assert key.merchant_id == user.merchant_id and key.label == "CLI key"
    assert key.scopes == list(keys.scopes.DEFAULT_SCOPES[key_type])
    assert key.rate_limit == 60 and key.expires_at is None and key.market_id is None
    assert key.created_by_name == "operator (CLI)"
    assert db.session.scalar(select(AuditEvent.action).where(AuditEvent.api_key_id == key.id)) == (
        "created"
    )


def test_create_key_with_every_option(runner: CliRunner, user: User) -> None:
    market = accounts.add_market(user.merchant_id, "EU", "Europe")

    result = create_key(
        runner, "--type", "secret", "--label", "Sync", "--description", "Nightly",
        "--scope", "orders:read", "--scope", "orders:write",
        "--ip-range", "203.0.113.0/24", "--ip-range", "2001:db8::/32",
        "--rate-limit", "500", "--expires-in-days", "30", "--market", "eu",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    key = db.session.get(ApiKey, json.loads(result.output)["id"])
    assert (key.description, key.rate_limit, key.market_id) == ("Nightly", 500, market.id)
    assert key.scopes == ["orders:read", "orders:write"]
    assert key.allowed_ip_ranges == ["203.0.113.0/24", "2001:db8::/32"]
    assert abs(key.expires_at - (utcnow() + timedelta(days=30))) < timedelta(minutes=1)


def test_create_publishable_key_with_origins(runner: CliRunner, user: User) -> None:
    result = create_key(
        runner, "--type", "publishable", "--label", "Shop",
        "--origin", "HTTPS://Shop.Example.com", "--origin", "https://*.example.net",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    key = db.session.get(ApiKey, json.loads(result.output)["id"])
    assert key.allowed_origins == ["https://shop.example.com", "https://*.example.net"]


def test_create_key_without_json_warns_a_secret_is_shown_once(
    runner: CliRunner, user: User
) -> None:
    result = run(
        runner, "create-key", "--merchant-email", user.email, "--type", "secret", "--label", "S"
    )

    assert result.exit_code == 0, result.output
    assert "sk_live_" in result.output and "will not be shown again" in result.output


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("--merchant-email", "nobody@shop.test"), "No merchant user with the email"),
        (("--type", "publishable", "--scope", "orders:write"), "orders:write"),
        (("--scope", "everything"), "everything"),
        (("--type", "publishable", "--origin", "shop.example.com"), "scheme://host"),
        (("--type", "secret", "--origin", "https://shop.example.com"), "publishable keys"),
        (("--ip-range", "10.0.0.1/8"), "10.0.0.0/8"),
        (("--ip-range", "everywhere"), "CIDR"),
        (("--type", "publishable", "--ip-range", "10.0.0.0/8"), "secret keys"),
        (("--market", "MARS"), "MARS"),
        (("--rate-limit", "0"), "1 to 10,000"),
        (("--rate-limit", "10001"), "1 to 10,000"),
        (("--expires-in-days", "0"), "--expires-in-days"),
        (("--label", ""), "label"),
        (("--label", "x" * 81), "80"),
        (("--type", "public"), "public"),
    ],
)
def test_create_key_refuses_bad_input_with_the_reason(
    runner: CliRunner, user: User, args: tuple[str, ...], reason: str
) -> None:
    options = {"--merchant-email": user.email, "--type": "secret", "--label": "Key"}
    extra: list[str] = []
    given = list(args)
    while given:
        name, value = given.pop(0), given.pop(0)
        if name in options:
            options[name] = value
        else:
            extra += [name, value]
    flat = [part for pair in options.items() for part in pair]

    result = run(runner, "create-key", "--json", *flat, *extra)

    assert result.exit_code != 0
    assert reason in result.output
    assert snapshot() == (0, 0)


# --- revoke-key -----------------------------------------------------------------------------


def test_revoke_key(runner: CliRunner, user: User) -> None:
    key, _ = make_key(user, "secret", label="Leaked")

    result = run(runner, "revoke-key", str(key.id))

    assert result.exit_code == 0, result.output
    assert f"Revoked key {key.id}" in result.output and key.masked in result.output
    assert db.session.get(ApiKey, key.id).state == keys.STATE_REVOKED
    [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "revoked"))
    assert event.actor == "operator (CLI)"


@pytest.mark.parametrize(("target", "reason"), [("again", "already revoked"), ("999", "No key")])
def test_revoke_key_refuses_what_it_cannot_revoke(
    runner: CliRunner, user: User, target: str, reason: str
) -> None:
    key, _ = make_key(user, "secret")
    keys.revoke_key(key, keys.Actor(name="someone"))
    before = snapshot()

    result = run(runner, "revoke-key", str(key.id) if target == "again" else target)

    assert result.exit_code != 0
    assert reason in result.output
    assert snapshot() == before


# --- set-plan -------------------------------------------------------------------------------


def test_set_plan(runner: CliRunner, user: User) -> None:
    off = run(runner, "set-plan", "--merchant-email", user.email, "inactive")
    assert off.exit_code == 0, off.output
    assert "inactive" in off.output
    assert db.session.get(Merchant, user.merchant_id).plan_active is False

    on = run(runner, "set-plan", "--merchant-email", user.email, "active")
    assert on.exit_code == 0, on.output
    assert db.session.get(Merchant, user.merchant_id).plan_active is True


@pytest.mark.parametrize(
    ("email", "plan", "reason"),
    [("nobody@shop.test", "inactive", "No merchant user"), ("owner@shop.test", "paused", "paused")],
)
def test_set_plan_refuses_bad_input(
    runner: CliRunner, user: User, email: str, plan: str, reason: str
) -> None:
    result = run(runner, "set-plan", "--merchant-email", email, plan)

    assert result.exit_code != 0
    assert reason in result.output
    assert db.session.get(Merchant, user.merchant_id).plan_active is True


# --- seed-demo ------------------------------------------------------------------------------


def test_seed_demo_creates_the_demo_store_once_and_prints_its_login(
    app: Flask, runner: CliRunner
) -> None:
    first = run(runner, "seed-demo")
    second = run(runner, "seed-demo")

    for result in (first, second):
        assert result.exit_code == 0, result.output
        assert DEMO_EMAIL in result.output and DEMO_PASSWORD in result.output
    assert "Already there" in second.output
    user = accounts.authenticate(DEMO_EMAIL, DEMO_PASSWORD)
    assert user is not None and user.merchant.name == "Demo Store"
    assert count(Merchant) == 1
    assert sorted(market.code for market in accounts.list_markets(user.merchant_id)) == [
        "EU",
        "US",
    ]
    assert count(Market) == 2
    products = db.session.scalars(select(Product)).all()
    assert len(products) >= 3 and all(p.merchant_id == user.merchant_id for p in products)
    assert any(p.published for p in products)
    demo_keys = db.session.scalars(select(ApiKey)).all()
    assert sorted(key.key_type for key in demo_keys) == ["publishable", "secret"]
    assert all(key.state == keys.STATE_ACTIVE for key in demo_keys)


def test_the_demo_login_works_in_the_portal(app: Flask, runner: CliRunner) -> None:
    run(runner, "seed-demo")
    client = app.test_client()
    sign_in(client, DEMO_EMAIL, DEMO_PASSWORD)

    page = client.get("/settings/api-keys").get_data(as_text=True)
    assert "Storefront" in page and "Stock sync" in page
