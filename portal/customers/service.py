"""Shopper accounts and sign-ins. The service owns the rules and the commits.

A sign-in is a token family (`CustomerSession`): it starts with one access and one refresh token;
each refresh spends the refresh token it was given (a conditional UPDATE, so of two concurrent
refreshes with one token exactly one wins) and issues a new pair in the same family. A spent
refresh token that comes back means someone kept a copy: the whole family is revoked. Sign-out,
a password reset and "sign out everywhere" revoke families; every check reads the database, so a
revocation takes effect on the next request in every process.

Functions take the merchant id of the calling key and never show or touch another merchant's
shoppers. They raise `CustomerError` subclasses, never HTTP errors.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from portal.accounts.models import Merchant
from portal.accounts.passwords import hash_password, verify_password
from portal.customers import tokens
from portal.customers.models import (
    CustomerAccount,
    CustomerCode,
    CustomerPasswordReset,
    CustomerSession,
    CustomerToken,
)
from portal.database import utcnow
from portal.extensions import db
from portal.mail import send_mail
from portal.store.models import Customer, Order

ACCESS_SECONDS = 15 * 60
REFRESH_SECONDS = 30 * 24 * 3600
CODE_SECONDS = 10 * 60
CODE_MAX_ATTEMPTS = 5
RESET_SECONDS = 3600

METHOD_REGISTRATION = "registration"
METHOD_PASSWORD = "password"  # noqa: S105 - a sign-in method, not a password
METHOD_CODE = "code"

REVOKED_SIGNED_OUT = "signed_out"
REVOKED_REUSE = "refresh_token_reused"
REVOKED_PASSWORD_RESET = "password_reset"  # noqa: S105 - a reason, not a password
REVOKED_EVERYWHERE = "signed_out_everywhere"


class CustomerError(Exception):
    """A rule about shoppers was broken; `message` says which, in words a storefront can show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidCredentials(CustomerError):
    """Wrong email, password or code (the same error for an email nobody registered)."""


class InvalidToken(CustomerError):
    """A shopper token that is unknown, revoked, or another store's."""


class TokenExpired(CustomerError):
    """A shopper token past its life."""


class TokenReused(CustomerError):
    """A spent refresh token came back: its whole family was revoked."""


class EmailTaken(CustomerError):
    """The store already has a customer with this email."""


class InvalidResetToken(CustomerError):
    """A password-reset token that is unknown, used or expired."""


class CustomerNotFound(CustomerError):
    """No such customer (or order) for this merchant."""


@dataclass(frozen=True)
class Client:
    """Where a sign-in comes from, as shown in the portal's list of open sessions."""

    ip: str | None = None
    user_agent: str = ""


@dataclass(frozen=True)
class SignIn:
    """A token pair just issued, with the shopper it belongs to. The tokens exist only here."""

    customer: Customer
    account: CustomerAccount
    session_id: int
    access_token: str
    refresh_token: str
    access_expires_in: int
    refresh_expires_in: int


@dataclass(frozen=True)
class Shopper:
    """The shopper an access token stands for, in the request that presented it."""

    customer: Customer
    account: CustomerAccount | None
    session_id: int

    @property
    def name(self) -> str:
        """The shopper's name ("" if never given)."""
        return self.account.name if self.account else ""


@dataclass(frozen=True)
class Page:
    """One page of a list, and whether more follow it."""

    items: list[Any]
    has_more: bool


# -- plumbing -------------------------------------------------------------------------------


@contextmanager
def _transaction() -> Iterator[None]:
    """Commit what the block did, or roll all of it back and re-raise."""
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def _pepper() -> bytes:
    return current_app.config["API_KEY_PEPPER"]


def _seconds(name: str, default: int) -> int:
    return int(current_app.config.get(name, default))


def _store_lifetimes(merchant_id: int) -> tuple[int, int]:
    """(access, refresh) token lives in seconds, from the store's settings."""
    row = db.session.execute(
        select(Merchant.customer_access_minutes, Merchant.customer_refresh_days).where(
            Merchant.id == merchant_id
        )
    ).one_or_none()
    if row is None:
        return ACCESS_SECONDS, REFRESH_SECONDS
    return row[0] * 60, row[1] * 86_400


def access_seconds(merchant_id: int | None = None) -> int:
    """Life of an access token: the store's setting (default 15 minutes), unless the operator
    set `CUSTOMER_ACCESS_TOKEN_SECONDS` for every store."""
    if merchant_id is None or "CUSTOMER_ACCESS_TOKEN_SECONDS" in current_app.config:
        return _seconds("CUSTOMER_ACCESS_TOKEN_SECONDS", ACCESS_SECONDS)
    return _store_lifetimes(merchant_id)[0]


def refresh_seconds(merchant_id: int | None = None) -> int:
    """Life of a refresh token: the store's setting (default 30 days), unless the operator set
    `CUSTOMER_REFRESH_TOKEN_SECONDS` for every store."""
    if merchant_id is None or "CUSTOMER_REFRESH_TOKEN_SECONDS" in current_app.config:
        return _seconds("CUSTOMER_REFRESH_TOKEN_SECONDS", REFRESH_SECONDS)
    return _store_lifetimes(merchant_id)[1]


_DUMMY_HASHES: dict[str, str] = {}


def _dummy_hash() -> str:
    """A real argon2 hash of nothing anyone knows, with this app's cost (made once)."""
    cost = repr(current_app.config.get("PASSWORD_HASH_COST"))
    if cost not in _DUMMY_HASHES:
        _DUMMY_HASHES[cost] = hash_password(tokens.generate(tokens.RESET))
    return _DUMMY_HASHES[cost]


def _find_customer(merchant_id: int, email: str) -> Customer | None:
    return db.session.scalar(
        select(Customer).where(Customer.merchant_id == merchant_id, Customer.email == email)
    )


def _account_of(customer: Customer) -> CustomerAccount | None:
    return db.session.get(CustomerAccount, customer.id)


def _issue_pair(session: CustomerSession, now: datetime) -> tuple[str, str]:
    """A new access and refresh token in the family; only their hashes are stored."""
    access, refresh = tokens.generate(tokens.ACCESS), tokens.generate(tokens.REFRESH)
    db.session.add_all(
        [
            CustomerToken(
                session_id=session.id,
                kind=tokens.ACCESS,
                token_hash=tokens.digest(access, _pepper()),
                expires_at=now + timedelta(seconds=access_seconds(session.merchant_id)),
                created_at=now,
            ),
            CustomerToken(
                session_id=session.id,
                kind=tokens.REFRESH,
                token_hash=tokens.digest(refresh, _pepper()),
                expires_at=now + timedelta(seconds=refresh_seconds(session.merchant_id)),
                created_at=now,
            ),
        ]
    )
    return access, refresh


def _start_session(
    customer: Customer, account: CustomerAccount, method: str, client: Client
) -> SignIn:
    """A new family with its first pair (inside the caller's transaction)."""
    now = utcnow()
    session = CustomerSession(
        merchant_id=customer.merchant_id,
        customer_id=customer.id,
        method=method,
        user_agent=(client.user_agent or "")[:255],
        ip=client.ip,
        created_at=now,
        last_used_at=now,
    )
    db.session.add(session)
    db.session.flush()
    access, refresh = _issue_pair(session, now)
    return _sign_in(customer, account, session.id, access, refresh)


def _sign_in(
    customer: Customer, account: CustomerAccount, session_id: int, access: str, refresh: str
) -> SignIn:
    return SignIn(
        customer=customer,
        account=account,
        session_id=session_id,
        access_token=access,
        refresh_token=refresh,
        access_expires_in=access_seconds(customer.merchant_id),
        refresh_expires_in=refresh_seconds(customer.merchant_id),
    )


def _revoke_sessions(reason: str, *conditions: Any) -> int:
    """Revoke every open family matching the conditions; how many were open."""
    result = db.session.execute(
        update(CustomerSession)
        .where(CustomerSession.revoked_at.is_(None), *conditions)
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
    return result.rowcount


# -- registering and signing in -------------------------------------------------------------


def register(
    merchant_id: int, email: str, password: str, name: str, client: Client | None = None
) -> SignIn:
    """A new shopper of the store, signed in. EmailTaken if the store knows the email already
    (a guest who checked out with it claims it with a one-time code or a password reset)."""
    if _find_customer(merchant_id, email) is not None:
        raise _email_taken()
    password_hash = hash_password(password)
    try:
        with _transaction():
            customer = Customer(merchant_id=merchant_id, email=email)
            db.session.add(customer)
            db.session.flush()
            account = CustomerAccount(
                customer_id=customer.id, name=name, password_hash=password_hash
            )
            db.session.add(account)
            signed_in = _start_session(customer, account, METHOD_REGISTRATION, client or Client())
    except IntegrityError:
        raise _email_taken() from None  # a concurrent registration won
    return signed_in


def _email_taken() -> EmailTaken:
    return EmailTaken(
        "An account with this email already exists; sign in, or use a one-time code or a "
        "password reset."
    )


def sign_in_with_password(
    merchant_id: int, email: str, password: str, client: Client | None = None
) -> SignIn:
    """A new sign-in, or InvalidCredentials in about the same time whether the email exists."""
    customer = _find_customer(merchant_id, email)
    account = _account_of(customer) if customer is not None else None
    if account is None or account.password_hash is None:
        verify_password(password, _dummy_hash())
        raise InvalidCredentials("The email or password is not right.")
    if not verify_password(password, account.password_hash):
        raise InvalidCredentials("The email or password is not right.")
    with _transaction():
        signed_in = _start_session(customer, account, METHOD_PASSWORD, client or Client())
    return signed_in


def issue_code(merchant_id: int, email: str) -> tuple[Customer, str] | None:
    """A fresh one-time code for the customer with this email (earlier codes stop working);
    None if the store has no such customer."""
    customer = _find_customer(merchant_id, email)
    if customer is None:
        return None
    code = tokens.generate_code()
    now = utcnow()
    with _transaction():
        db.session.execute(
            update(CustomerCode)
            .where(CustomerCode.customer_id == customer.id, CustomerCode.used_at.is_(None))
            .values(used_at=now)
        )
        db.session.add(
            CustomerCode(
                customer_id=customer.id,
                code_hash=tokens.code_digest(customer.id, code, _pepper()),
                expires_at=now + timedelta(seconds=CODE_SECONDS),
                created_at=now,
            )
        )
    return customer, code


def request_code(merchant_id: int, email: str) -> None:
    """Mail a one-time code if the store has a customer with this email; nothing otherwise."""
    issued = issue_code(merchant_id, email)
    if issued is None:
        return
    customer, code = issued
    store_name = _store_name(merchant_id)
    send_mail(
        customer.email,
        f"Your sign-in code for {store_name}",
        "customer_code",
        store_name=store_name,
        code=code,
        minutes=CODE_SECONDS // 60,
    )


def sign_in_with_code(
    merchant_id: int, email: str, code: str, client: Client | None = None
) -> SignIn:
    """A new sign-in with the latest mailed code: it works once, for 10 minutes, and dies after
    5 wrong tries. InvalidCredentials otherwise, as for a wrong password."""
    wrong = InvalidCredentials("The email or code is not right; ask for a new code if needed.")
    customer = _find_customer(merchant_id, email)
    if customer is None:
        raise wrong
    now = utcnow()
    latest = db.session.scalar(
        select(CustomerCode)
        .where(
            CustomerCode.customer_id == customer.id,
            CustomerCode.used_at.is_(None),
            CustomerCode.expires_at > now,
            CustomerCode.attempts < CODE_MAX_ATTEMPTS,
        )
        .order_by(CustomerCode.id.desc())
        .limit(1)
    )
    if latest is None:
        raise wrong
    expected = tokens.code_digest(customer.id, code, _pepper())
    if not hmac.compare_digest(expected, latest.code_hash):
        with _transaction():
            db.session.execute(
                update(CustomerCode)
                .where(CustomerCode.id == latest.id, CustomerCode.attempts < CODE_MAX_ATTEMPTS)
                .values(attempts=CustomerCode.attempts + 1)
            )
        raise wrong
    with _transaction():
        # Conditional, so a code works once even if two requests present it together.
        claimed = db.session.execute(
            update(CustomerCode)
            .where(
                CustomerCode.id == latest.id,
                CustomerCode.used_at.is_(None),
                CustomerCode.attempts < CODE_MAX_ATTEMPTS,
            )
            .values(used_at=now)
        )
        if claimed.rowcount != 1:
            raise wrong
        account = _account_of(customer)
        if account is None:  # a guest who checked out with this email claims it
            account = CustomerAccount(customer_id=customer.id, name="")
            db.session.add(account)
        signed_in = _start_session(customer, account, METHOD_CODE, client or Client())
    return signed_in


# -- tokens ---------------------------------------------------------------------------------


def refresh(merchant_id: int, refresh_token: str, client: Client | None = None) -> SignIn:
    """Spend a refresh token and issue the next pair of its family.

    InvalidToken for a malformed, unknown, revoked or other store's token (nothing changes);
    TokenExpired past its life; TokenReused, after revoking the family, for a spent one.
    """
    if not tokens.well_formed(tokens.REFRESH, refresh_token):
        raise InvalidToken("The refresh token is not valid.")
    token_hash = tokens.digest(refresh_token, _pepper())
    now = utcnow()
    open_sessions = select(CustomerSession.id).where(
        CustomerSession.merchant_id == merchant_id, CustomerSession.revoked_at.is_(None)
    )
    with _transaction():
        spent = db.session.execute(
            update(CustomerToken)
            .where(
                CustomerToken.token_hash == token_hash,
                CustomerToken.kind == tokens.REFRESH,
                CustomerToken.spent_at.is_(None),
                CustomerToken.expires_at > now,
                CustomerToken.session_id.in_(open_sessions),
            )
            .values(spent_at=now)
        )
        if spent.rowcount == 1:
            row = db.session.execute(
                select(CustomerToken, CustomerSession)
                .join(CustomerSession, CustomerSession.id == CustomerToken.session_id)
                .where(CustomerToken.token_hash == token_hash)
            ).one()
            session = row.CustomerSession
            session.last_used_at = now
            if client is not None and client.ip:
                session.ip = client.ip
            access, new_refresh = _issue_pair(session, now)
            customer = db.session.get(Customer, session.customer_id)
            account = _account_of(customer) or CustomerAccount(customer_id=customer.id, name="")
            return _sign_in(customer, account, session.id, access, new_refresh)
    _refresh_refused(merchant_id, token_hash, now)
    raise AssertionError("unreachable")  # pragma: no cover


def _refresh_refused(merchant_id: int, token_hash: str, now: datetime) -> None:
    """Say why a refresh token was refused; a spent one revokes its family first."""
    row = db.session.execute(
        select(CustomerToken, CustomerSession)
        .join(CustomerSession, CustomerSession.id == CustomerToken.session_id)
        .where(CustomerToken.token_hash == token_hash, CustomerToken.kind == tokens.REFRESH)
    ).one_or_none()
    if row is None or row.CustomerSession.merchant_id != merchant_id:
        raise InvalidToken("The refresh token is not valid.")
    if row.CustomerToken.spent_at is not None:
        with _transaction():
            _revoke_sessions(REVOKED_REUSE, CustomerSession.id == row.CustomerSession.id)
        raise TokenReused(
            "This refresh token was already used, so this sign-in has ended everywhere; "
            "sign in again."
        )
    if row.CustomerSession.revoked_at is not None:
        raise InvalidToken("This sign-in has ended; sign in again.")
    raise TokenExpired("The refresh token has expired; sign in again.")


def authenticate(merchant_id: int, access_token: str) -> Shopper:
    """The shopper of an access token (one read, no write), or InvalidToken / TokenExpired."""
    if not tokens.well_formed(tokens.ACCESS, access_token):
        raise InvalidToken("The customer token is not valid.")
    row = db.session.execute(
        select(CustomerToken.expires_at, CustomerSession, Customer, CustomerAccount)
        .join(CustomerSession, CustomerSession.id == CustomerToken.session_id)
        .join(Customer, Customer.id == CustomerSession.customer_id)
        .outerjoin(CustomerAccount, CustomerAccount.customer_id == Customer.id)
        .where(
            CustomerToken.token_hash == tokens.digest(access_token, _pepper()),
            CustomerToken.kind == tokens.ACCESS,
        )
    ).one_or_none()
    if (
        row is None
        or row.CustomerSession.merchant_id != merchant_id
        or row.CustomerSession.revoked_at is not None
    ):
        raise InvalidToken("The customer token is not valid; sign in again.")
    if row.expires_at <= utcnow():
        raise TokenExpired("The customer token has expired; refresh it or sign in again.")
    return Shopper(row.Customer, row.CustomerAccount, row.CustomerSession.id)


def sign_out(shopper: Shopper) -> None:
    """End the sign-in the shopper's token belongs to (every token of its family)."""
    with _transaction():
        _revoke_sessions(REVOKED_SIGNED_OUT, CustomerSession.id == shopper.session_id)


def sign_out_everywhere(merchant_id: int, customer_id: int) -> int:
    """End every sign-in of a customer of the merchant; how many were open."""
    customer = get_customer(merchant_id, customer_id)
    with _transaction():
        ended = _revoke_sessions(REVOKED_EVERYWHERE, CustomerSession.customer_id == customer.id)
    return ended


# -- password resets ------------------------------------------------------------------------


def issue_password_reset(merchant_id: int, email: str) -> tuple[Customer, str] | None:
    """A reset token for the customer with this email, or None if the store has none."""
    customer = _find_customer(merchant_id, email)
    if customer is None:
        return None
    token = tokens.generate(tokens.RESET)
    now = utcnow()
    with _transaction():
        db.session.add(
            CustomerPasswordReset(
                customer_id=customer.id,
                token_hash=tokens.digest(token, _pepper()),
                expires_at=now + timedelta(seconds=RESET_SECONDS),
                created_at=now,
            )
        )
    return customer, token


def request_password_reset(merchant_id: int, email: str, link_base: str | None) -> None:
    """Mail a link to `<link_base>/reset-password?token=…` if the store knows the email.

    Without a place to send the shopper to (no allowed Origin, no storefront URL) nothing is
    mailed; the operator log says so, without the email.
    """
    if link_base is None:
        if _find_customer(merchant_id, email) is not None:
            current_app.logger.warning(
                "Password reset for a customer of merchant %s not mailed: the request had no "
                "allowed Origin and the store has no storefront URL",
                merchant_id,
            )
        return
    issued = issue_password_reset(merchant_id, email)
    if issued is None:
        return
    customer, token = issued
    store_name = _store_name(merchant_id)
    send_mail(
        customer.email,
        f"Choose a new password for {store_name}",
        "customer_password_reset",
        store_name=store_name,
        link=f"{link_base.rstrip('/')}/reset-password?token={token}",
        minutes=RESET_SECONDS // 60,
    )


def confirm_password_reset(merchant_id: int, token: str, password: str) -> None:
    """Set a new password with a reset token (once, within the hour); every sign-in ends."""
    invalid = InvalidResetToken("token: this reset link is invalid, used or expired.")
    if not tokens.well_formed(tokens.RESET, token):
        raise invalid
    password_hash = hash_password(password)
    now = utcnow()
    token_hash = tokens.digest(token, _pepper())
    merchant_customers = select(Customer.id).where(Customer.merchant_id == merchant_id)
    with _transaction():
        used = db.session.execute(
            update(CustomerPasswordReset)
            .where(
                CustomerPasswordReset.token_hash == token_hash,
                CustomerPasswordReset.used_at.is_(None),
                CustomerPasswordReset.expires_at > now,
                CustomerPasswordReset.customer_id.in_(merchant_customers),
            )
            .values(used_at=now)
        )
        if used.rowcount != 1:
            raise invalid
        customer_id = db.session.scalar(
            select(CustomerPasswordReset.customer_id).where(
                CustomerPasswordReset.token_hash == token_hash
            )
        )
        account = db.session.get(CustomerAccount, customer_id)
        if account is None:
            db.session.add(CustomerAccount(customer_id=customer_id, password_hash=password_hash))
        else:
            account.password_hash = password_hash
            account.updated_at = now
        # Other links and codes mailed before stop working too.
        for model in (CustomerPasswordReset, CustomerCode):
            db.session.execute(
                update(model)
                .where(model.customer_id == customer_id, model.used_at.is_(None))
                .values(used_at=now)
            )
        _revoke_sessions(REVOKED_PASSWORD_RESET, CustomerSession.customer_id == customer_id)


def _store_name(merchant_id: int) -> str:
    return db.session.scalar(select(Merchant.name).where(Merchant.id == merchant_id)) or "the store"


# -- the shopper's own data -----------------------------------------------------------------


def update_name(shopper: Shopper, name: str) -> Shopper:
    """Change the signed-in shopper's name."""
    with _transaction():
        account = _account_of(shopper.customer)
        if account is None:
            account = CustomerAccount(customer_id=shopper.customer.id)
            db.session.add(account)
        account.name = name
        account.updated_at = utcnow()
    return Shopper(shopper.customer, account, shopper.session_id)


def _orders_query(customer_id: int, market_id: int | None) -> Any:
    query = select(Order).where(Order.customer_id == customer_id)
    if market_id is not None:
        query = query.where(Order.market_id == market_id)
    return query.options(
        selectinload(Order.items), selectinload(Order.customer), selectinload(Order.market)
    )


def list_orders(
    customer_id: int,
    market_id: int | None = None,
    limit: int = 20,
    starting_after: int | None = None,
) -> Page:
    """A customer's orders by id (only a market's, for a market-scoped key)."""
    query = _orders_query(customer_id, market_id)
    if starting_after is not None:
        query = query.where(Order.id > starting_after)
    rows = list(db.session.scalars(query.order_by(Order.id).limit(limit + 1)))
    return Page(rows[:limit], len(rows) > limit)


def get_order(customer_id: int, order_id: int, market_id: int | None = None) -> Order:
    """One of the customer's own orders, or CustomerNotFound (anyone else's order included)."""
    order = db.session.scalar(_orders_query(customer_id, market_id).where(Order.id == order_id))
    if order is None:
        raise CustomerNotFound(f"No such order: {order_id}.")
    return order


# -- the merchant's view (admin API and portal) ---------------------------------------------


@dataclass(frozen=True)
class CustomerDetail:
    """A customer with its account (if registered), orders and open sign-ins."""

    customer: Customer
    account: CustomerAccount | None
    order_count: int
    open_sessions: list[CustomerSession]


def get_customer(merchant_id: int, customer_id: int, market_id: int | None = None) -> Customer:
    """One customer of the merchant (for a market: one who ordered there), or CustomerNotFound."""
    query = select(Customer).where(Customer.merchant_id == merchant_id, Customer.id == customer_id)
    if market_id is not None:
        query = query.where(
            Customer.id.in_(select(Order.customer_id).where(Order.market_id == market_id))
        )
    customer = db.session.scalar(query)
    if customer is None:
        raise CustomerNotFound(f"No such customer: {customer_id}.")
    return customer


def open_sessions(customer_id: int) -> list[CustomerSession]:
    """The customer's sign-ins that have not ended and can still refresh, newest first."""
    now = utcnow()
    live_refresh = select(CustomerToken.session_id).where(
        CustomerToken.kind == tokens.REFRESH,
        CustomerToken.spent_at.is_(None),
        CustomerToken.expires_at > now,
    )
    return list(
        db.session.scalars(
            select(CustomerSession)
            .where(
                CustomerSession.customer_id == customer_id,
                CustomerSession.revoked_at.is_(None),
                CustomerSession.id.in_(live_refresh),
            )
            .order_by(CustomerSession.last_used_at.desc(), CustomerSession.id.desc())
        )
    )


def customer_detail(
    merchant_id: int, customer_id: int, market_id: int | None = None
) -> CustomerDetail:
    """Everything the merchant sees about one customer."""
    customer = get_customer(merchant_id, customer_id, market_id)
    order_count = db.session.scalar(
        select(func.count()).select_from(Order).where(Order.customer_id == customer.id)
    )
    return CustomerDetail(
        customer, _account_of(customer), order_count or 0, open_sessions(customer.id)
    )


def update_customer(
    merchant_id: int, customer_id: int, name: str | None = None, email: str | None = None
) -> CustomerDetail:
    """Change a customer's name and/or email (EmailTaken if another customer has the email)."""
    customer = get_customer(merchant_id, customer_id)
    try:
        with _transaction():
            if email is not None and email != customer.email:
                if _find_customer(merchant_id, email) is not None:
                    raise _email_taken_by_other()
                customer.email = email
            if name is not None:
                account = _account_of(customer)
                if account is None:
                    account = CustomerAccount(customer_id=customer.id)
                    db.session.add(account)
                account.name = name
                account.updated_at = utcnow()
            db.session.flush()
    except IntegrityError:
        raise _email_taken_by_other() from None
    return customer_detail(merchant_id, customer_id)


def _email_taken_by_other() -> EmailTaken:
    return EmailTaken("Another customer of this store has this email.")


def search_customers(
    merchant_id: int, query: str = "", page: int = 1, per_page: int = 25
) -> tuple[list[tuple[Customer, CustomerAccount | None, int]], bool]:
    """Customers of the merchant whose email or name contains `query`, newest first, one page:
    each with its account and order count; and whether another page follows."""
    statement = (
        select(Customer, CustomerAccount, func.count(Order.id))
        .outerjoin(CustomerAccount, CustomerAccount.customer_id == Customer.id)
        .outerjoin(Order, Order.customer_id == Customer.id)
        .where(Customer.merchant_id == merchant_id)
        .group_by(Customer.id, CustomerAccount.customer_id)
        .order_by(Customer.id.desc())
    )
    needle = query.strip().lower()
    if needle:
        pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        statement = statement.where(
            or_(
                Customer.email.like(pattern, escape="\\"),
                func.lower(CustomerAccount.name).like(pattern, escape="\\"),
            )
        )
    rows = db.session.execute(statement.offset((page - 1) * per_page).limit(per_page + 1)).all()
    return [(row[0], row[1], row[2]) for row in rows[:per_page]], len(rows) > per_page


def customer_orders(merchant_id: int, customer_id: int, limit: int = 50) -> list[Order]:
    """A customer's latest orders, newest first, for the portal."""
    customer = get_customer(merchant_id, customer_id)
    return list(
        db.session.scalars(_orders_query(customer.id, None).order_by(Order.id.desc()).limit(limit))
    )
