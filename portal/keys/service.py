"""The key lifecycle: create, edit, rotate, revoke, and the audit log."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from portal.accounts import service as accounts
from portal.accounts.models import Market
from portal.database import ID_MAX, iso_utc, utcnow
from portal.extensions import db
from portal.keys import networks, origins, scopes, tokens
from portal.keys.events import key_event
from portal.keys.models import (  # noqa: F401 - ApiKey is re-exported for callers
    STATE_ACTIVE,
    STATE_EXPIRED,
    STATE_REVOKED,
    STATES,
    ApiKey,
    AuditEvent,
    KeyReveal,
)

LABEL_MAX = 80
DESCRIPTION_MAX = 2000
RATE_LIMIT_DEFAULT = 60
RATE_LIMIT_MIN = 1
RATE_LIMIT_MAX = 10_000
MAX_ORIGINS = 50
MAX_IP_RANGES = 50
GRACE_PERIODS: dict[str, timedelta] = {
    "now": timedelta(0),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
GRACE_LABELS = {"now": "Now", "1h": "1 hour", "24h": "24 hours", "7d": "7 days"}
EXPIRING_SOON = timedelta(days=7)
NUL = "\x00"  # no text column holds it (PostgreSQL refuses it)
REVEAL_WINDOW = timedelta(minutes=15)
PAD_BYTES = 64  # longer than any key (46 characters)


class KeyNotFound(LookupError):
    """No such key for this merchant."""


class KeyInvalid(ValueError):
    """Settings broke one or more rules; `errors` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in errors.items()))
        self.errors = errors


class KeyNotActive(ValueError):
    """The key is revoked or expired, so it cannot be edited or rotated."""


class DuplicateRequest(LookupError):
    """This form submission (its idempotency token) already made a key; `reveal` is its record."""

    def __init__(self, reveal: KeyReveal) -> None:
        super().__init__(reveal.request_token)
        self.reveal = reveal


@dataclass(frozen=True)
class RevealRequest:
    """A form submission that mints a key: its idempotency token and, when the key is shown on
    a later page (after a 303), the one-time pad that seals it until then."""

    request_token: str
    user_id: int | None
    pad: bytes | None = None


@dataclass(frozen=True)
class Reveal:
    """What the reveal page shows: the key, why it is new, and its token if still to be shown."""

    key: ApiKey
    event: str
    token: str | None


@dataclass(frozen=True)
class Actor:
    """Who does something, for the audit log."""

    name: str
    user_id: int | None = None
    ip: str | None = None


@dataclass
class KeySettings:
    """Everything a merchant chooses about a key, as typed (the service validates it)."""

    label: str
    description: str = ""
    scopes: list[str] | None = None
    market_id: int | None = None
    allowed_origins: list[str] = field(default_factory=list)
    allowed_ip_ranges: list[str] = field(default_factory=list)
    rate_limit: int | None = RATE_LIMIT_DEFAULT
    expires_at: datetime | None = None


@dataclass(frozen=True)
class CleanSettings:
    """Settings that passed every rule."""

    label: str
    description: str
    scopes: list[str]
    market_id: int | None
    allowed_origins: list[str]
    allowed_ip_ranges: list[str]
    rate_limit: int
    expires_at: datetime | None


SETTING_NAMES = tuple(setting.name for setting in fields(KeySettings))


def _settings_values(key: ApiKey) -> dict[str, Any]:
    """A key's settings by name, lists copied (changing them leaves the key as it is)."""
    values = {name: getattr(key, name) for name in SETTING_NAMES}
    return {name: list(v) if isinstance(v, list) else v for name, v in values.items()}


def _pepper() -> bytes:
    """The HMAC key for key hashes."""
    return current_app.config["API_KEY_PEPPER"]


def validate_settings(merchant_id: int, key_type: str, settings: KeySettings) -> CleanSettings:
    """Check and normalise settings for a key of `key_type`; raise KeyInvalid with every problem."""
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    if key_type not in tokens.KEY_TYPES:
        add("key_type", "Choose publishable or secret.")
    label = (settings.label or "").strip()
    if NUL in label:
        add("label", "Remove the NUL character (U+0000): a label cannot hold it.")
    elif not label:
        add("label", "Enter a label, such as the app or script that uses the key.")
    elif len(label) > LABEL_MAX:
        add("label", f"Use at most {LABEL_MAX} characters for the label.")
    description = (settings.description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        add("description", f"Use at most {DESCRIPTION_MAX} characters for the description.")
    if NUL in description:
        add("description", "Remove the NUL character (U+0000): a description cannot hold it.")

    clean_scopes: list[str] = []
    if key_type in tokens.KEY_TYPES:
        chosen = scopes.DEFAULT_SCOPES[key_type] if settings.scopes is None else settings.scopes
        try:
            clean_scopes = list(scopes.validate_scopes(key_type, chosen))
        except scopes.ScopeError as error:
            add("scopes", str(error))

    if settings.market_id is not None and (
        not 1 <= settings.market_id <= ID_MAX
        or db.session.scalar(
            select(Market.id).where(
                Market.id == settings.market_id, Market.merchant_id == merchant_id
            )
        )
        is None
    ):
        add("market_id", "Choose one of your markets, or all markets.")

    clean_origins = _normalise_rows(
        "allowed_origins", settings.allowed_origins, origins.normalize_origin, add
    )
    if clean_origins and key_type == "secret":
        add(
            "allowed_origins",
            "Secret keys are for servers; allowed origins are for publishable keys.",
        )
    if len(clean_origins) > MAX_ORIGINS:
        add("allowed_origins", f"Use at most {MAX_ORIGINS} origins.")

    clean_ranges = _normalise_rows(
        "allowed_ip_ranges", settings.allowed_ip_ranges, networks.normalize_ip_range, add
    )
    if clean_ranges and key_type == "publishable":
        add("allowed_ip_ranges", "IP ranges are for secret keys; browsers call from anywhere.")
    if len(clean_ranges) > MAX_IP_RANGES:
        add("allowed_ip_ranges", f"Use at most {MAX_IP_RANGES} IP ranges.")

    rate_limit = settings.rate_limit
    if rate_limit is None or not RATE_LIMIT_MIN <= rate_limit <= RATE_LIMIT_MAX:
        add(
            "rate_limit",
            f"Enter a whole number of requests per minute "
            f"from {RATE_LIMIT_MIN} to {RATE_LIMIT_MAX:,}.",
        )
    if settings.expires_at is not None and settings.expires_at <= utcnow():
        add("expires_at", "Choose an expiry in the future, or leave it empty for no expiry.")

    if errors:
        raise KeyInvalid(errors)
    return CleanSettings(
        label=label,
        description=description,
        scopes=clean_scopes,
        market_id=settings.market_id,
        allowed_origins=clean_origins,
        allowed_ip_ranges=clean_ranges,
        rate_limit=rate_limit or RATE_LIMIT_DEFAULT,
        expires_at=settings.expires_at,
    )


def _normalise_rows(
    field_name: str,
    values: list[str],
    normalise: Callable[[str], str],
    add: Callable[[str, str], None],
) -> list[str]:
    """Normalise each typed row (skipping blanks), deduplicated; errors keyed `<field>-<row>`."""
    clean: list[str] = []
    for index, value in enumerate(values):
        if not value or not value.strip():
            continue
        try:
            normalised = normalise(value)
        except ValueError as error:  # OriginError and IpRangeError carry the merchant's message
            add(f"{field_name}-{index}", str(error))
            continue
        if normalised not in clean:
            clean.append(normalised)
    return clean


def _audit(key: ApiKey, action: str, actor: Actor, **details: Any) -> None:
    """Append an event to the audit log (committed with the change it records)."""
    db.session.add(
        AuditEvent(
            merchant_id=key.merchant_id,
            api_key=key,
            action=action,
            actor=actor.name,
            actor_user_id=actor.user_id,
            ip=actor.ip,
            details=details,
        )
    )


def _new_key(
    merchant_id: int, key_type: str, clean: CleanSettings, actor: Actor, mode: str = "live"
) -> tuple[ApiKey, str]:
    """Mint a token and the row that stands for it (not yet committed)."""
    token = tokens.generate_token(key_type, mode)
    key = ApiKey(
        merchant_id=merchant_id,
        key_type=key_type,
        mode=mode,
        label=clean.label,
        description=clean.description,
        scopes=clean.scopes,
        market_id=clean.market_id,
        allowed_origins=clean.allowed_origins,
        allowed_ip_ranges=clean.allowed_ip_ranges,
        rate_limit=clean.rate_limit,
        expires_at=clean.expires_at,
        key_hash=tokens.hash_token(token, _pepper()),
        prefix=tokens.token_prefix(token),
        last4=tokens.token_last4(token),
        publishable_token=token if key_type == "publishable" else None,
        created_by_id=actor.user_id,
        created_by_name=actor.name,
        logged_state=STATE_ACTIVE,
    )
    db.session.add(key)
    return key, token


def create_key(
    merchant_id: int,
    key_type: str,
    settings: KeySettings,
    actor: Actor,
    request: RevealRequest | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns it and its token, which is never stored and shown only now.

    With a `request`, a second submission of the same form raises DuplicateRequest instead.
    """
    if request is not None:
        _refuse_duplicate(merchant_id, request.request_token)
    clean = validate_settings(merchant_id, key_type, settings)
    key, token = _new_key(merchant_id, key_type, clean, actor)
    _audit(key, "created", actor, key_type=key_type, label=clean.label, scopes=clean.scopes)
    key_event(key, "api_key.created")
    _commit_with_reveal(key, token, "created", request)
    return key, token


REQUEST_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def new_request_token() -> str:
    """An idempotency token for a create or rotate form."""
    return secrets.token_urlsafe(32)


def is_request_token(value: str | None) -> bool:
    """Whether `value` looks like a token new_request_token made (no NUL, no odd lengths)."""
    return value is not None and REQUEST_TOKEN_PATTERN.fullmatch(value) is not None


def new_pad() -> bytes:
    """A one-time pad to seal a new key until the page after the redirect shows it."""
    return secrets.token_bytes(PAD_BYTES)


def _xor(data: bytes, pad: bytes) -> bytes:
    """Data XOR the pad (a one-time pad: the pad is random and at least as long)."""
    return bytes(left ^ right for left, right in zip(data, pad, strict=False))


def _find_reveal(merchant_id: int, request_token: str) -> KeyReveal | None:
    """The record of a form submission, by its idempotency token."""
    if not is_request_token(request_token):
        return None  # e.g. a NUL byte, which PostgreSQL text cannot even be compared with
    return db.session.scalar(
        select(KeyReveal).where(
            KeyReveal.merchant_id == merchant_id, KeyReveal.request_token == request_token
        )
    )


def _refuse_duplicate(merchant_id: int, request_token: str) -> None:
    """Raise DuplicateRequest when this submission already made a key."""
    existing = _find_reveal(merchant_id, request_token)
    if existing is not None:
        raise DuplicateRequest(existing)


def _commit_with_reveal(key: ApiKey, token: str, event: str, request: RevealRequest | None) -> None:
    """Commit the new key together with its submission's record (so a resend finds it)."""
    if request is None:
        db.session.commit()
        return
    db.session.add(
        KeyReveal(
            merchant_id=key.merchant_id,
            user_id=request.user_id,
            request_token=request.request_token,
            api_key=key,
            event=event,
            sealed=_xor(token.encode(), request.pad).hex() if request.pad else None,
        )
    )
    try:
        db.session.commit()
    except IntegrityError:
        # The same form posted twice at once: the other request made the key; this one made none.
        db.session.rollback()
        existing = _find_reveal(key.merchant_id, request.request_token)
        if existing is None:
            raise
        raise DuplicateRequest(existing) from None


def open_reveal(
    merchant_id: int, user_id: int, request_token: str, pad: bytes | None
) -> Reveal | None:
    """The key a submission made, with its token the first time only (then the seal is wiped).

    None when the submission is not this user's. The token is None once shown, after
    REVEAL_WINDOW, or without the pad (another browser).
    """
    reveal = _find_reveal(merchant_id, request_token)
    if reveal is None or reveal.user_id != user_id:
        return None
    token = None
    if reveal.sealed is not None:
        if pad is not None and utcnow() - reveal.created_at <= REVEAL_WINDOW:
            token = _xor(bytes.fromhex(reveal.sealed), pad).decode("ascii", "replace")
        reveal.sealed = None
        db.session.commit()
    if token is not None and tokens.hash_token(token, _pepper()) != reveal.api_key.key_hash:
        token = None  # a pad from another submission: show nothing rather than garbage
    return Reveal(key=reveal.api_key, event=reveal.event, token=token)


def settings_of(key: ApiKey) -> KeySettings:
    """The current settings of a key, as an edit form starts with them."""
    return KeySettings(**_settings_values(key))


def update_key(key: ApiKey, settings: KeySettings, actor: Actor) -> ApiKey:
    """Change a key's settings without changing the key itself."""
    refusal = edit_refusal(key)
    if refusal is not None:
        raise KeyNotActive(refusal)
    clean = validate_settings(key.merchant_id, key.key_type, settings)
    changes: dict[str, Any] = {}
    for name in SETTING_NAMES:
        before, after = getattr(key, name), getattr(clean, name)
        if name == "expires_at" and _same_minute(before, after):
            continue  # the form shows expiry to the minute; posting it back is not a change
        if before != after:
            changes[name] = {"from": _jsonable(before), "to": _jsonable(after)}
            setattr(key, name, after)
    if changes:
        _audit(key, "updated", actor, changes=changes)
    db.session.commit()
    return key


def edit_refusal(key: ApiKey) -> str | None:
    """Why a key cannot be edited (revoked, expired, or rotated and retiring), or None."""
    if key.state != STATE_ACTIVE:
        return f"This key is {key.state}; it can no longer be edited."
    if key.replaced_by_id is not None:
        return (
            "This key was rotated and stops soon; it can no longer be edited. "
            "Edit its replacement instead."
        )
    return None


def _same_minute(before: datetime | None, after: datetime | None) -> bool:
    """Whether two expiries are equal to the minute (both None counts as equal)."""
    if before is None or after is None:
        return before is after
    return before.replace(second=0, microsecond=0) == after.replace(second=0, microsecond=0)


def _jsonable(value: Any) -> Any:
    """A value as the audit log's JSON stores it."""
    return iso_utc(value, "minutes") if isinstance(value, datetime) else value


def rotate_key(
    key: ApiKey, grace: str, actor: Actor, request: RevealRequest | None = None
) -> tuple[ApiKey, str]:
    """Replace a key with a new one of the same settings; the old one stops now or after `grace`.

    With a `request`, a second submission of the same form raises DuplicateRequest instead.
    """
    if request is not None:
        _refuse_duplicate(key.merchant_id, request.request_token)
    if grace not in GRACE_PERIODS:
        raise KeyInvalid(
            {"grace": ["Choose when the old key stops: now, 1 hour, 24 hours or 7 days."]}
        )
    if key.state != STATE_ACTIVE:
        raise KeyNotActive(f"This key is {key.state}; only an active key can be rotated.")
    if key.replaced_by_id is not None:
        # Rotating again would mint a second replacement and could move the stop time later.
        raise KeyNotActive("This key was already rotated; rotate its replacement instead.")
    now = utcnow()
    clean = CleanSettings(**_settings_values(key))
    new_key, token = _new_key(key.merchant_id, key.key_type, clean, actor, key.mode)
    stops_at = now + GRACE_PERIODS[grace]
    if key.expires_at is not None:
        stops_at = min(stops_at, key.expires_at)  # a rotation never extends a key's life
    key.revoked_at = stops_at
    key.revoked_by_name = actor.name
    key.replaced_by = new_key
    db.session.flush()
    _audit(
        key,
        "rotated",
        actor,
        replaced_by=new_key.id,
        grace=GRACE_LABELS[grace],
        stops_at=_jsonable(stops_at),
    )
    _audit(
        new_key,
        "created",
        actor,
        rotated_from=key.id,
        key_type=key.key_type,
        label=key.label,
        scopes=list(key.scopes),
    )
    if stops_at <= now:
        key.logged_state = STATE_REVOKED
        _audit(key, "revoked", actor, reason="rotated")
    key_event(key, "api_key.rotated", replaced_by=new_key.id, stops_at=_jsonable(stops_at))
    key_event(new_key, "api_key.created", rotated_from=key.id)
    _commit_with_reveal(new_key, token, "rotated", request)
    return new_key, token


def revoke_key(key: ApiKey, actor: Actor) -> ApiKey:
    """Stop a key now; this cannot be undone."""
    if key.state == STATE_REVOKED:
        raise KeyNotActive("This key is already revoked.")
    key.revoked_at = utcnow()
    key.revoked_by_name = actor.name
    key.logged_state = STATE_REVOKED
    _audit(key, "revoked", actor, reason="revoked")
    key_event(key, "api_key.revoked", reason="revoked")
    db.session.commit()
    return key


def get_key(merchant_id: int, key_id: int) -> ApiKey:
    """One of the merchant's keys; KeyNotFound for anything else (another merchant's key too)."""
    key = db.session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.merchant_id == merchant_id)
    )
    if key is None:
        raise KeyNotFound(key_id)
    return key


def list_keys(
    merchant_id: int,
    key_type: str | None = None,
    state: str | None = None,
    market_id: int | None = None,
) -> list[ApiKey]:
    """The merchant's keys, newest first, filtered by type, state and market."""
    return list(db.session.scalars(_key_list_query(merchant_id, key_type, state, market_id)))


def _key_list_query(
    merchant_id: int, key_type: str | None, state: str | None, market_id: int | None
) -> Any:
    """The select behind the key list, newest first."""
    now = utcnow()
    query = (
        select(ApiKey)
        .where(ApiKey.merchant_id == merchant_id)
        .options(selectinload(ApiKey.market))
        .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
    )
    if key_type in tokens.KEY_TYPES:
        query = query.where(ApiKey.key_type == key_type)
    if market_id is not None:
        query = query.where(ApiKey.market_id == market_id)
    revoked = ApiKey.revoked_at.is_not(None) & (ApiKey.revoked_at <= now)
    expired = ApiKey.expires_at.is_not(None) & (ApiKey.expires_at <= now)
    if state == STATE_REVOKED:
        query = query.where(revoked)
    elif state == STATE_EXPIRED:
        query = query.where(~revoked & expired)
    elif state == STATE_ACTIVE:
        query = query.where(~revoked & ~expired)
    return query


def count_keys_by_market(merchant_id: int) -> dict[int | None, int]:
    """How many keys each market has (None: keys for every market)."""
    rows = db.session.execute(
        select(ApiKey.market_id, func.count())
        .where(ApiKey.merchant_id == merchant_id)
        .group_by(ApiKey.market_id)
    )
    return {market_id: count for market_id, count in rows}


def expiring_soon(key: ApiKey, now: datetime | None = None) -> bool:
    """An active key that expires within seven days."""
    now = now or utcnow()
    return (
        key.state_at(now) == STATE_ACTIVE
        and key.expires_at is not None
        and key.expires_at - now <= EXPIRING_SOON
    )


def record_lifecycle_events(merchant_id: int) -> int:
    """Log keys that expired or whose grace period ended since we last looked; returns how many."""
    now = utcnow()
    candidates = db.session.scalars(
        select(ApiKey).where(
            ApiKey.merchant_id == merchant_id,
            ApiKey.logged_state != STATE_REVOKED,
            (ApiKey.revoked_at <= now) | (ApiKey.expires_at <= now),
        )
    )
    logged = 0
    system = Actor(name="system")
    for key in candidates:
        state = key.state_at(now)
        if state == key.logged_state:
            continue
        if state == STATE_REVOKED:
            _audit(key, "revoked", system, reason="grace period ended")
        else:
            _audit(key, "expired", system, expired_at=_jsonable(key.expires_at))
        key.logged_state = state
        logged += 1
    if logged:
        db.session.commit()
    return logged


def record_all_lifecycle_events() -> int:
    """record_lifecycle_events for every merchant with a key to log (the worker, every minute)."""
    now = utcnow()
    merchant_ids = db.session.scalars(
        select(ApiKey.merchant_id)
        .distinct()
        .where(
            ApiKey.logged_state != STATE_REVOKED,
            (ApiKey.revoked_at <= now) | (ApiKey.expires_at <= now),
        )
    )
    return sum(record_lifecycle_events(merchant_id) for merchant_id in list(merchant_ids))


AUDIT_ACTIONS = {
    "created": "Created",
    "updated": "Updated",
    "rotated": "Rotated",
    "revoked": "Revoked",
    "expired": "Expired",
    "secret_key_in_browser": "Used from a browser",
    "leaked": "Found in public code",
    "market_renamed": "Market renamed",
    "two_factor_enabled": "Two-factor sign-in turned on",
    "two_factor_disabled": "Two-factor sign-in turned off",
    "recovery_codes_regenerated": "Recovery codes made anew",
    "recovery_code_used": "Recovery code used to sign in",
    "two_factor_required": "Two-factor sign-in required",
    "two_factor_requirement_lifted": "Two-factor requirement lifted",
}


def audit_events(
    merchant_id: int,
    key_id: int | None = None,
    limit: int | None = 50,
    before_id: int | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditEvent]:
    """The merchant's audit events, newest first; optionally one key's, one action's, or those
    between `since` and `until` (exclusive)."""
    query = (
        select(AuditEvent)
        .where(AuditEvent.merchant_id == merchant_id)
        .options(selectinload(AuditEvent.api_key))
        .order_by(AuditEvent.id.desc())
        .limit(limit)
    )
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if since is not None:
        query = query.where(AuditEvent.created_at >= since)
    if until is not None:
        query = query.where(AuditEvent.created_at < until)
    if key_id is not None:
        query = query.where(AuditEvent.api_key_id == key_id)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    return list(db.session.scalars(query))


def audit_related_keys(merchant_id: int, events: list[AuditEvent]) -> dict[int, ApiKey]:
    """The keys that events point at (a rotation's replacement or origin), by id, in one query."""
    ids = {
        event.details.get(name)
        for event in events
        for name in ("replaced_by", "rotated_from")
        if isinstance(event.details, dict) and isinstance(event.details.get(name), int)
    }
    if not ids:
        return {}
    found = db.session.scalars(
        select(ApiKey).where(ApiKey.merchant_id == merchant_id, ApiKey.id.in_(ids))
    )
    return {key.id: key for key in found}


def states() -> tuple[str, ...]:
    """The key states, in display order."""
    return STATES


def rotated_from(key: ApiKey) -> ApiKey | None:
    """The key this one replaced, if it came from a rotation."""
    return db.session.scalar(
        select(ApiKey).where(ApiKey.replaced_by_id == key.id, ApiKey.merchant_id == key.merchant_id)
    )


BROWSER_EVENT_INTERVAL = timedelta(hours=1)


def record_secret_key_in_browser(
    merchant_id: int, key_id: int, ip: str | None, origin: str, path: str
) -> bool:
    """Audit that a secret key arrived from a browser, at most once an hour per key.

    Returns whether an event was written. The gate calls it on the refused request, so the
    merchant sees the leak on the key's page without the log growing with every request.
    """
    now = utcnow()
    recent = db.session.scalar(
        select(AuditEvent.id)
        .where(
            AuditEvent.api_key_id == key_id,
            AuditEvent.action == "secret_key_in_browser",
            AuditEvent.created_at > now - BROWSER_EVENT_INTERVAL,
        )
        .limit(1)
    )
    if recent is not None:
        return False
    db.session.add(
        AuditEvent(
            merchant_id=merchant_id,
            api_key_id=key_id,
            action="secret_key_in_browser",
            actor="api",
            ip=(ip or "")[:45] or None,
            created_at=now,
            details={"origin": origin[:200], "path": path[:200]},
        )
    )
    try:
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return True


PAGE_SIZE = 50
WARNING_ACTIONS = ("secret_key_in_browser", "leaked")


@dataclass(frozen=True)
class KeyPage:
    """One page of the key list, with what its rows need beyond the keys themselves."""

    keys: list[ApiKey]
    total: int
    page: int
    pages: int
    warnings: dict[int, set[str]]
    replaces: dict[int, ApiKey]


def _like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_keys_page(
    merchant_id: int,
    key_type: str | None = None,
    state: str | None = None,
    market_id: int | None = None,
    search: str = "",
    page: int = 1,
) -> KeyPage:
    """A page of the merchant's keys (newest first), filtered and searched by label."""
    query = _key_list_query(merchant_id, key_type, state, market_id)
    search = search.strip()
    if search:
        query = query.where(
            func.lower(ApiKey.label).like(_like_pattern(search.lower()), escape="\\")
        )
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    found = list(
        db.session.scalars(
            query.options(selectinload(ApiKey.replaced_by))
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        )
    )
    ids = [key.id for key in found]
    warnings: dict[int, set[str]] = {}
    if ids:
        for key_id, action in db.session.execute(
            select(AuditEvent.api_key_id, AuditEvent.action)
            .where(
                AuditEvent.merchant_id == merchant_id,
                AuditEvent.api_key_id.in_(ids),
                AuditEvent.action.in_(WARNING_ACTIONS),
            )
            .distinct()
        ):
            warnings.setdefault(key_id, set()).add(action)
    replaces = (
        {
            old.replaced_by_id: old
            for old in db.session.scalars(
                select(ApiKey).where(
                    ApiKey.merchant_id == merchant_id, ApiKey.replaced_by_id.in_(ids)
                )
            )
        }
        if ids
        else {}
    )
    return KeyPage(found, total, page, pages, warnings, replaces)


def rename_market(market: Market, name: str, actor: Actor) -> Market:
    """Give a market a new name, recorded in the audit log (its code stays: keys and products
    refer to the market by code). Raises AccountError for a name `add_market` would refuse."""
    name = accounts.clean_market_name(name)
    if name == market.name:
        return market
    db.session.add(
        AuditEvent(
            merchant_id=market.merchant_id,
            action="market_renamed",
            actor=actor.name,
            actor_user_id=actor.user_id,
            ip=actor.ip,
            details={"market_id": market.id, "code": market.code, "from": market.name, "to": name},
        )
    )
    market.name = name
    db.session.commit()
    return market
