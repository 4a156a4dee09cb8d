"""`POST /api/v1/leaked-keys`: what a secret scanner reports, and how the store responds."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.accounts.models import Merchant, User
from portal.extensions import db
from portal.keys import leaks, tokens
from portal.keys.models import AuditEvent
from portal.settings import service as settings
from tests.factories import Api, error_of, make_key, make_user, secret_token
from tests.helpers import html, key_state, row_counts, text

URL = "/api/v1/leaked-keys"


def report(client: FlaskClient, keys: Any, **kwargs: Any):  # noqa: ANN201
    return client.post(URL, json={"keys": keys}, **kwargs)


def leak_mails(mailbox: Any) -> list[Any]:
    """The leak notices among the mails sent (sign-up sends a welcome mail too)."""
    return [mail for mail in mailbox() if "found in public code" in mail["Subject"]]


def events(key_id: int) -> list[tuple[str, str, dict[str, Any]]]:
    db.session.expire_all()
    rows = db.session.scalars(
        select(AuditEvent).where(AuditEvent.api_key_id == key_id).order_by(AuditEvent.id)
    )
    return [(event.action, event.actor, event.details) for event in rows]


def test_a_leaked_secret_key_stops_working_at_once(
    client: FlaskClient, user: User, mailbox: Any
) -> None:
    key, token = make_key(user, "secret", label="Nightly sync")
    api = Api(client, token)
    assert api.get("/key").status_code == 200

    response = report(client, [token], environ_base={"REMOTE_ADDR": "203.0.113.9"})

    assert response.status_code == 202
    assert response.get_json() == {"received": 1}
    assert error_of(api.get("/key"))[:2] == (401, "api_key_revoked")
    state = key_state(key.id)
    assert state["leaked_at"] is not None and state["revoked_at"] is not None
    assert state["revoked_by_name"] == leaks.REPORTER
    assert events(key.id)[1:] == [
        ("leaked", leaks.REPORTER, {"revoked": True}),
        ("revoked", leaks.REPORTER, {"reason": "leaked"}),
    ]
    db.session.expire_all()
    leak = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "leaked"))
    assert leak.ip == "203.0.113.9"
    (mail,) = leak_mails(mailbox)
    assert mail["To"] == user.email
    assert "found in public code" in mail["Subject"]
    body = mail.get_body(("plain",)).get_content()
    assert "Nightly sync" in body and key.masked in body and "revoked now" in body
    assert token not in mail.as_string()


def test_every_user_of_the_store_is_mailed(client: FlaskClient, user: User, mailbox: Any) -> None:
    from portal.accounts.models import User as UserModel
    from portal.accounts.passwords import hash_password

    db.session.add(
        UserModel(
            merchant_id=user.merchant_id,
            email="admin@shop.test",
            password_hash=hash_password("x" * 12),
        )
    )
    db.session.commit()
    report(client, [make_key(user, "secret")[1]])
    (mail,) = leak_mails(mailbox)
    assert set(mail["To"].split(", ")) == {user.email, "admin@shop.test"}


def test_a_publishable_key_is_noted_never_revoked(
    client: FlaskClient, user: User, mailbox: Any
) -> None:
    key, token = make_key(user, "publishable", label="Storefront")
    assert report(client, [token]).get_json() == {"received": 1}
    state = key_state(key.id)
    assert state["leaked_at"] is not None and state["revoked_at"] is None
    assert Api(client, token).get("/key").status_code == 200
    assert events(key.id)[-1] == ("leaked", leaks.REPORTER, {"revoked": False})
    (mail,) = leak_mails(mailbox)
    assert "public by design" in mail.get_body(("plain",)).get_content()


def test_with_the_setting_off_a_secret_key_is_noted_and_keeps_working(
    client: FlaskClient, user: User, mailbox: Any
) -> None:
    settings.update_settings(user.merchant_id, {"revoke_leaked_keys": False})
    key, token = make_key(user, "secret")
    report(client, [token])
    assert key_state(key.id)["revoked_at"] is None
    assert Api(client, token).get("/key").status_code == 200
    assert events(key.id)[-1] == ("leaked", leaks.REPORTER, {"revoked": False})
    assert "still active" in leak_mails(mailbox)[0].get_body(("plain",)).get_content()


def test_a_key_in_its_rotation_grace_period_is_revoked_now(client: FlaskClient, user: User) -> None:
    from portal.keys import service as keys

    old, old_token = make_key(user, "secret")
    keys.rotate_key(old, "7d", keys.Actor(name=user.email, user_id=user.id))
    assert Api(client, old_token).get("/key").status_code == 200
    report(client, [old_token])
    assert error_of(Api(client, old_token).get("/key"))[1] == "api_key_revoked"


@pytest.mark.parametrize(
    "keys",
    [
        ["sk_live_" + "a" * 38],  # well-formed prefix, bad checksum
        ["not a key at all"],
        [tokens.generate_token("secret")],  # well formed, not one of ours
        ["", "sk_live_", "pk_test_" + "Z" * 38],
        ["x" * 200],
    ],
)
def test_anything_else_answers_the_same_and_changes_nothing(
    client: FlaskClient, user: User, keys: list[str], mailbox: Any
) -> None:
    make_key(user, "secret")
    before = row_counts()
    response = report(client, keys)
    assert response.status_code == 202
    assert response.get_json() == {"received": len(keys)}
    assert row_counts() == before
    assert leak_mails(mailbox) == []


def test_a_mixed_report_acts_on_each_store_separately(
    client: FlaskClient, user: User, other_user: User, mailbox: Any
) -> None:
    mine, my_token = make_key(user, "secret")
    theirs, their_token = make_key(other_user, "secret")
    bystander, _ = make_key(user, "secret", label="Not leaked")
    response = report(client, [my_token, "garbage", their_token, my_token])
    assert response.get_json() == {"received": 4}
    assert key_state(mine.id)["revoked_at"] and key_state(theirs.id)["revoked_at"]
    assert key_state(bystander.id)["revoked_at"] is None
    recipients = sorted(mail["To"] for mail in leak_mails(mailbox))
    assert recipients == sorted([user.email, other_user.email])


def test_the_key_page_and_the_list_show_the_leak(client: FlaskClient, user: User) -> None:
    from tests.conftest import sign_in

    key, token = make_key(user, "publishable", label="Storefront")
    report(client, [token])
    sign_in(client, user.email)
    page = html(client.get(f"/settings/api-keys/{key.id}"))
    assert "found in public code" in text(page.find(id="leaked-banner"))
    row = html(client.get("/settings/api-keys")).find("a", string="Storefront").find_parent("tr")
    assert "Found in public code" in text(row)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "keys is required"),
        ({"keys": []}, "keys"),
        ({"keys": ["k"] * 101}, "keys"),
        ({"keys": "sk_live_x"}, "keys"),
        ({"keys": [1, 2]}, "keys"),
        ({"keys": ["x" * 201]}, "at most 200"),
        ({"keys": ["a"], "source": "github"}, "not a leak report field"),
    ],
)
def test_a_malformed_report_is_a_400_naming_the_field(
    client: FlaskClient, user: User, body: dict[str, Any], words: str
) -> None:
    before = row_counts()
    status, code, message = error_of(client.post(URL, json=body))
    assert (status, code) == (400, "invalid_request")
    assert words in message, message
    assert row_counts() == before


def test_no_api_key_is_needed_and_one_sent_is_ignored(client: FlaskClient, user: User) -> None:
    response = report(client, ["anything"], headers={"Authorization": "Bearer sk_live_nonsense"})
    assert response.status_code == 202


class TestPerIpLimit:
    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {"LEAKED_KEYS_LIMIT_PER_IP": "3/minute"}

    def test_reports_are_limited_per_client_ip(self, client: FlaskClient, user: User) -> None:
        first = {"REMOTE_ADDR": "198.51.100.1"}
        for _ in range(3):
            assert report(client, ["x"], environ_base=first).status_code == 202
        status, code, _message = error_of(report(client, ["x"], environ_base=first))
        assert (status, code) == (429, "rate_limited")
        second = {"REMOTE_ADDR": "198.51.100.2"}
        assert report(client, ["x"], environ_base=second).status_code == 202


def test_the_request_does_the_same_work_for_a_match_and_a_miss(
    app: Flask, client: FlaskClient, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One checksum and one HMAC per submitted string, then one task: nothing the request does
    depends on whether a key is ours (the lookup and the response run in the worker)."""
    calls: dict[str, int] = {"parse": 0, "hash": 0, "task": 0}
    real_parse, real_hash = tokens.parse_token, tokens.hash_token

    def parse(text: str):  # noqa: ANN202
        calls["parse"] += 1
        return real_parse(text)

    def hash_(text: str, pepper: bytes) -> str:
        calls["hash"] += 1
        return real_hash(text, pepper)

    monkeypatch.setattr(tokens, "parse_token", parse)
    monkeypatch.setattr(tokens, "hash_token", hash_)
    monkeypatch.setattr(leaks.respond_to_leaks, "call_local", lambda *a: None, raising=False)
    seen: list[list[str]] = []
    monkeypatch.setattr(leaks, "respond_to_leaks", lambda hashes, ip: seen.append(hashes))
    _key, token = make_key(user, "secret")
    calls.update(parse=0, hash=0)
    for keys in ([token, "miss", tokens.generate_token("secret")], ["a", "b", "c"]):
        before = dict(calls)
        with db.engine.connect():
            report(client, keys)
        assert calls["parse"] - before["parse"] == 3
        assert calls["hash"] - before["hash"] == 3
    assert [len(hashes) for hashes in seen] == [2, 0]
    assert db.session.get(Merchant, user.merchant_id).revoke_leaked_keys is True


def test_reported_keys_are_never_logged(
    client: FlaskClient, user: User, caplog: pytest.LogCaptureFixture
) -> None:
    _key, token = make_key(user, "secret")
    with caplog.at_level("DEBUG"):
        report(client, [token])
    assert token not in caplog.text


def test_another_store_of_the_same_reporter_is_untouched(client: FlaskClient) -> None:
    owner = make_user("solo@shop.test", "Solo")
    token = secret_token(owner)
    report(client, [token[:-1] + ("A" if token[-1] != "A" else "B")])
    assert Api(client, token).get("/key").status_code == 200
