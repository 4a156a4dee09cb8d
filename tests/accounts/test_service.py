"""The accounts service: registering, signing in, sessions, markets and plans."""

from __future__ import annotations

import pytest

from portal.accounts import service as accounts
from portal.accounts.models import Market, Merchant, User
from portal.extensions import db
from tests.conftest import PASSWORD
from tests.helpers import count


def test_register_creates_a_merchant_and_its_first_user(app) -> None:  # noqa: ANN001
    user = accounts.register(accounts.NewAccount("  Owner@Shop.TEST ", PASSWORD, " Shop One "))

    assert user.email == "owner@shop.test"
    assert user.merchant.name == "Shop One" and user.merchant.plan_active
    assert user.password_hash.startswith("$argon2")
    assert PASSWORD not in user.password_hash
    assert (count(Merchant), count(User)) == (1, 1)


@pytest.mark.parametrize(
    ("email", "password", "store", "field", "message"),
    [
        ("not-an-email", PASSWORD, "Shop", "email", "valid email"),
        ("a@b", PASSWORD, "Shop", "email", "valid email"),
        ("with space@shop.test", PASSWORD, "Shop", "email", "valid email"),
        ("new@shop.test", "123456789", "Shop", "password", "at least 10"),
        ("new@shop.test", "", "Shop", "password", "at least 10"),
        ("new@shop.test", PASSWORD, "   ", "store_name", "store name"),
        ("new@shop.test", PASSWORD, "x" * 121, "store_name", "120"),
        ("owner@shop.test", PASSWORD, "Again", "email", "already exists"),
        ("OWNER@Shop.test", PASSWORD, "Again", "email", "already exists"),
    ],
)
def test_register_rejects_bad_input_and_writes_nothing(
    user: User, email: str, password: str, store: str, field: str, message: str
) -> None:
    with pytest.raises(accounts.AccountError) as raised:
        accounts.register(accounts.NewAccount(email, password, store))

    assert raised.value.field == field
    assert message in raised.value.message
    assert (count(Merchant), count(User)) == (1, 1)


def test_a_ten_character_password_is_enough(app) -> None:  # noqa: ANN001
    user = accounts.register(accounts.NewAccount("ten@shop.test", "0123456789", "Shop"))

    assert accounts.authenticate("ten@shop.test", "0123456789") == user


@pytest.mark.parametrize("email", ["owner@shop.test", "OWNER@shop.test", " owner@shop.test "])
def test_authenticate_with_the_right_password(user: User, email: str) -> None:
    assert user.last_login_at is None

    assert accounts.authenticate(email, PASSWORD) == user
    assert user.last_login_at is not None


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("owner@shop.test", "wrong password"),
        ("owner@shop.test", PASSWORD.upper()),
        ("owner@shop.test", ""),
        ("nobody@shop.test", PASSWORD),
    ],
)
def test_authenticate_refuses_wrong_credentials(user: User, email: str, password: str) -> None:
    assert accounts.authenticate(email, password) is None
    assert user.last_login_at is None


def test_end_sessions_moves_the_session_epoch(user: User) -> None:
    epoch = user.session_epoch

    accounts.end_sessions(user)

    db.session.refresh(user)
    assert user.session_epoch == epoch + 1


# --- markets --------------------------------------------------------------------------------


def test_add_market_normalises_the_code(user: User) -> None:
    market = accounts.add_market(user.merchant_id, " eu-west ", " Europe ")

    assert (market.code, market.name) == ("EU-WEST", "Europe")
    assert accounts.find_market_by_code(user.merchant_id, "eu-West") == market


@pytest.mark.parametrize(
    ("code", "name", "field", "message"),
    [
        ("", "Empty", "code", "letters, digits or hyphens"),
        ("U S", "Space", "code", "letters, digits or hyphens"),
        ("-US", "Leading hyphen", "code", "letters, digits or hyphens"),
        ("A" * 17, "Too long", "code", "1 to 16"),
        ("US!", "Punctuation", "code", "letters, digits or hyphens"),
        ("CA", "", "name", "at most 80"),
        ("CA", "x" * 81, "name", "at most 80"),
        ("us", "Duplicate", "code", "already a market US"),
    ],
)
def test_add_market_rejects_bad_input(
    user: User, code: str, name: str, field: str, message: str
) -> None:
    accounts.add_market(user.merchant_id, "US", "United States")

    with pytest.raises(accounts.AccountError) as raised:
        accounts.add_market(user.merchant_id, code, name)

    assert (raised.value.field, message in raised.value.message) == (field, True)
    assert count(Market) == 1


def test_markets_belong_to_one_merchant(user: User, other_user: User) -> None:
    mine = accounts.add_market(user.merchant_id, "US", "United States")
    theirs = accounts.add_market(other_user.merchant_id, "US", "Also US")

    assert accounts.list_markets(user.merchant_id) == [mine]
    assert accounts.get_market(user.merchant_id, mine.id) == mine
    assert accounts.get_market(user.merchant_id, theirs.id) is None
    assert accounts.find_market_by_code(other_user.merchant_id, "US") == theirs


def test_markets_are_listed_by_code(user: User) -> None:
    for code in ("US", "EU", "CA"):
        accounts.add_market(user.merchant_id, code, code)

    assert [market.code for market in accounts.list_markets(user.merchant_id)] == [
        "CA",
        "EU",
        "US",
    ]


# --- plans ----------------------------------------------------------------------------------


def test_set_plan_turns_a_merchant_off_and_on(user: User) -> None:
    assert accounts.set_plan("OWNER@shop.test", "inactive").plan_active is False
    assert accounts.set_plan(user.email, "active").plan_active is True


@pytest.mark.parametrize(
    ("email", "plan", "field"),
    [("owner@shop.test", "paused", "plan"), ("nobody@shop.test", "inactive", "email")],
)
def test_set_plan_rejects_bad_input(user: User, email: str, plan: str, field: str) -> None:
    with pytest.raises(accounts.AccountError) as raised:
        accounts.set_plan(email, plan)

    assert raised.value.field == field
    db.session.refresh(user.merchant)
    assert user.merchant.plan_active
