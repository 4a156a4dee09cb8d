"""The shopper endpoints (`customer:auth`) and the admin customer endpoints, through the API."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from portal.accounts.models import Merchant, User
from portal.customers import tokens
from portal.customers.models import CustomerSession
from portal.extensions import db
from portal.store.models import Cart, Order
from portal.store.models import Customer as StoreCustomer
from tests.api.conftest import recorded_statements
from tests.conftest import make_key
from tests.customers.conftest import (
    SHOPPER_PASSWORD,
    Clock,
    code_in,
    reset_link_in,
)
from tests.factories import TIMESTAMP, add_product

API = "/api/v1"
SHOP = "https://shop.example.com"


class Storefront:
    """A storefront calling the API with one key, and a shopper's access token once signed in."""

    def __init__(self, client: FlaskClient, key: str, ip: str = "198.51.100.7") -> None:
        self.client = client
        self.key = key
        self.ip = ip
        self.access_token: str | None = None

    def call(self, method: str, path: str, json: Any = None, **headers: str) -> TestResponse:
        """One request with the key (and the shopper token, if any)."""
        sent = {"Authorization": f"Bearer {self.key}", "User-Agent": "Storefront/1.0", **headers}
        if self.access_token and "X-Customer-Token" not in headers:
            sent["X-Customer-Token"] = self.access_token
        return self.client.open(
            API + path,
            method=method,
            json=json,
            headers=sent,
            environ_base={"REMOTE_ADDR": self.ip},
        )

    def register(self, email: str = "ada@example.com", **fields: Any) -> dict[str, Any]:
        """Register and keep the access token."""
        body = {"email": email, "password": SHOPPER_PASSWORD, "name": "Ada Lovelace", **fields}
        response = self.call("POST", "/customers", body)
        assert response.status_code == 201, response.get_json()
        self.access_token = response.get_json()["access_token"]
        return response.get_json()

    def sign_in(self, email: str = "ada@example.com", **fields: Any) -> TestResponse:
        """Sign in with the password (or the given fields)."""
        body = {"email": email, **(fields or {"password": SHOPPER_PASSWORD})}
        response = self.call("POST", "/customers/sessions", body)
        if response.status_code == 201:
            self.access_token = response.get_json()["access_token"]
        return response


def error_of(response: TestResponse) -> tuple[int, str]:
    """Status and error code of an error response."""
    return response.status_code, response.get_json()["error"]["code"]


@pytest.fixture
def shop(client: FlaskClient, user: User) -> Storefront:
    """The store's storefront: a publishable key with the default scopes, from SHOP."""
    return Storefront(client, make_key(user, "publishable", allowed_origins=[SHOP])[1])


@pytest.fixture
def back_office(client: FlaskClient, user: User) -> Storefront:
    """A secret key that reads and writes customers."""
    token = make_key(user, "secret", scopes=["customers:read", "customers:write"])[1]
    return Storefront(client, token)


# -- registering and signing in -------------------------------------------------------------


def test_register_answers_201_with_the_customer_and_tokens(shop: Storefront) -> None:
    body = shop.register("Ada@Example.COM")
    assert body == {
        "object": "customer_session",
        "customer": {
            "id": body["customer"]["id"],
            "object": "customer",
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "created_at": TIMESTAMP,
        },
        "access_token": body["access_token"],
        "refresh_token": body["refresh_token"],
        "token_type": "customer",
        "access_expires_in": 900,
        "refresh_expires_in": 2592000,
    }
    assert tokens.well_formed(tokens.ACCESS, body["access_token"])
    assert tokens.well_formed(tokens.REFRESH, body["refresh_token"])


def test_an_email_already_registered_is_409(shop: Storefront) -> None:
    shop.register()
    response = shop.call(
        "POST", "/customers", {"email": "ada@example.com", "password": SHOPPER_PASSWORD}
    )
    assert error_of(response) == (409, "conflict")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"password": SHOPPER_PASSWORD}, "email is required."),
        ({"email": "ada", "password": SHOPPER_PASSWORD}, "email must be a valid email address."),
        (
            {"email": "ada@example.com", "password": "short"},
            "password must be a string of 10 to 256 characters.",
        ),
        (
            {"email": "ada@example.com", "password": 1234567890},
            "password must be a string of 10 to 256 characters.",
        ),
        (
            {"email": "ada@example.com", "password": "x" * 257},
            "password must be at most 256 characters.",
        ),
        (
            {"email": "ada@example.com", "password": SHOPPER_PASSWORD, "name": "x" * 121},
            "name must be at most 120 characters.",
        ),
        (
            {"email": "ada@example.com", "password": SHOPPER_PASSWORD, "admin": True},
            "admin is not a registration field (expected: email, password, name).",
        ),
        (
            {"email": "ada@example.com", "password": SHOPPER_PASSWORD, "name": "Ada\nLovelace"},
            "name must be a string of at most 120 characters, without line breaks or other "
            "control characters.",
        ),
    ],
)
def test_a_bad_registration_names_the_field_and_creates_nothing(
    shop: Storefront, body: dict[str, Any], message: str
) -> None:
    response = shop.call("POST", "/customers", body)
    assert error_of(response) == (400, "invalid_request")
    assert response.get_json()["error"]["message"] == message
    assert db.session.scalar(select(CustomerSession)) is None
    assert db.session.scalar(select(StoreCustomer)) is None


def test_a_body_that_is_not_json_is_refused(shop: Storefront) -> None:
    response = shop.client.post(
        API + "/customers",
        data="email=ada@example.com",
        headers={"Authorization": f"Bearer {shop.key}", "Content-Type": "text/plain"},
    )
    assert error_of(response) == (415, "unsupported_media_type")


def test_signing_in_with_the_password(shop: Storefront) -> None:
    registered = shop.register()
    response = shop.sign_in()
    assert response.status_code == 201
    assert response.get_json()["customer"] == registered["customer"]
    assert response.get_json()["access_token"] != registered["access_token"]


def test_a_wrong_password_and_an_unknown_email_get_the_very_same_answer(shop: Storefront) -> None:
    shop.register()
    wrong = shop.sign_in(password="not the password")
    unknown = shop.sign_in("nobody@example.com")

    assert error_of(wrong) == (401, "invalid_credentials")
    assert wrong.get_json() == unknown.get_json()
    assert sorted(wrong.headers.keys()) == sorted(unknown.headers.keys())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "body: send email with either password or code (not both)."),
        (
            {"password": SHOPPER_PASSWORD, "code": "123456"},
            "body: send email with either password or code (not both).",
        ),
        ({"code": "12345"}, "code must be the 6-digit code of the sign-in mail."),
        ({"code": 123456}, "code must be the 6-digit code of the sign-in mail."),
        ({"password": None}, "password is required and must be the shopper's password"),
    ],
    ids=["neither", "both", "short code", "numeric code", "null password"],
)
def test_a_sign_in_needs_a_password_or_a_six_digit_code(
    shop: Storefront, body: dict[str, Any], message: str
) -> None:
    shop.register()
    response = shop.call("POST", "/customers/sessions", {"email": "ada@example.com", **body})
    assert error_of(response) == (400, "invalid_request")
    assert response.get_json()["error"]["message"].startswith(message)
    assert db.session.scalar(select(func.count()).select_from(CustomerSession)) == 1


# -- one-time codes -------------------------------------------------------------------------


def test_a_code_is_mailed_and_signs_the_shopper_in(shop: Storefront, sent_mail: list[Any]) -> None:
    shop.register()
    response = shop.call("POST", "/customers/codes", {"email": "ada@example.com"})
    assert response.status_code == 202
    (message,) = sent_mail

    signed_in = shop.sign_in(code=code_in(message))
    assert signed_in.status_code == 201
    again = shop.sign_in(code=code_in(message))
    assert error_of(again) == (401, "invalid_credentials")


def test_codes_answer_202_the_same_whatever_the_email(
    shop: Storefront, sent_mail: list[Any]
) -> None:
    shop.register()
    known = shop.call("POST", "/customers/codes", {"email": "ada@example.com"})
    unknown = shop.call("POST", "/customers/codes", {"email": "nobody@example.com"})

    assert (known.status_code, unknown.status_code) == (202, 202)
    assert known.get_json() == unknown.get_json()
    assert [message["To"] for message in sent_mail] == ["ada@example.com"]


def test_a_wrong_code_is_invalid_credentials(shop: Storefront, sent_mail: list[Any]) -> None:
    shop.register()
    shop.call("POST", "/customers/codes", {"email": "ada@example.com"})
    code = code_in(sent_mail[0])
    response = shop.sign_in(code=f"{(int(code) + 1) % 1_000_000:06d}")
    assert error_of(response) == (401, "invalid_credentials")


# -- tokens ---------------------------------------------------------------------------------


def test_refresh_issues_a_new_pair_and_reuse_revokes_the_sign_in(shop: Storefront) -> None:
    first = shop.register()
    response = shop.call(
        "POST", "/customers/sessions/refresh", {"refresh_token": first["refresh_token"]}
    )
    assert response.status_code == 201
    second = response.get_json()
    assert second["customer"] == first["customer"]
    shop.access_token = second["access_token"]
    assert shop.call("GET", "/customers/me").status_code == 200

    reused = shop.call(
        "POST", "/customers/sessions/refresh", {"refresh_token": first["refresh_token"]}
    )
    assert error_of(reused) == (401, "refresh_token_reused")
    assert error_of(shop.call("GET", "/customers/me")) == (401, "invalid_customer_token")
    after = shop.call(
        "POST", "/customers/sessions/refresh", {"refresh_token": second["refresh_token"]}
    )
    assert error_of(after) == (401, "invalid_customer_token")


def test_the_shopper_reads_and_renames_itself(shop: Storefront) -> None:
    registered = shop.register()
    assert shop.call("GET", "/customers/me").get_json() == registered["customer"]

    response = shop.call("PATCH", "/customers/me", {"name": "  Ada King  "})
    assert response.status_code == 200
    assert response.get_json()["name"] == "Ada King"
    assert shop.call("GET", "/customers/me").get_json()["name"] == "Ada King"
    refused = shop.call("PATCH", "/customers/me", {"email": "other@example.com"})
    assert error_of(refused) == (400, "invalid_request")


def test_without_a_customer_token_me_is_401(shop: Storefront) -> None:
    response = shop.call("GET", "/customers/me")
    assert error_of(response) == (401, "invalid_customer_token")
    assert "X-Customer-Token" in response.get_json()["error"]["message"]


def test_a_malformed_customer_token_is_refused_without_reading_shopper_tables(
    app: Flask, shop: Storefront
) -> None:
    with recorded_statements(app) as statements:
        response = shop.call("GET", "/customers/me", **{"X-Customer-Token": "cat_nonsense"})
    assert error_of(response) == (401, "invalid_customer_token")
    assert not [statement for statement in statements if "customer" in statement]


def test_an_expired_access_token_says_so(shop: Storefront, clock: Clock) -> None:
    registered = shop.register()
    clock.advance(minutes=15)
    assert error_of(shop.call("GET", "/customers/me")) == (401, "customer_token_expired")
    response = shop.call(
        "POST", "/customers/sessions/refresh", {"refresh_token": registered["refresh_token"]}
    )
    assert response.status_code == 201


def test_a_shopper_token_of_store_a_is_invalid_at_store_b(
    client: FlaskClient, shop: Storefront, other_user: User
) -> None:
    registered = shop.register()
    store_b = Storefront(client, make_key(other_user, "publishable")[1])
    store_b.access_token = registered["access_token"]

    assert error_of(store_b.call("GET", "/customers/me")) == (401, "invalid_customer_token")
    refreshed = store_b.call(
        "POST", "/customers/sessions/refresh", {"refresh_token": registered["refresh_token"]}
    )
    assert error_of(refreshed) == (401, "invalid_customer_token")
    # Store B's refusal spent nothing: store A's storefront keeps the sign-in.
    assert shop.call("GET", "/customers/me").status_code == 200


def test_sign_out_ends_the_sign_in_on_the_next_request(shop: Storefront) -> None:
    registered = shop.register()
    response = shop.call("DELETE", "/customers/sessions/current")
    assert response.status_code == 204
    assert error_of(shop.call("GET", "/customers/me")) == (401, "invalid_customer_token")
    refreshed = shop.call(
        "POST", "/customers/sessions/refresh", {"refresh_token": registered["refresh_token"]}
    )
    assert error_of(refreshed) == (401, "invalid_customer_token")


def test_tokens_never_reach_the_log(
    app: Flask, shop: Storefront, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    registered = shop.register()
    shop.call("POST", "/customers/sessions/refresh", {"refresh_token": registered["refresh_token"]})
    shop.call("POST", "/customers/sessions/refresh", {"refresh_token": registered["refresh_token"]})
    logged = caplog.text
    assert registered["access_token"] not in logged
    assert registered["refresh_token"] not in logged
    assert SHOPPER_PASSWORD not in logged


# -- password resets ------------------------------------------------------------------------


def test_a_reset_link_goes_to_the_allowed_origin_and_ends_every_sign_in(
    shop: Storefront, sent_mail: list[Any]
) -> None:
    registered = shop.register()
    response = shop.call(
        "POST", "/customers/password-resets", {"email": "ada@example.com"}, Origin=SHOP
    )
    assert response.status_code == 202
    origin, token = reset_link_in(sent_mail[0])
    assert origin == SHOP

    confirmed = shop.call(
        "POST",
        "/customers/password-resets/confirm",
        {"token": token, "password": "a brand new password"},
        Origin=SHOP,
    )
    assert confirmed.status_code == 204
    assert error_of(shop.call("GET", "/customers/me", Origin=SHOP)) == (
        401,
        "invalid_customer_token",
    )
    refreshed = shop.call(
        "POST", "/customers/sessions/refresh", {"refresh_token": registered["refresh_token"]}
    )
    assert error_of(refreshed) == (401, "invalid_customer_token")
    assert shop.sign_in(password="a brand new password").status_code == 201
    twice = shop.call(
        "POST",
        "/customers/password-resets/confirm",
        {"token": token, "password": "another new password"},
    )
    assert error_of(twice) == (400, "invalid_request")
    assert "token" in twice.get_json()["error"]["message"]


def test_without_an_allowed_origin_the_link_goes_to_the_storefront_url(
    client: FlaskClient, user: User, sent_mail: list[Any]
) -> None:
    db.session.get(Merchant, user.merchant_id).storefront_url = "https://store.example.net"
    db.session.commit()
    # A key that allows every origin must not send links wherever the request says.
    anywhere = Storefront(client, make_key(user, "publishable")[1])
    anywhere.register()
    anywhere.call(
        "POST",
        "/customers/password-resets",
        {"email": "ada@example.com"},
        Origin="https://evil.example",
    )
    assert reset_link_in(sent_mail[0])[0] == "https://store.example.net"


def test_with_no_place_to_link_to_no_mail_leaves(shop: Storefront, sent_mail: list[Any]) -> None:
    shop.register()
    response = shop.call("POST", "/customers/password-resets", {"email": "ada@example.com"})
    assert response.status_code == 202
    assert sent_mail == []


def test_resets_answer_202_the_same_whatever_the_email(
    shop: Storefront, sent_mail: list[Any]
) -> None:
    shop.register()
    known = shop.call(
        "POST", "/customers/password-resets", {"email": "ada@example.com"}, Origin=SHOP
    )
    unknown = shop.call(
        "POST", "/customers/password-resets", {"email": "nobody@example.com"}, Origin=SHOP
    )
    assert (known.status_code, unknown.status_code) == (202, 202)
    assert known.get_json() == unknown.get_json()
    assert len(sent_mail) == 1


def test_a_made_up_reset_token_is_a_400_naming_the_token(shop: Storefront) -> None:
    response = shop.call(
        "POST",
        "/customers/password-resets/confirm",
        {"token": tokens.generate(tokens.RESET), "password": "a brand new password"},
    )
    assert error_of(response) == (400, "invalid_request")
    assert response.get_json()["error"]["message"].startswith("token:")


# -- orders, carts and checkouts ------------------------------------------------------------


def _buy(shop: Storefront, product_id: int, **headers: str) -> dict[str, Any]:
    cart = shop.call("POST", "/carts", {"items": [{"product_id": product_id}]}, **headers)
    assert cart.status_code == 201, cart.get_json()
    checkout = shop.call(
        "POST", "/checkouts", {"cart_id": cart.get_json()["id"], "email": "x@example.com"}
    )
    assert checkout.status_code == 201, checkout.get_json()
    return checkout.get_json()["order"]


def test_carts_and_checkouts_with_a_customer_token_are_the_shoppers_orders(
    client: FlaskClient, user: User, shop: Storefront
) -> None:
    product = add_product(user)
    guest = Storefront(client, shop.key)
    guest_order = _buy(guest, product.id)
    registered = shop.register()

    cart = shop.call("POST", "/carts", {"items": [{"product_id": product.id}]})
    assert db.session.get(Cart, cart.get_json()["id"]).customer_id == registered["customer"]["id"]
    # Signed in, the email is optional: the order is the shopper's.
    checkout = shop.call("POST", "/checkouts", {"cart_id": cart.get_json()["id"]})
    assert checkout.status_code == 201
    order = checkout.get_json()["order"]
    assert order["customer"] == {"id": registered["customer"]["id"], "email": "ada@example.com"}

    # A guest cart checked out signed in becomes the shopper's too.
    guest_cart = guest.call("POST", "/carts", {"items": [{"product_id": product.id}]}).get_json()
    shop.call("POST", "/checkouts", {"cart_id": guest_cart["id"]})
    db.session.expire_all()
    assert db.session.get(Cart, guest_cart["id"]).customer_id == registered["customer"]["id"]
    second = db.session.scalar(select(Order).order_by(Order.id.desc()))

    listed = shop.call("GET", "/customers/me/orders")
    assert listed.status_code == 200
    assert [o["id"] for o in listed.get_json()["data"]] == [order["id"], second.id]
    assert listed.get_json()["has_more"] is False
    assert shop.call("GET", f"/customers/me/orders/{order['id']}").get_json() == order
    assert error_of(shop.call("GET", f"/customers/me/orders/{guest_order['id']}")) == (
        404,
        "not_found",
    )


def test_a_cart_made_signed_in_and_checked_out_as_a_guest_is_still_the_shoppers(
    client: FlaskClient, user: User, shop: Storefront
) -> None:
    product = add_product(user)
    registered = shop.register()
    cart = shop.call("POST", "/carts", {"items": [{"product_id": product.id}]}).get_json()
    guest = Storefront(client, shop.key)
    checkout = guest.call("POST", "/checkouts", {"cart_id": cart["id"], "email": "x@example.com"})
    assert checkout.get_json()["order"]["customer"]["id"] == registered["customer"]["id"]


def test_another_shoppers_cart_cannot_be_checked_out(
    client: FlaskClient, user: User, shop: Storefront
) -> None:
    product = add_product(user)
    shop.register()
    cart = shop.call("POST", "/carts", {"items": [{"product_id": product.id}]}).get_json()
    other = Storefront(client, shop.key)
    other.register("grace@example.com")
    response = other.call("POST", "/checkouts", {"cart_id": cart["id"]})
    assert error_of(response) == (404, "not_found")
    assert db.session.scalar(select(Order)) is None


def test_orders_page_with_limit_and_starting_after(user: User, shop: Storefront) -> None:
    product = add_product(user, inventory=10)
    shop.register()
    ids = [_buy(shop, product.id)["id"] for _ in range(3)]
    first = shop.call("GET", "/customers/me/orders?limit=2").get_json()
    assert [o["id"] for o in first["data"]] == ids[:2] and first["has_more"] is True
    rest = shop.call("GET", f"/customers/me/orders?limit=2&starting_after={ids[1]}").get_json()
    assert [o["id"] for o in rest["data"]] == ids[2:] and rest["has_more"] is False
    assert error_of(shop.call("GET", "/customers/me/orders?limit=0")) == (400, "invalid_request")


# -- scopes and limits ----------------------------------------------------------------------


def test_a_key_without_customer_auth_is_403(client: FlaskClient, user: User) -> None:
    """Keys made before the scope existed keep their scopes: they cannot call these."""
    older = Storefront(
        client,
        make_key(user, "publishable", scopes=["catalog:read", "cart:write", "checkout:create"])[1],
    )
    response = older.call("POST", "/customers/codes", {"email": "ada@example.com"})
    assert error_of(response) == (403, "insufficient_scope")
    assert '"customer:auth"' in response.get_json()["error"]["message"]


def test_a_preflight_lets_browsers_send_the_customer_token(client: FlaskClient) -> None:
    response = client.options(
        API + "/customers/me",
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, x-customer-token",
        },
    )
    assert response.status_code == 204
    assert "X-Customer-Token" in response.headers["Access-Control-Allow-Headers"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/customers", {"email": "new@example.com", "password": SHOPPER_PASSWORD}),
        ("/customers/sessions", {"email": "ada@example.com", "password": "wrong password"}),
        ("/customers/codes", {"email": "ada@example.com"}),
        ("/customers/password-resets", {"email": "ada@example.com"}),
    ],
)
def test_shopper_endpoints_are_limited_per_client_ip(
    app: Flask, client: FlaskClient, shop: Storefront, path: str, body: dict[str, Any]
) -> None:
    app.config.update(CUSTOMER_LIMIT_PER_IP="3/minute", CUSTOMER_LIMIT_PER_EMAIL="100/minute")
    statuses = [shop.call("POST", path, body).status_code for _ in range(4)]
    assert statuses[3] == 429
    limited = shop.call("POST", path, body)
    assert error_of(limited) == (429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1
    elsewhere = Storefront(client, shop.key, ip="203.0.113.9")
    assert elsewhere.call("POST", path, body).status_code != 429


def test_mail_requests_are_limited_per_email_whether_it_exists_or_not(
    app: Flask, client: FlaskClient, shop: Storefront, sent_mail: list[Any]
) -> None:
    app.config.update(CUSTOMER_LIMIT_PER_EMAIL="2/minute")
    shop.register()
    for email in ("ada@example.com", "nobody@example.com"):
        statuses = [
            Storefront(client, shop.key, ip=f"203.0.113.{n}")
            .call("POST", "/customers/codes", {"email": email})
            .status_code
            for n in range(3)
        ]
        assert statuses == [202, 202, 429], email
    assert len(sent_mail) == 2


def test_failed_sign_ins_from_one_address_never_lock_the_shopper_out_elsewhere(
    app: Flask, client: FlaskClient, shop: Storefront
) -> None:
    app.config.update(CUSTOMER_FAILURES_PER_EMAIL_AND_IP="3/minute")
    shop.register()
    attacker = Storefront(client, shop.key, ip="203.0.113.66")
    statuses = [attacker.sign_in(password="guess number one").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert attacker.sign_in().status_code == 429  # even the right password, from there
    assert shop.sign_in().status_code == 201  # the shopper, from home


# -- the back office ------------------------------------------------------------------------


def test_admin_reads_a_customer_with_open_sessions_and_no_tokens(
    shop: Storefront, back_office: Storefront
) -> None:
    registered = shop.register()
    customer_id = registered["customer"]["id"]
    response = back_office.call("GET", f"/admin/customers/{customer_id}")
    assert response.status_code == 200
    body = response.get_json()
    assert body == {
        **registered["customer"],
        "registered": True,
        "order_count": 0,
        "sessions": [
            {
                "id": body["sessions"][0]["id"],
                "object": "customer_session",
                "method": "registration",
                "user_agent": "Storefront/1.0",
                "ip": "198.51.100.7",
                "created_at": TIMESTAMP,
                "last_used_at": TIMESTAMP,
            }
        ],
    }
    assert registered["access_token"] not in response.get_data(as_text=True)


def test_admin_updates_name_and_email(shop: Storefront, back_office: Storefront) -> None:
    customer_id = shop.register()["customer"]["id"]
    shop.register("grace@example.com")
    response = back_office.call(
        "PATCH", f"/admin/customers/{customer_id}", {"name": "Ada King", "email": "ak@example.com"}
    )
    assert response.status_code == 200
    assert (response.get_json()["name"], response.get_json()["email"]) == (
        "Ada King",
        "ak@example.com",
    )
    taken = back_office.call(
        "PATCH", f"/admin/customers/{customer_id}", {"email": "grace@example.com"}
    )
    assert error_of(taken) == (409, "conflict")
    empty = back_office.call("PATCH", f"/admin/customers/{customer_id}", {})
    assert error_of(empty) == (400, "invalid_request")
    assert empty.get_json()["error"]["message"] == "body: send name and/or email to change."
    unknown = back_office.call(
        "PATCH", f"/admin/customers/{customer_id}", {"name": "X", "phone": "555"}
    )
    assert unknown.get_json()["error"]["message"] == (
        "phone is not a customer field (expected: name, email)."
    )
    bad_email = back_office.call(
        "PATCH", f"/admin/customers/{customer_id}", {"name": "X", "email": "ak@"}
    )
    assert bad_email.get_json()["error"]["message"] == "email must be a valid email address."
    unchanged = back_office.call("GET", f"/admin/customers/{customer_id}").get_json()
    assert (unchanged["name"], unchanged["email"]) == ("Ada King", "ak@example.com")


def test_admin_sign_out_ends_every_sign_in_on_the_next_request(
    shop: Storefront, back_office: Storefront
) -> None:
    customer_id = shop.register()["customer"]["id"]
    response = back_office.call("POST", f"/admin/customers/{customer_id}/sign-out")
    assert response.get_json() == {
        "object": "customer_sign_out",
        "customer_id": customer_id,
        "sessions_ended": 1,
    }
    assert error_of(shop.call("GET", "/customers/me")) == (401, "invalid_customer_token")


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [("GET", "", None), ("PATCH", "", {"name": "X"}), ("POST", "/sign-out", None)],
)
def test_another_merchants_customer_is_404(
    client: FlaskClient,
    shop: Storefront,
    other_user: User,
    method: str,
    suffix: str,
    body: Any,
) -> None:
    registered = shop.register()
    intruder = Storefront(
        client, make_key(other_user, "secret", scopes=["customers:read", "customers:write"])[1]
    )
    response = intruder.call(
        method, f"/admin/customers/{registered['customer']['id']}{suffix}", body
    )
    assert error_of(response) == (404, "not_found")
    assert shop.call("GET", "/customers/me").get_json()["name"] == "Ada Lovelace"


@pytest.mark.parametrize(
    ("method", "suffix"), [("PATCH", ""), ("POST", "/sign-out")], ids=["patch", "sign-out"]
)
def test_changing_a_customer_needs_customers_write(
    client: FlaskClient, user: User, shop: Storefront, method: str, suffix: str
) -> None:
    customer_id = shop.register()["customer"]["id"]
    reader = Storefront(client, make_key(user, "secret", scopes=["customers:read"])[1])
    response = reader.call(method, f"/admin/customers/{customer_id}{suffix}", {"name": "X"})
    assert error_of(response) == (403, "insufficient_scope")
    assert '"customers:write"' in response.get_json()["error"]["message"]
    assert shop.call("GET", "/customers/me").status_code == 200


@pytest.mark.parametrize(
    ("token", "code"),
    [("cat_nonsense", "invalid_customer_token"), (None, "customer_token_expired")],
    ids=["malformed", "expired"],
)
def test_a_bad_customer_token_on_a_cart_is_401_not_a_guest_cart(
    user: User, shop: Storefront, clock: Clock, token: str | None, code: str
) -> None:
    product = add_product(user)
    shop.register()
    if token is None:
        clock.advance(minutes=15)
    else:
        shop.access_token = token
    response = shop.call("POST", "/carts", {"items": [{"product_id": product.id}]})
    assert error_of(response) == (401, code)
    checkout = shop.call("POST", "/checkouts", {"cart_id": "cart_x", "email": "a@example.com"})
    assert error_of(checkout) == (401, code)
    assert db.session.scalar(select(Cart)) is None


def test_the_keys_origin_rules_still_apply_to_shoppers(shop: Storefront) -> None:
    shop.register()
    response = shop.call("GET", "/customers/me", Origin="https://evil.example")
    assert error_of(response) == (403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in response.headers
    allowed = shop.call("GET", "/customers/me", Origin=SHOP)
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == SHOP
