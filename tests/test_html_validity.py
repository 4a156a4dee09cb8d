"""The W3C Nu validator (vnu-jar from npm, run by the machine's Java) finds no error on the
main pages."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from unittest.mock import patch

import pytest
from flask.testing import FlaskClient

from portal.accounts import permissions
from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.extensions import db
from portal.keys.models import ApiKey
from portal.mail import saved_mails
from portal.twofactor import totp
from tests.conftest import make_key
from tests.factories import PASSWORD
from tests.helpers import post

# htmx's own attributes (hx-get, hx-headers:inherited, ...) are not in the HTML standard, and
# vnu reports each as "Attribute “hx-…” not allowed". They are the one thing this test lets
# through; `data-hx-` would validate, but `:inherited` has no valid data-* spelling.
HTMX_ATTRIBUTE = re.compile(
    r"^Attribute “hx-[a-z:-]+” not allowed on element “[a-z]+” at this point\.$"
)
VNU = (
    Path(__file__).resolve().parent.parent
    / "node_modules"
    / "vnu-jar"
    / "build"
    / "dist"
    / "vnu.jar"
)


@pytest.fixture
def pages(app, client: FlaskClient, signed_in: FlaskClient, user: User) -> dict[str, str]:  # noqa: ANN001
    """Every main page as a browser gets it, by name."""
    market = accounts.add_market(user.merchant_id, "US", "United States")
    publishable, token = make_key(
        user,
        "publishable",
        label="Storefront",
        market_id=market.id,
        allowed_origins=["https://shop.test"],
    )
    secret, _ = make_key(user, "secret", label="Sync", allowed_ip_ranges=["10.0.0.0/8"])
    signed_in.get(
        "/api/v1/key", headers={"Authorization": f"Bearer {token}", "Origin": "https://shop.test"}
    )
    app.extensions["usage_recorder"].flush()
    anonymous = app.test_client()
    rendered = {
        "login": anonymous.get("/auth/login"),
        "register": anonymous.get("/auth/register"),
        "not-found": anonymous.get("/no-such-page"),
        "keys": signed_in.get("/settings/api-keys"),
        "new-key": signed_in.get("/settings/api-keys/new"),
        "new-secret-key": signed_in.get("/settings/api-keys/new?key_type=secret"),
        "new-key-errors": post(
            signed_in,
            "/settings/api-keys/new",
            {
                "key_type": "publishable",
                "label": "",
                "allowed_origins-0": "ftp://x",
                "rate_limit": "0",
            },
        ),
        "key-page": signed_in.get(f"/settings/api-keys/{publishable.id}"),
        "secret-key-page": signed_in.get(f"/settings/api-keys/{secret.id}"),
        "edit": signed_in.get(f"/settings/api-keys/{secret.id}/edit"),
        "rotate": signed_in.get(f"/settings/api-keys/{secret.id}/rotate"),
        "revoke": signed_in.get(f"/settings/api-keys/{secret.id}/revoke"),
        "markets": signed_in.get("/settings/markets"),
        "market-keys": signed_in.get(f"/settings/markets/{market.id}/api-keys"),
        "market-rename": signed_in.get(f"/settings/markets/{market.id}/rename"),
        "market-rename-errors": post(
            signed_in, f"/settings/markets/{market.id}/rename", {"name": "x" * 81}
        ),
        "audit": signed_in.get("/settings/audit"),
        "store-settings": signed_in.get("/settings/store"),
        "webhooks": signed_in.get("/settings/webhooks"),
        "new-webhook": signed_in.get("/settings/webhooks/new"),
        "new-webhook-errors": post(
            signed_in,
            "/settings/webhooks/new",
            {"url": "ftp://x", "event_types": []},
            token_from="/settings/webhooks/new",
        ),
        "store-settings-errors": post(
            signed_in,
            "/settings/store",
            {"store_name": "", "checkout_hold_minutes": "4", "customer_access_minutes": "x"},
            token_from="/settings/store",
        ),
        "usage": signed_in.get("/settings/usage"),
        "key-usage": signed_in.get(f"/settings/api-keys/{publishable.id}/usage"),
        "reveal": signed_in.get(
            post(
                signed_in,
                "/settings/api-keys/new",
                {"key_type": "secret", "label": "New", "rate_limit": "60"},
            ).headers["Location"]
        ),
    }
    rendered["reveal-after-rotate"] = signed_in.get(
        post(signed_in, f"/settings/api-keys/{secret.id}/rotate", {"grace": "24h"}).headers[
            "Location"
        ]
    )
    rendered["rotated-key-page"] = signed_in.get(f"/settings/api-keys/{secret.id}")
    # Members (h9): the page with a pending invitation, its link, the password ask.
    post(signed_in, "/settings/members/invite", {"email": "dev@shop.test", "role": "developer"})
    invitation_mail = saved_mails(app.config["MAIL_DIR"])[-1].get_body(("plain",)).get_content()
    rendered["members"] = signed_in.get("/settings/members")
    rendered["accept-invitation"] = anonymous.get(
        re.search(r"/invitations/[A-Za-z0-9_-]+", invitation_mail).group(0)
    )
    with patch.object(permissions, "now", lambda: time.time() + 3600):
        rendered["reauth"] = post(signed_in, f"/settings/api-keys/{secret.id}/revoke")
    rendered.update(_two_factor_pages(app, signed_in, user))
    assert db.session.query(ApiKey).count() == 4
    # Sign-up: the inbox page, and an unconfirmed owner's banner and "confirm first" page.
    rendered["check-inbox"] = anonymous.get("/auth/check-inbox")
    user.email_confirmed_at = None
    db.session.commit()
    rendered["confirm-first"] = signed_in.get("/settings/api-keys/new")
    for name, response in rendered.items():
        assert response.status_code in (200, 401, 403, 404, 422), name
        assert response.mimetype == "text/html", name
    return {name: response.get_data(as_text=True) for name, response in rendered.items()}


def _two_factor_pages(app, signed_in: FlaskClient, user: User) -> dict[str, object]:  # noqa: ANN001
    """Two-factor sign-in (h2fa): set-up, its error, the codes shown once, the page once it is
    on, and the code step of signing in with its error. Last: turning it on ends other sessions."""
    rendered: dict[str, object] = {"two-factor-setup": signed_in.get("/account/two-factor")}
    rendered["two-factor-setup-errors"] = post(
        signed_in, "/account/two-factor", {"code": "12"}, token_from="/account/two-factor"
    )
    with signed_in.session_transaction() as session:
        secret = session["two_factor_setup"]
    rendered["recovery-codes"] = post(
        signed_in,
        "/account/two-factor",
        {"code": totp.code_at(secret, time.time())},
        token_from="/account/two-factor",
    )
    rendered["two-factor-on"] = signed_in.get("/account/two-factor")
    browser = app.test_client()
    post(
        browser,
        "/auth/login",
        {"email": user.email, "password": PASSWORD},
        token_from="/auth/login",
    )
    rendered["two-factor-code"] = browser.get("/auth/two-factor")
    rendered["two-factor-code-errors"] = post(
        browser, "/auth/two-factor", {"code": "12"}, token_from="/auth/two-factor"
    )
    return rendered


@pytest.mark.skipif(
    shutil.which("java") is None and not os.environ.get("PORTAL_REQUIRE_JAVA"),
    reason="java is not installed (vnu needs it); CI sets PORTAL_REQUIRE_JAVA and installs it",
)
def test_the_main_pages_are_valid_html(pages: dict[str, str], tmp_path: Path) -> None:
    assert VNU.exists(), "run `npm ci`: vnu-jar is a dev dependency in package.json"
    for name, body in pages.items():
        (tmp_path / f"{name}.html").write_text(body, encoding="utf-8")

    # One JVM for every page: the validator takes the whole directory.
    result = subprocess.run(
        ["java", "-jar", str(VNU), "--format", "json", "--stdout", "--errors-only", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    messages = json.loads(result.stdout)["messages"]
    errors = [
        f"{Path(message.get('url', '')).name}:{message.get('lastLine')}: {message['message']}"
        for message in messages
        if message.get("type") in ("error", "non-document-error")
        and not HTMX_ATTRIBUTE.match(message["message"])
    ]
    checked = {Path(message.get("url", "")).name for message in messages}
    assert not errors, "\n".join(errors)
    print(f"\nvnu: {len(pages)} pages valid ({', '.join(sorted(pages))})")
    assert not checked - {f"{name}.html" for name in pages}
