"""The shopper service on a real database: accounts, token families, codes and resets."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from portal.accounts.models import User
from portal.customers import service as customers
from portal.customers import tokens
from portal.customers.models import (
    CustomerAccount,
    CustomerCode,
    CustomerPasswordReset,
    CustomerSession,
    CustomerToken,
)
from portal.extensions import db
from portal.settings import service as settings
from portal.store import service as store
from portal.store.models import Customer
from tests.api.conftest import recorded_statements
from tests.customers.conftest import (
    SHOPPER_PASSWORD,
    Clock,
    body_of,
    code_in,
    register,
    reset_link_in,
)
from tests.factories import add_product


def test_registering_signs_the_shopper_in_and_stores_only_hashes(app: Flask, user: User) -> None:
    signed_in = register(user.merchant_id, "Ada@Example.com ".strip().lower())

    assert signed_in.customer.email == "ada@example.com"
    assert signed_in.account.name == "Ada Lovelace"
    assert tokens.well_formed(tokens.ACCESS, signed_in.access_token)
    assert tokens.well_formed(tokens.REFRESH, signed_in.refresh_token)
    assert (signed_in.access_expires_in, signed_in.refresh_expires_in) == (900, 30 * 24 * 3600)
    stored = db.session.scalars(select(CustomerToken.token_hash)).all()
    assert len(stored) == 2
    assert signed_in.access_token not in stored and signed_in.refresh_token not in stored
    assert tokens.digest(signed_in.access_token, app.config["API_KEY_PEPPER"]) in stored
    account = db.session.get(CustomerAccount, signed_in.customer.id)
    assert account.password_hash.startswith("$argon2")
    session = db.session.get(CustomerSession, signed_in.session_id)
    assert (session.ip, session.user_agent, session.method) == (
        "198.51.100.7",
        "Firefox on Linux",
        "registration",
    )


def test_an_email_the_store_knows_cannot_register_again(user: User) -> None:
    register(user.merchant_id, "ada@example.com")
    with pytest.raises(customers.EmailTaken):
        register(user.merchant_id, "ada@example.com")


def test_a_guest_email_cannot_be_registered_by_someone_else(user: User) -> None:
    """A guest's orders are not handed to whoever registers the email; the guest claims it."""
    product = add_product(user)
    tenant = store.Tenant(user.merchant_id)
    cart = store.create_cart(tenant, {"items": [{"product_id": product.id}]})
    store.checkout(tenant, {"cart_id": cart.id, "email": "guest@example.com"})

    with pytest.raises(customers.EmailTaken):
        register(user.merchant_id, "guest@example.com")
    assert db.session.scalar(select(CustomerAccount)) is None


def test_the_same_email_registers_separately_at_another_store(user: User, other_user: User) -> None:
    mine = register(user.merchant_id)
    theirs = register(other_user.merchant_id)
    assert mine.customer.id != theirs.customer.id


def test_signing_in_with_the_password(user: User) -> None:
    registered = register(user.merchant_id)
    signed_in = customers.sign_in_with_password(
        user.merchant_id, "ada@example.com", SHOPPER_PASSWORD
    )
    assert signed_in.customer.id == registered.customer.id
    assert signed_in.session_id != registered.session_id


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("ada@example.com", "not the password"),
        ("nobody@example.com", SHOPPER_PASSWORD),
    ],
    ids=["wrong password", "unknown email"],
)
def test_a_wrong_password_and_an_unknown_email_fail_alike(
    user: User, monkeypatch: pytest.MonkeyPatch, email: str, password: str
) -> None:
    register(user.merchant_id)
    verified: list[str] = []
    real_verify = customers.verify_password

    def spy(candidate: str, password_hash: str) -> bool:
        verified.append(password_hash[:9])
        return real_verify(candidate, password_hash)

    monkeypatch.setattr(customers, "verify_password", spy)
    with pytest.raises(customers.InvalidCredentials) as raised:
        customers.sign_in_with_password(user.merchant_id, email, password)

    assert raised.value.message == "The email or password is not right."
    # One argon2 verification either way (a dummy hash for the unknown email): same work.
    assert verified == ["$argon2id"]


def test_a_shopper_of_another_store_cannot_sign_in_here(user: User, other_user: User) -> None:
    register(other_user.merchant_id)
    with pytest.raises(customers.InvalidCredentials):
        customers.sign_in_with_password(user.merchant_id, "ada@example.com", SHOPPER_PASSWORD)


# -- token families -------------------------------------------------------------------------


def test_a_refresh_spends_the_token_and_issues_a_pair_in_the_same_family(user: User) -> None:
    first = register(user.merchant_id)
    second = customers.refresh(user.merchant_id, first.refresh_token)

    assert second.session_id == first.session_id
    assert {second.access_token, second.refresh_token}.isdisjoint(
        {first.access_token, first.refresh_token}
    )
    assert customers.authenticate(user.merchant_id, second.access_token).customer.id == (
        first.customer.id
    )
    third = customers.refresh(user.merchant_id, second.refresh_token)
    assert third.session_id == first.session_id


def test_a_spent_refresh_token_revokes_the_whole_family(user: User) -> None:
    first = register(user.merchant_id)
    second = customers.refresh(user.merchant_id, first.refresh_token)
    other_sign_in = customers.sign_in_with_password(
        user.merchant_id, "ada@example.com", SHOPPER_PASSWORD
    )

    with pytest.raises(customers.TokenReused):
        customers.refresh(user.merchant_id, first.refresh_token)

    for access in (first.access_token, second.access_token):
        with pytest.raises(customers.InvalidToken):
            customers.authenticate(user.merchant_id, access)
    with pytest.raises(customers.InvalidToken):
        customers.refresh(user.merchant_id, second.refresh_token)
    assert db.session.get(CustomerSession, first.session_id).revoked_reason == (
        "refresh_token_reused"
    )
    # The shopper's other sign-in is another family: untouched.
    assert customers.authenticate(user.merchant_id, other_sign_in.access_token)


def test_another_stores_refresh_token_is_invalid_and_stays_unspent(
    user: User, other_user: User
) -> None:
    theirs = register(other_user.merchant_id)

    with pytest.raises(customers.InvalidToken):
        customers.refresh(user.merchant_id, theirs.refresh_token)
    with pytest.raises(customers.InvalidToken):
        customers.authenticate(user.merchant_id, theirs.access_token)

    assert customers.refresh(other_user.merchant_id, theirs.refresh_token).session_id == (
        theirs.session_id
    )


def test_an_access_token_expires_after_15_minutes(user: User, clock: Clock) -> None:
    signed_in = register(user.merchant_id)
    clock.advance(minutes=14, seconds=59)
    assert customers.authenticate(user.merchant_id, signed_in.access_token)
    clock.advance(seconds=1)
    with pytest.raises(customers.TokenExpired):
        customers.authenticate(user.merchant_id, signed_in.access_token)
    renewed = customers.refresh(user.merchant_id, signed_in.refresh_token)
    assert customers.authenticate(user.merchant_id, renewed.access_token)


def test_a_refresh_token_expires_after_30_days(user: User, clock: Clock) -> None:
    signed_in = register(user.merchant_id)
    clock.advance(days=30)
    with pytest.raises(customers.TokenExpired):
        customers.refresh(user.merchant_id, signed_in.refresh_token)


def test_the_lifetimes_are_settings(app: Flask, user: User, clock: Clock) -> None:
    app.config.update(CUSTOMER_ACCESS_TOKEN_SECONDS=2, CUSTOMER_REFRESH_TOKEN_SECONDS=60)
    signed_in = register(user.merchant_id)
    assert (signed_in.access_expires_in, signed_in.refresh_expires_in) == (2, 60)
    clock.advance(seconds=2)
    with pytest.raises(customers.TokenExpired):
        customers.authenticate(user.merchant_id, signed_in.access_token)


def test_the_stores_settings_set_the_lifetimes(user: User, clock: Clock) -> None:
    settings.update_settings(
        user.merchant_id, {"customer_access_minutes": 5, "customer_refresh_days": 2}
    )
    signed_in = register(user.merchant_id)
    assert (signed_in.access_expires_in, signed_in.refresh_expires_in) == (300, 2 * 86_400)
    clock.advance(minutes=5)
    with pytest.raises(customers.TokenExpired):
        customers.authenticate(user.merchant_id, signed_in.access_token)


def test_signing_out_ends_that_sign_in_only(user: User) -> None:
    here = register(user.merchant_id)
    elsewhere = customers.sign_in_with_password(
        user.merchant_id, "ada@example.com", SHOPPER_PASSWORD
    )
    customers.sign_out(customers.authenticate(user.merchant_id, here.access_token))

    with pytest.raises(customers.InvalidToken):
        customers.authenticate(user.merchant_id, here.access_token)
    with pytest.raises(customers.InvalidToken):
        customers.refresh(user.merchant_id, here.refresh_token)
    assert customers.authenticate(user.merchant_id, elsewhere.access_token)


def test_signing_out_everywhere_ends_every_sign_in(user: User) -> None:
    first = register(user.merchant_id)
    second = customers.sign_in_with_password(user.merchant_id, "ada@example.com", SHOPPER_PASSWORD)

    assert customers.sign_out_everywhere(user.merchant_id, first.customer.id) == 2

    for signed_in in (first, second):
        with pytest.raises(customers.InvalidToken):
            customers.authenticate(user.merchant_id, signed_in.access_token)
    assert customers.open_sessions(first.customer.id) == []


def test_another_merchant_cannot_sign_a_shopper_out(user: User, other_user: User) -> None:
    signed_in = register(user.merchant_id)
    with pytest.raises(customers.CustomerNotFound):
        customers.sign_out_everywhere(other_user.merchant_id, signed_in.customer.id)
    assert customers.authenticate(user.merchant_id, signed_in.access_token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "cat_",
        "crt_" + "A" * 46,
        "cat_" + "A" * 46,
        "sk_live_" + "A" * 38,
        "cat_" + "é" * 46,
        "x" * 10_000,
    ],
)
def test_a_malformed_token_is_refused_without_touching_the_database(
    app: Flask, user: User, token: str
) -> None:
    merchant_id = user.merchant_id
    with recorded_statements(app) as statements:
        with pytest.raises(customers.InvalidToken):
            customers.authenticate(merchant_id, token)
        with pytest.raises(customers.InvalidToken):
            customers.refresh(merchant_id, token)
    assert statements == []


def test_a_well_formed_but_unknown_token_is_invalid(user: User) -> None:
    with pytest.raises(customers.InvalidToken):
        customers.authenticate(user.merchant_id, tokens.generate(tokens.ACCESS))
    with pytest.raises(customers.InvalidToken):
        customers.refresh(user.merchant_id, tokens.generate(tokens.REFRESH))
    assert db.session.scalar(select(CustomerSession)) is None


def _refresh_in_thread(app: Flask, merchant_id: int, token: str, barrier: threading.Barrier) -> Any:
    with app.app_context():
        barrier.wait()
        try:
            return customers.refresh(merchant_id, token).refresh_token
        except customers.CustomerError as error:
            return type(error).__name__
        finally:
            db.session.remove()


def test_of_concurrent_refreshes_with_one_token_exactly_one_wins(app: Flask, user: User) -> None:
    signed_in = register(user.merchant_id)
    merchant_id, token = user.merchant_id, signed_in.refresh_token
    db.session.commit()
    racers = 4
    barrier = threading.Barrier(racers)
    results: list[Any] = [None] * racers

    def run(index: int) -> None:
        results[index] = _refresh_in_thread(app, merchant_id, token, barrier)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    winners = [result for result in results if result and result.startswith("crt_")]
    assert len(winners) == 1, results
    # The others presented a spent token: reuse, as the SPEC defines it.
    assert sorted(r for r in results if r not in winners) == ["TokenReused"] * (racers - 1)
    db.session.expire_all()
    issued = db.session.scalars(
        select(CustomerToken).where(CustomerToken.kind == tokens.REFRESH)
    ).all()
    assert len(issued) == 2  # the original and the winner's: never a fork of the family


# -- one-time codes -------------------------------------------------------------------------


def test_a_mailed_code_signs_the_shopper_in_once(user: User, sent_mail: list[Any]) -> None:
    registered = register(user.merchant_id)
    customers.request_code(user.merchant_id, "ada@example.com")

    (message,) = sent_mail
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Your sign-in code for Shop One"
    code = code_in(message)
    signed_in = customers.sign_in_with_code(user.merchant_id, "ada@example.com", code)
    assert signed_in.customer.id == registered.customer.id
    assert db.session.get(CustomerSession, signed_in.session_id).method == "code"
    with pytest.raises(customers.InvalidCredentials):
        customers.sign_in_with_code(user.merchant_id, "ada@example.com", code)
    stored = db.session.scalars(select(CustomerCode.code_hash)).all()
    assert code not in stored and all(len(value) == 64 for value in stored)


def test_no_code_is_mailed_for_an_unknown_email(user: User, sent_mail: list[Any]) -> None:
    customers.request_code(user.merchant_id, "nobody@example.com")
    assert sent_mail == []
    with pytest.raises(customers.InvalidCredentials):
        customers.sign_in_with_code(user.merchant_id, "nobody@example.com", "123456")


def test_a_code_dies_after_5_wrong_tries(user: User) -> None:
    register(user.merchant_id)
    _, code = customers.issue_code(user.merchant_id, "ada@example.com")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        with pytest.raises(customers.InvalidCredentials):
            customers.sign_in_with_code(user.merchant_id, "ada@example.com", wrong)
    with pytest.raises(customers.InvalidCredentials):
        customers.sign_in_with_code(user.merchant_id, "ada@example.com", code)
    _, new_code = customers.issue_code(user.merchant_id, "ada@example.com")
    assert customers.sign_in_with_code(user.merchant_id, "ada@example.com", new_code)


def test_four_wrong_tries_leave_the_code_working(user: User) -> None:
    register(user.merchant_id)
    _, code = customers.issue_code(user.merchant_id, "ada@example.com")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(4):
        with pytest.raises(customers.InvalidCredentials):
            customers.sign_in_with_code(user.merchant_id, "ada@example.com", wrong)
    assert customers.sign_in_with_code(user.merchant_id, "ada@example.com", code)


def test_a_code_works_for_10_minutes(user: User, clock: Clock) -> None:
    register(user.merchant_id)
    _, code = customers.issue_code(user.merchant_id, "ada@example.com")
    clock.advance(minutes=10)
    with pytest.raises(customers.InvalidCredentials):
        customers.sign_in_with_code(user.merchant_id, "ada@example.com", code)


def test_a_new_code_replaces_the_previous_one(user: User) -> None:
    register(user.merchant_id)
    _, old = customers.issue_code(user.merchant_id, "ada@example.com")
    _, new = customers.issue_code(user.merchant_id, "ada@example.com")
    if old != new:
        with pytest.raises(customers.InvalidCredentials):
            customers.sign_in_with_code(user.merchant_id, "ada@example.com", old)
    assert customers.sign_in_with_code(user.merchant_id, "ada@example.com", new)


def test_a_guest_claims_the_email_with_a_code(user: User) -> None:
    product = add_product(user)
    tenant = store.Tenant(user.merchant_id)
    cart = store.create_cart(tenant, {"items": [{"product_id": product.id}]})
    order = store.checkout(tenant, {"cart_id": cart.id, "email": "guest@example.com"}).order

    _, code = customers.issue_code(user.merchant_id, "guest@example.com")
    signed_in = customers.sign_in_with_code(user.merchant_id, "guest@example.com", code)

    assert [o.id for o in customers.list_orders(signed_in.customer.id).items] == [order.id]
    with pytest.raises(customers.InvalidCredentials):  # no password until they choose one
        customers.sign_in_with_password(user.merchant_id, "guest@example.com", "")


# -- password resets ------------------------------------------------------------------------


def test_a_reset_link_goes_to_the_given_origin(user: User, sent_mail: list[Any]) -> None:
    register(user.merchant_id)
    customers.request_password_reset(user.merchant_id, "ada@example.com", "https://shop.test")

    (message,) = sent_mail
    origin, token = reset_link_in(message)
    assert origin == "https://shop.test"
    assert message["Subject"] == "Choose a new password for Shop One"
    # The mail holds the link and nothing else about the account.
    assert "Ada" not in body_of(message) and SHOPPER_PASSWORD not in body_of(message)
    assert token not in db.session.scalars(select(CustomerPasswordReset.token_hash)).all()


def test_without_an_origin_or_storefront_url_nothing_is_mailed(
    user: User, sent_mail: list[Any]
) -> None:
    register(user.merchant_id)
    customers.request_password_reset(user.merchant_id, "ada@example.com", None)
    assert sent_mail == []


def test_a_reset_sets_the_password_once_and_ends_every_sign_in(user: User) -> None:
    first = register(user.merchant_id)
    second = customers.sign_in_with_password(user.merchant_id, "ada@example.com", SHOPPER_PASSWORD)
    _, token = customers.issue_password_reset(user.merchant_id, "ada@example.com")

    customers.confirm_password_reset(user.merchant_id, token, "a brand new password")

    for signed_in in (first, second):
        with pytest.raises(customers.InvalidToken):
            customers.authenticate(user.merchant_id, signed_in.access_token)
        with pytest.raises(customers.InvalidToken):
            customers.refresh(user.merchant_id, signed_in.refresh_token)
    with pytest.raises(customers.InvalidCredentials):
        customers.sign_in_with_password(user.merchant_id, "ada@example.com", SHOPPER_PASSWORD)
    assert customers.sign_in_with_password(
        user.merchant_id, "ada@example.com", "a brand new password"
    )
    with pytest.raises(customers.InvalidResetToken):
        customers.confirm_password_reset(user.merchant_id, token, "yet another password")


def test_a_reset_token_works_for_an_hour(user: User, clock: Clock) -> None:
    register(user.merchant_id)
    _, token = customers.issue_password_reset(user.merchant_id, "ada@example.com")
    clock.advance(hours=1)
    with pytest.raises(customers.InvalidResetToken):
        customers.confirm_password_reset(user.merchant_id, token, "a brand new password")


def test_a_reset_ends_earlier_reset_links(user: User) -> None:
    register(user.merchant_id)
    _, first = customers.issue_password_reset(user.merchant_id, "ada@example.com")
    _, second = customers.issue_password_reset(user.merchant_id, "ada@example.com")
    customers.confirm_password_reset(user.merchant_id, second, "a brand new password")
    with pytest.raises(customers.InvalidResetToken):
        customers.confirm_password_reset(user.merchant_id, first, "an attacker's password")


def test_another_stores_reset_token_does_nothing_here(user: User, other_user: User) -> None:
    register(other_user.merchant_id)
    _, token = customers.issue_password_reset(other_user.merchant_id, "ada@example.com")
    with pytest.raises(customers.InvalidResetToken):
        customers.confirm_password_reset(user.merchant_id, token, "a brand new password")
    customers.confirm_password_reset(other_user.merchant_id, token, "a brand new password")


# -- the merchant's view --------------------------------------------------------------------


def test_search_finds_customers_by_email_or_name_a_page_at_a_time(user: User) -> None:
    for index in range(30):
        register(user.merchant_id, f"shopper{index:02d}@example.com", name=f"Shopper {index:02d}")
    register(user.merchant_id, "grace@example.com", name="Grace Brewster")

    rows, has_more = customers.search_customers(user.merchant_id, "", page=1, per_page=25)
    assert len(rows) == 25 and has_more
    assert rows[0][0].email == "grace@example.com"  # newest first
    rows, has_more = customers.search_customers(user.merchant_id, "", page=2, per_page=25)
    assert len(rows) == 6 and not has_more
    assert [r[0].email for r in customers.search_customers(user.merchant_id, "BREWSTER")[0]] == [
        "grace@example.com"
    ]
    assert customers.search_customers(user.merchant_id, "%")[0] == []


def test_update_customer_changes_name_and_email(user: User) -> None:
    signed_in = register(user.merchant_id)
    register(user.merchant_id, "taken@example.com")
    detail = customers.update_customer(
        user.merchant_id, signed_in.customer.id, name="Ada King", email="ada.king@example.com"
    )
    assert (detail.account.name, detail.customer.email) == ("Ada King", "ada.king@example.com")
    with pytest.raises(customers.EmailTaken):
        customers.update_customer(
            user.merchant_id, signed_in.customer.id, email="taken@example.com"
        )
    assert db.session.get(Customer, signed_in.customer.id).email == "ada.king@example.com"
