"""`GET` / `PATCH /api/v1/admin/settings`: the store's settings for secret keys."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from portal.accounts import service as accounts
from portal.accounts.models import Merchant, User
from portal.extensions import db
from portal.store import service as store
from tests.factories import Api, add_product, error_of, secret_token
from tests.helpers import row_counts

DEFAULTS = {
    "object": "settings",
    "store_name": "Shop One",
    "support_email": None,
    "storefront_url": None,
    "checkout_hold_minutes": 30,
    "customer_access_minutes": 15,
    "customer_refresh_days": 30,
    "revoke_leaked_keys": True,
}


def test_a_new_store_has_the_spec_defaults(client: FlaskClient, user: User) -> None:
    response = Api(client, secret_token(user)).get("/admin/settings")
    assert response.status_code == 200
    assert response.get_json() == DEFAULTS


def test_patch_changes_only_the_fields_given_and_they_last(client: FlaskClient, user: User) -> None:
    api = Api(client, secret_token(user))
    response = api.patch(
        "/admin/settings",
        {
            "store_name": "  Blue Rim Ceramics  ",
            "support_email": "Help@BlueRim.test",
            "storefront_url": "https://shop.bluerim.test/",
            "checkout_hold_minutes": 45,
            "revoke_leaked_keys": False,
        },
    )
    assert response.status_code == 200, response.get_json()
    expected = {
        **DEFAULTS,
        "store_name": "Blue Rim Ceramics",
        "support_email": "help@bluerim.test",
        "storefront_url": "https://shop.bluerim.test",
        "checkout_hold_minutes": 45,
        "revoke_leaked_keys": False,
    }
    assert response.get_json() == expected
    assert api.get("/admin/settings").get_json() == expected
    assert api.patch("/admin/settings", {"customer_refresh_days": 90}).get_json() == {
        **expected,
        "customer_refresh_days": 90,
    }
    assert api.patch("/admin/settings", {"support_email": None}).get_json()["support_email"] is None


def test_the_hold_time_set_here_is_what_checkouts_hold(client: FlaskClient, user: User) -> None:
    Api(client, secret_token(user)).patch("/admin/settings", {"checkout_hold_minutes": 5})
    tenant = store.Tenant(user.merchant_id)
    mug = add_product(user)
    cart = store.create_cart(tenant, {"items": [{"product_id": mug.id, "quantity": 1}]})
    session = store.checkout(tenant, {"cart_id": cart.id, "email": "a@example.test"}).session
    assert (session.expires_at - session.created_at).total_seconds() == 5 * 60


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"store_name": " "}, "store_name", "non-empty string"),
        ({"store_name": "x" * 121}, "store_name", "at most 120"),
        ({"store_name": None}, "store_name", "non-empty string"),
        ({"support_email": "not-an-email"}, "support_email", "email address"),
        ({"storefront_url": "ftp://shop.test"}, "storefront_url", "http or https URL"),
        ({"storefront_url": "shop.test"}, "storefront_url", "http or https URL"),
        ({"checkout_hold_minutes": 4}, "checkout_hold_minutes", "from 5 to 1440"),
        ({"checkout_hold_minutes": 1441}, "checkout_hold_minutes", "at most 1440"),
        ({"checkout_hold_minutes": None}, "checkout_hold_minutes", "from 5 to 1440"),
        ({"checkout_hold_minutes": "30"}, "checkout_hold_minutes", "from 5 to 1440"),
        ({"customer_access_minutes": 0}, "customer_access_minutes", "from 5 to 1440"),
        ({"customer_refresh_days": 366}, "customer_refresh_days", "at most 365"),
        ({"customer_refresh_days": True}, "customer_refresh_days", "from 1 to 365"),
        ({"revoke_leaked_keys": "yes"}, "revoke_leaked_keys", "true or false"),
        ({"colour": "blue"}, "colour", "not a settings field"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(
    client: FlaskClient, user: User, body: dict[str, Any], field: str, words: str
) -> None:
    api = Api(client, secret_token(user))
    before = row_counts(), api.get("/admin/settings").get_json()
    status, code, message = error_of(
        api.patch("/admin/settings", {"checkout_hold_minutes": 60, **body})
    )
    assert (status, code) == (400, "invalid_request")
    assert message.startswith(field) and words in message, message
    assert (row_counts(), api.get("/admin/settings").get_json()) == before


@pytest.mark.parametrize(
    ("method", "needed"), [("GET", "settings:read"), ("PATCH", "settings:write")]
)
def test_each_endpoint_needs_its_scope(
    client: FlaskClient, user: User, method: str, needed: str
) -> None:
    others = [s for s in ("settings:read", "settings:write", "products:read") if s != needed]
    api = Api(client, secret_token(user, scopes=others))
    response = api.call(method, "/admin/settings", json={"store_name": "Hijacked"})
    status, code, message = error_of(response)
    assert (status, code) == (403, "insufficient_scope")
    assert needed in message
    assert db.session.get(Merchant, user.merchant_id).name == "Shop One"


def test_a_market_scoped_key_reads_but_cannot_change_store_settings(
    client: FlaskClient, user: User
) -> None:
    market = accounts.add_market(user.merchant_id, "US", "United States")
    api = Api(client, secret_token(user, market_id=market.id))
    assert api.get("/admin/settings").status_code == 200
    status, code, message = error_of(api.patch("/admin/settings", {"store_name": "US only"}))
    assert (status, code) == (403, "insufficient_scope")
    assert "all markets" in message
    db.session.expire_all()
    assert db.session.get(Merchant, user.merchant_id).name == "Shop One"


def test_each_store_sees_only_its_own_settings(
    client: FlaskClient, user: User, other_user: User
) -> None:
    Api(client, secret_token(other_user)).patch("/admin/settings", {"store_name": "Other, renamed"})
    assert Api(client, secret_token(user)).get("/admin/settings").get_json() == DEFAULTS
