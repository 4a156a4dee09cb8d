"""Merchant accounts: registering, signing in, markets, plans."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select

from portal.accounts.models import PLAN_ACTIVE, PLAN_INACTIVE, Market, Merchant, User
from portal.accounts.passwords import burn_verification_time, hash_password, verify_password
from portal.database import utcnow
from portal.extensions import db
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


def register(account: NewAccount) -> User:
    """Create a merchant and its first user."""
    email = normalize_email(account.email)
    store_name = account.store_name.strip()
    if NUL in email or not EMAIL_PATTERN.match(email):
        raise AccountError("email", "Enter a valid email address.")
    if len(account.password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            "password", f"Use at least {MIN_PASSWORD_LENGTH} characters for the password."
        )
    if len(account.password) > MAX_PASSWORD_LENGTH:
        raise AccountError(
            "password", f"Use at most {MAX_PASSWORD_LENGTH:,} characters for the password."
        )
    if NUL in store_name:
        raise AccountError(
            "store_name", "Remove the NUL character (U+0000): a store name cannot hold it."
        )
    if not store_name or len(store_name) > STORE_NAME_MAX:
        raise AccountError(
            "store_name", f"Enter a store name of at most {STORE_NAME_MAX} characters."
        )
    if find_user(email) is not None:
        raise AccountError("email", "An account with this email already exists.")
    merchant = Merchant(name=store_name)
    user = User(merchant=merchant, email=email, password_hash=hash_password(account.password))
    db.session.add_all([merchant, user])
    db.session.commit()
    send_mail(
        user.email,
        "Welcome to the merchant key portal",
        "welcome",
        store_name=merchant.name,
        email=user.email,
    )
    return user


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
    name = name.strip()
    if not MARKET_CODE_PATTERN.match(code):
        raise AccountError(
            "code", "Use 1 to 16 letters, digits or hyphens for the code (e.g. US, EU)."
        )
    if NUL in name:
        raise AccountError("name", "Remove the NUL character (U+0000): a name cannot hold it.")
    if not name or len(name) > 80:
        raise AccountError("name", "Enter a name of at most 80 characters.")
    if find_market_by_code(merchant_id, code) is not None:
        raise AccountError("code", f"There is already a market {code}.")
    market = Market(merchant_id=merchant_id, code=code, name=name)
    db.session.add(market)
    db.session.commit()
    return market


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
