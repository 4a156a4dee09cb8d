"""Merchant accounts: registering, signing in, markets, plans."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import parse
from sqlalchemy import func, select

from portal.accounts.models import (
    PLAN_ACTIVE,
    PLAN_INACTIVE,
    Market,
    Membership,
    Merchant,
    User,
)
from portal.accounts.passwords import burn_verification_time, hash_password, verify_password
from portal.accounts.roles import OWNER, ROLES
from portal.database import utcnow
from portal.extensions import db, limiter
from portal.mail import send_mail

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MARKET_CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,15}$")
MIN_PASSWORD_LENGTH = 10
# A new password: 1,024 characters at most, so its UTF-8 form is always within what argon2 takes
# (passlib refuses more than 4,096 bytes); a longer one at sign-in can never match.
MAX_PASSWORD_LENGTH = 1024
MAX_PASSWORD_BYTES = 4096
STORE_NAME_MAX = 120
NUL = "\x00"  # no text column holds it (PostgreSQL refuses it)
CONFIRMATION_DAYS = 3
CONFIRMATION_SALT = "portal.confirm-email"


class AccountError(ValueError):
    """A rule of accounts was broken; `field` names the form field it belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class NewAccount:
    """What a person types to register."""

    email: str
    password: str
    store_name: str


def normalize_email(email: str) -> str:
    """Emails are compared case-insensitively and without surrounding spaces."""
    return email.strip().lower()


def _checked(account: NewAccount) -> tuple[str, str]:
    """The normalised email and store name of a sign-up, or the error to show beside a field."""
    email = normalize_email(account.email)
    store_name = account.store_name.strip()
    if NUL in email or not EMAIL_PATTERN.match(email):
        raise AccountError("email", "Enter a valid email address.")
    check_new_password(account.password)
    if NUL in store_name:
        raise AccountError(
            "store_name", "Remove the NUL character (U+0000): a store name cannot hold it."
        )
    if not store_name or len(store_name) > STORE_NAME_MAX:
        raise AccountError(
            "store_name", f"Enter a store name of at most {STORE_NAME_MAX} characters."
        )
    return email, store_name


def _create_store(email: str, password: str, store_name: str, *, confirmed: bool) -> User:
    """A merchant and its first user, the store's owner (committed)."""
    merchant = Merchant(name=store_name)
    user = User(
        merchant=merchant,
        email=email,
        password_hash=hash_password(password),
        email_confirmed_at=utcnow() if confirmed else None,
    )
    owner = Membership(merchant=merchant, user=user, role=OWNER)
    db.session.add_all([merchant, user, owner])
    db.session.commit()
    return user


def register(account: NewAccount) -> User:
    """Create a store and its owner, whose email counts as confirmed (operators, the demo)."""
    email, store_name = _checked(account)
    if find_user(email) is not None:
        raise AccountError("email", "An account with this email already exists.")
    user = _create_store(email, account.password, store_name, confirmed=True)
    send_mail(
        user.email,
        "Welcome to the merchant key portal",
        "welcome",
        store_name=user.merchant.name,
        email=user.email,
    )
    return user


def sign_up(account: NewAccount) -> None:
    """The public sign-up: the same answer whether the email has an account; the mail tells.

    A new email gets an unconfirmed store and a link to confirm it. An email that has an
    account gets a mail telling its owner someone tried (with a fresh link if they never
    confirmed), at most `SIGN_UP_MAILS_PER_EMAIL` of them, so nobody can flood their inbox.
    """
    email, store_name = _checked(account)
    user = find_user(email)
    if user is None:
        user = _create_store(email, account.password, store_name, confirmed=False)
        _mail_confirmation(user)
        return
    hash_password(account.password)  # the time a new account takes, so timing tells nothing
    if _may_mail_again(email):
        send_mail(
            user.email,
            "Someone tried to sign up with your email",
            "sign_up_attempt",
            email=user.email,
            store_name=user.merchant.name,
            confirm_token=None if user.email_confirmed else confirmation_token(user),
        )


def _mail_confirmation(user: User) -> None:
    """Mail the link that confirms the user's email address."""
    send_mail(
        user.email,
        "Confirm your email for the merchant key portal",
        "confirm_email",
        email=user.email,
        store_name=user.merchant.name,
        confirm_token=confirmation_token(user),
        valid_days=CONFIRMATION_DAYS,
    )


def _may_mail_again(email: str) -> bool:
    """Count one sign-up mail to an existing account; False once the address had its share."""
    item = parse(current_app.config["SIGN_UP_MAILS_PER_EMAIL"])
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX") or "portal"
    try:
        return limiter.limiter.hit(item, prefix, "sign-up-mail", email)
    except Exception as error:  # the limiter storage is down: mailing is better than a 500
        current_app.logger.warning("Sign-up mail limit not checked (%s)", type(error).__name__)
        return True


def resend_confirmation(user: User) -> bool:
    """Mail a new confirmation link to an unconfirmed user; False when it was sent too often."""
    if user.email_confirmed or not _may_mail_again(user.email):
        return False
    _mail_confirmation(user)
    return True


def _confirmations() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=CONFIRMATION_SALT)


def confirmation_token(user: User) -> str:
    """The signed token of a confirmation link: the user and the email it was sent to."""
    return _confirmations().dumps([user.id, user.email])


def confirm_email(token: str) -> User | None:
    """Confirm the email a sign-up link names; None when the link is bad, expired or stale."""
    try:
        user_id, email = _confirmations().loads(token, max_age=CONFIRMATION_DAYS * 86400)
    except (BadSignature, ValueError, TypeError):
        return None
    user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None or user.email != email:
        return None
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
        db.session.commit()
    return user


def check_new_password(password: str) -> None:
    """Refuse a new password that is too short or too long."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            "password", f"Use at least {MIN_PASSWORD_LENGTH} characters for the password."
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(
            "password", f"Use at most {MAX_PASSWORD_LENGTH:,} characters for the password."
        )


def find_user(email: str) -> User | None:
    """The user with this email, if any."""
    if NUL in email:
        return None  # no stored email holds it
    return db.session.scalar(select(User).where(User.email == normalize_email(email)))


def signed_in_user(user_id: int, epoch: int | None) -> User | None:
    """The user a session names, if its sign-in epoch is still current (not signed out since)."""
    user = db.session.scalar(select(User).where(User.id == user_id))
    if user is None or epoch != user.session_epoch:
        return None
    return user


def authenticate(email: str, password: str) -> User | None:
    """The user whose email and password match, else None (in about the same time either way)."""
    user = find_user(email)
    if user is None or len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        # Too long to be anyone's password: the same answer, in the same time, as a wrong one.
        burn_verification_time()
        return None
    if not verify_password(password, user.password_hash):
        return None
    user.last_login_at = utcnow()
    db.session.commit()
    return user


def end_sessions(user: User) -> None:
    """Invalidate every signed-in session of the user (sign out)."""
    user.session_epoch += 1
    db.session.commit()


def list_markets(merchant_id: int) -> list[Market]:
    """The merchant's markets by code."""
    return list(
        db.session.scalars(
            select(Market).where(Market.merchant_id == merchant_id).order_by(Market.code)
        )
    )


def get_market(merchant_id: int, market_id: int) -> Market | None:
    """One of the merchant's markets, or None (another merchant's market does not exist)."""
    return db.session.scalar(
        select(Market).where(Market.merchant_id == merchant_id, Market.id == market_id)
    )


def find_market_by_code(merchant_id: int, code: str) -> Market | None:
    """The merchant's market with this code, if any."""
    return db.session.scalar(
        select(Market).where(
            Market.merchant_id == merchant_id, func.upper(Market.code) == code.strip().upper()
        )
    )


def add_market(merchant_id: int, code: str, name: str) -> Market:
    """Add a market (code such as US or EU, and a name)."""
    code = code.strip().upper()
    if not MARKET_CODE_PATTERN.match(code):
        raise AccountError(
            "code", "Use 1 to 16 letters, digits or hyphens for the code (e.g. US, EU)."
        )
    name = clean_market_name(name)
    if find_market_by_code(merchant_id, code) is not None:
        raise AccountError("code", f"There is already a market {code}.")
    market = Market(merchant_id=merchant_id, code=code, name=name)
    db.session.add(market)
    db.session.commit()
    return market


def clean_market_name(name: str) -> str:
    """A market's name without surrounding spaces, or the error to show beside the field."""
    name = name.strip()
    if NUL in name:
        raise AccountError("name", "Remove the NUL character (U+0000): a name cannot hold it.")
    if not name or len(name) > 80:
        raise AccountError("name", "Enter a name of at most 80 characters.")
    return name


def set_plan(email: str, plan: str) -> Merchant:
    """Make the merchant of this user's plan active or inactive."""
    if plan not in (PLAN_ACTIVE, PLAN_INACTIVE):
        raise AccountError("plan", "The plan must be active or inactive.")
    user = find_user(email)
    if user is None:
        raise AccountError("email", f"No merchant user with the email {email}.")
    user.merchant.plan = plan
    db.session.commit()
    return user.merchant


def membership_of(merchant_id: int, user_id: int) -> Membership | None:
    """The user's membership in the store, if they are a member."""
    return db.session.scalar(
        select(Membership).where(
            Membership.merchant_id == merchant_id, Membership.user_id == user_id
        )
    )


def add_member(
    merchant_email: str, email: str, role: str, password: str | None = None
) -> Membership:
    """Give a user `role` in the store of the user `merchant_email` (operator scripts).

    A new email needs `password`: the account is created, a member of this store only.
    """
    if role not in ROLES:
        raise AccountError("role", f"The role must be one of: {', '.join(ROLES)}.")
    owner = find_user(merchant_email)
    if owner is None:
        raise AccountError("merchant_email", f"No merchant user with the email {merchant_email}.")
    member = find_user(email)
    if member is None:
        if password is None:
            raise AccountError("email", f"No user with the email {email}: give a --password.")
        member = _new_member_user(owner.merchant_id, email, password)
    membership = membership_of(owner.merchant_id, member.id)
    if membership is not None:
        if membership.role == OWNER and role != OWNER and owner_count(owner.merchant_id) == 1:
            raise AccountError("role", "A store keeps at least one owner.")
        membership.role = role
    else:
        membership = Membership(merchant_id=owner.merchant_id, user_id=member.id, role=role)
        db.session.add(membership)
    db.session.commit()
    return membership


def _new_member_user(merchant_id: int, email: str, password: str) -> User:
    """A new account whose first store is `merchant_id` (not yet committed)."""
    email = normalize_email(email)
    if NUL in email or not EMAIL_PATTERN.match(email):
        raise AccountError("email", "Enter a valid email address.")
    check_new_password(password)
    user = User(
        merchant_id=merchant_id,
        email=email,
        password_hash=hash_password(password),
        email_confirmed_at=utcnow(),  # an operator vouches for it
    )
    db.session.add(user)
    db.session.flush()
    return user


def owner_count(merchant_id: int) -> int:
    """How many owners the store has."""
    return db.session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.merchant_id == merchant_id, Membership.role == OWNER)
    )
