"""Operator commands for members: `create-merchant` makes an owner, `add-member` adds one."""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result
from flask.testing import FlaskClient

from portal.accounts import service as accounts
from portal.accounts.models import Membership, User
from tests.conftest import sign_in
from tests.factories import PASSWORD
from tests.helpers import count, row_counts


def run(runner: CliRunner, *args: str) -> Result:
    """Run a `flask` command."""
    return runner.invoke(args=list(args))


def test_create_merchant_makes_an_owner(runner: CliRunner) -> None:
    result = run(
        runner, "create-merchant", "--email", "boss@shop.test", "--password", PASSWORD,
        "--name", "Boss Shop",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "owner" in result.output
    boss = accounts.find_user("boss@shop.test")
    assert [(m.merchant.name, m.role) for m in boss.memberships] == [("Boss Shop", "owner")]


def test_add_member_creates_an_account_with_the_role(
    runner: CliRunner, client: FlaskClient, user: User
) -> None:
    result = run(
        runner, "add-member", "--merchant-email", user.email, "--email", "Dev@Shop.test",
        "--role", "developer", "--password", PASSWORD,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "dev@shop.test is now developer of 'Shop One'" in result.output
    membership = accounts.membership_of(user.merchant_id, accounts.find_user("dev@shop.test").id)
    assert membership.role == "developer"
    sign_in(client, "dev@shop.test")
    assert client.get("/settings/api-keys/new").status_code == 200


def test_add_member_adds_an_existing_account_of_another_store(
    runner: CliRunner, user: User, other_user: User
) -> None:
    result = run(
        runner, "add-member", "--merchant-email", user.email, "--email", other_user.email,
        "--role", "viewer",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    roles = {(m.merchant_id, m.role) for m in accounts.find_user(other_user.email).memberships}
    assert roles == {(other_user.merchant_id, "owner"), (user.merchant_id, "viewer")}


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--email", "new@shop.test", "--role", "viewer"], "give a --password"),
        (["--email", "new@shop.test", "--role", "boss", "--password", PASSWORD], "boss"),
        (["--email", "new@shop.test", "--role", "viewer", "--password", "short"], "at least 10"),
        (["--email", "not-an-email", "--role", "viewer", "--password", PASSWORD], "valid email"),
        (["--email", "owner@shop.test", "--role", "admin"], "at least one owner"),
    ],
)
def test_add_member_refuses_bad_input(
    runner: CliRunner, user: User, args: list[str], reason: str
) -> None:
    before = row_counts()

    result = run(runner, "add-member", "--merchant-email", user.email, *args)

    assert result.exit_code != 0
    assert reason in result.output
    assert row_counts() == before


def test_add_member_refuses_an_unknown_store(runner: CliRunner, user: User) -> None:
    result = run(
        runner, "add-member", "--merchant-email", "nobody@shop.test", "--email", user.email,
        "--role", "viewer",
    )  # fmt: skip

    assert result.exit_code != 0
    assert "No merchant user" in result.output
    assert count(Membership) == 1
