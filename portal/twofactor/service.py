"""Two-factor sign-in: turn it on with a confirmed code, recovery codes (shown once, kept as
keyed hashes, each used once), the code step of sign-in (a code is never accepted twice), turning
it off, and the owner's setting that requires it for every member. Every change is written to the
audit log of each store the member belongs to, with who did it; never a secret or a code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import func, select, update

from portal.accounts import permissions
from portal.accounts.models import Membership, Merchant, User
from portal.accounts.service import AccountError
from portal.database import utcnow
from portal.extensions import db
from portal.keys.models import AuditEvent
from portal.twofactor import totp
from portal.twofactor.models import RecoveryCode

WRONG_CODE = "That code is not right. Enter the 6-digit code your app shows now."
WRONG_SIGN_IN_CODE = (
    "That code is not right, or it was already used. Enter the 6-digit code your app shows "
    "now, or one of your recovery codes."
)


class TwoFactorError(AccountError):
    """A rule of two-factor sign-in was broken; `field` names the form field it belongs to."""


@dataclass(frozen=True)
class SignIn:
    """How the code step of a sign-in was passed: `recovery` if with a recovery code."""

    recovery: bool
    recovery_codes_left: int


def _key() -> bytes:
    """The server's secret for recovery code hashes (the same HMAC key as API key hashes)."""
    return current_app.config["API_KEY_PEPPER"]


def _audit(
    user: User, action: str, ip: str | None, stores: list[int] | None = None, **details: Any
) -> None:
    """Append an event to the audit log of each store of the user (or of `stores`)."""
    for merchant_id in stores if stores is not None else _stores_of(user):
        db.session.add(
            AuditEvent(
                merchant_id=merchant_id,
                action=action,
                actor=user.email,
                actor_user_id=user.id,
                ip=ip,
                details=details,
            )
        )


def _stores_of(user: User) -> list[int]:
    """The ids of every store the user is a member of."""
    return [membership.merchant_id for membership in user.memberships]


def _new_recovery_codes(user: User) -> list[str]:
    """Replace the user's recovery codes with 10 new ones; the codes in clear, to show once."""
    db.session.execute(RecoveryCode.__table__.delete().where(RecoveryCode.user_id == user.id))
    codes = totp.new_recovery_codes()
    db.session.add_all(
        RecoveryCode(user_id=user.id, code_hash=code_hash)
        for code_hash in totp.hashes(codes, _key())
    )
    return codes


def enable(user: User, secret: str, code: str, ip: str | None = None) -> list[str]:
    """Turn two-factor sign-in on with `secret`, once `code` proves the app has it.

    Returns the 10 recovery codes (shown once). Every other session of the user ends: whoever
    signed in with the password alone before is signed out.
    """
    if user.two_factor_enabled:
        raise TwoFactorError("code", "Two-factor sign-in is already on.")
    step = totp.matching_step(secret, totp.normalize(code), permissions.now(), None)
    if step is None:
        raise TwoFactorError("code", WRONG_CODE)
    user.totp_secret = secret
    user.totp_enabled_at = utcnow()
    user.totp_last_step = step  # the code just typed cannot sign anyone in
    codes = _new_recovery_codes(user)
    user.session_epoch += 1
    _audit(user, "two_factor_enabled", ip)
    db.session.commit()
    return codes


def stores_requiring(user: User) -> list[Merchant]:
    """The user's stores that require two-factor sign-in of every member."""
    return [m.merchant for m in user.memberships if m.merchant.require_two_factor]


def disable(user: User, ip: str | None = None) -> None:
    """Turn two-factor sign-in off (not while a store of the user requires it)."""
    if not user.two_factor_enabled:
        raise TwoFactorError("disable", "Two-factor sign-in is already off.")
    requiring = stores_requiring(user)
    if requiring:
        names = ", ".join(store.name for store in requiring)
        raise TwoFactorError(
            "disable",
            f"{names} requires two-factor sign-in of every member: it stays on while you are "
            "a member.",
        )
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    db.session.execute(RecoveryCode.__table__.delete().where(RecoveryCode.user_id == user.id))
    _audit(user, "two_factor_disabled", ip)
    db.session.commit()


def regenerate_recovery_codes(user: User, ip: str | None = None) -> list[str]:
    """New recovery codes (shown once); the old ones stop working."""
    if not user.two_factor_enabled:
        raise TwoFactorError("regenerate", "Turn on two-factor sign-in first.")
    codes = _new_recovery_codes(user)
    _audit(user, "recovery_codes_regenerated", ip)
    db.session.commit()
    return codes


def recovery_codes_left(user: User) -> int:
    """How many of the user's recovery codes are still unused."""
    return db.session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )


def verify_sign_in(user: User, code: str, ip: str | None = None) -> SignIn:
    """The code step of signing in: an authenticator code not used before, or a recovery code
    not used before (either is then used up). Raises TwoFactorError for anything else."""
    if not user.two_factor_enabled:
        raise TwoFactorError("code", WRONG_SIGN_IN_CODE)
    typed = totp.normalize(code)
    if totp.is_totp_code(typed):
        step = totp.matching_step(user.totp_secret, typed, permissions.now(), user.totp_last_step)
        if step is not None and _claim_step(user, step):
            return SignIn(recovery=False, recovery_codes_left=recovery_codes_left(user))
        raise TwoFactorError("code", WRONG_SIGN_IN_CODE)
    if len(typed) != totp.RECOVERY_LENGTH or not _claim_recovery_code(user, typed):
        raise TwoFactorError("code", WRONG_SIGN_IN_CODE)
    left = recovery_codes_left(user)
    _audit(user, "recovery_code_used", ip, codes_left=left)
    db.session.commit()
    return SignIn(recovery=True, recovery_codes_left=left)


def _claim_step(user: User, step: int) -> bool:
    """Record `step` as used, unless this or a later step was used meanwhile (one UPDATE, so two
    requests racing with the same code cannot both win)."""
    result = db.session.execute(
        update(User)
        .where(
            User.id == user.id,
            (User.totp_last_step.is_(None)) | (User.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    db.session.refresh(user)
    return result.rowcount == 1


def _claim_recovery_code(user: User, code: str) -> bool:
    """Use up the user's unused recovery code `code`, if it is one (compared by its hash)."""
    code_hash = totp.hash_recovery_code(code, _key())
    result = db.session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == code_hash,
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def set_requirement(membership: Membership, required: bool, ip: str | None = None) -> bool:
    """Require (or stop requiring) two-factor sign-in of every member of the membership's store.

    The owner must use it themselves first. Returns whether anything changed.
    """
    store = membership.merchant
    user = membership.user
    if required and not user.two_factor_enabled:
        raise TwoFactorError(
            "required",
            "Turn on two-factor sign-in for your own account first: then you can require it "
            "of every member.",
        )
    if store.require_two_factor == required:
        return False
    store.require_two_factor = required
    action = "two_factor_required" if required else "two_factor_requirement_lifted"
    _audit(user, action, ip, stores=[store.id])
    db.session.commit()
    return True
