"""Members of a store: invite (single-use link, 7 days), accept, resend, revoke, change a role,
remove. Every change is written to the store's audit log with the member who made it."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.accounts.models import Membership, User
from portal.accounts.passwords import hash_password, verify_password
from portal.accounts.roles import OWNER, ROLES, allows
from portal.accounts.service import (
    EMAIL_PATTERN,
    NUL,
    AccountError,
    check_new_password,
    find_user,
    membership_of,
    normalize_email,
    owner_count,
)
from portal.database import utcnow
from portal.extensions import db
from portal.keys.models import AuditEvent
from portal.mail import send_mail
from portal.members.models import Invitation

INVITATION_LIFETIME = timedelta(days=7)


class MemberError(AccountError):
    """A rule about members was broken; `field` names the form field it belongs to."""


@dataclass(frozen=True)
class Manager:
    """The member making a change: their membership (role, store), and the request's IP."""

    membership: Membership
    ip: str | None = None

    @property
    def name(self) -> str:
        """How the audit log names them."""
        return self.membership.user.email


def hash_token(token: str) -> str:
    """The stored form of an invitation link's token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def list_members(merchant_id: int) -> list[Membership]:
    """The store's members, oldest first."""
    return list(
        db.session.scalars(
            select(Membership)
            .where(Membership.merchant_id == merchant_id)
            .options(selectinload(Membership.user))
            .order_by(Membership.id)
        )
    )


def pending_invitations(merchant_id: int) -> list[Invitation]:
    """The store's invitations whose link still works, newest first."""
    return list(
        db.session.scalars(
            select(Invitation)
            .where(
                Invitation.merchant_id == merchant_id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > utcnow(),
            )
            .order_by(Invitation.id.desc())
        )
    )


def get_member(merchant_id: int, membership_id: int) -> Membership | None:
    """One membership of the store, or None (another store's does not exist)."""
    return db.session.scalar(
        select(Membership).where(
            Membership.merchant_id == merchant_id, Membership.id == membership_id
        )
    )


def get_invitation(merchant_id: int, invitation_id: int) -> Invitation | None:
    """One invitation of the store, or None."""
    return db.session.scalar(
        select(Invitation).where(
            Invitation.merchant_id == merchant_id, Invitation.id == invitation_id
        )
    )


def _check_may_grant(manager: Manager, role: str) -> None:
    """Refuse a role outside the list, or an owner's role to a manager who is not an owner."""
    if role not in ROLES:
        raise MemberError("role", f"Choose one of the roles: {', '.join(ROLES)}.")
    if role == OWNER and not allows(manager.membership.role, "members:owners"):
        raise MemberError("role", "Only an owner can make someone an owner.")


def invite(manager: Manager, email: str, role: str) -> Invitation:
    """Invite `email` to the manager's store with `role`, and mail them the link."""
    email = normalize_email(email)
    if NUL in email or not EMAIL_PATTERN.match(email) or len(email) > 254:
        raise MemberError("email", "Enter a valid email address.")
    _check_may_grant(manager, role)
    merchant_id = manager.membership.merchant_id
    existing = find_user(email)
    if existing is not None and membership_of(merchant_id, existing.id) is not None:
        raise MemberError("email", f"{email} is already a member of this store.")
    if any(invitation.email == email for invitation in pending_invitations(merchant_id)):
        raise MemberError("email", f"{email} is already invited: resend the invitation instead.")
    invitation = Invitation(
        merchant_id=merchant_id,
        email=email,
        role=role,
        invited_by_name=manager.name,
        token_hash="",
        expires_at=utcnow(),
    )
    db.session.add(invitation)
    token = _renew(invitation)
    _audit(manager, "member_invited", email=email, role=role)
    db.session.commit()
    _mail_invitation(invitation, token)
    return invitation


def _renew(invitation: Invitation) -> str:
    """A new link for the invitation, valid 7 days from now (the old link stops working)."""
    token = secrets.token_urlsafe(32)
    invitation.token_hash = hash_token(token)
    invitation.expires_at = utcnow() + INVITATION_LIFETIME
    return token


def _mail_invitation(invitation: Invitation, token: str) -> None:
    """Send the invitation's link."""
    send_mail(
        invitation.email,
        f"You are invited to {invitation.merchant.name} on the merchant key portal",
        "invitation",
        store_name=invitation.merchant.name,
        role=invitation.role,
        invited_by=invitation.invited_by_name,
        token=token,
        expires_at=invitation.expires_at,
    )


def resend(manager: Manager, invitation: Invitation) -> None:
    """Mail a new link (valid 7 more days); the previous link stops working."""
    if invitation.accepted_at is not None or invitation.revoked_at is not None:
        raise MemberError("invitation", "This invitation is no longer open: invite again.")
    _check_may_grant(manager, invitation.role)
    token = _renew(invitation)
    _audit(manager, "member_invitation_resent", email=invitation.email, role=invitation.role)
    db.session.commit()
    _mail_invitation(invitation, token)


def revoke(manager: Manager, invitation: Invitation) -> None:
    """Stop an invitation's link now."""
    if invitation.accepted_at is not None or invitation.revoked_at is not None:
        raise MemberError("invitation", "This invitation is no longer open.")
    _check_may_grant(manager, invitation.role)
    invitation.revoked_at = utcnow()
    _audit(manager, "member_invitation_revoked", email=invitation.email, role=invitation.role)
    db.session.commit()


def find_open_invitation(token: str) -> Invitation | None:
    """The pending invitation a link's token names, or None (unknown, used, revoked, expired)."""
    if not token or len(token) > 128:
        return None
    invitation = db.session.scalar(
        select(Invitation).where(Invitation.token_hash == hash_token(token))
    )
    if invitation is None or not invitation.is_pending(utcnow()):
        return None
    return invitation


def has_account(invitation: Invitation) -> bool:
    """Whether the invited email already has an account (it then signs in to accept)."""
    return find_user(invitation.email) is not None


def accept(invitation: Invitation, password: str, ip: str | None = None) -> User:
    """Join the store: a new account with this password, or the existing account whose it is."""
    user = find_user(invitation.email)
    if user is None:
        check_new_password(password)
        user = User(
            merchant_id=invitation.merchant_id,
            email=invitation.email,
            password_hash=hash_password(password),
        )
        db.session.add(user)
        db.session.flush()
    elif not verify_password(password, user.password_hash):
        raise MemberError("password", "The password is not right for this account.")
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()  # the invitation link came to this address
    if membership_of(invitation.merchant_id, user.id) is None:
        db.session.add(
            Membership(merchant_id=invitation.merchant_id, user_id=user.id, role=invitation.role)
        )
    invitation.accepted_at = utcnow()
    db.session.add(
        AuditEvent(
            merchant_id=invitation.merchant_id,
            action="member_joined",
            actor=user.email,
            actor_user_id=user.id,
            ip=ip,
            details={"role": invitation.role, "invited_by": invitation.invited_by_name},
        )
    )
    user.last_login_at = utcnow()
    db.session.commit()
    return user


def change_role(manager: Manager, member: Membership, role: str) -> None:
    """Give a member another role; it applies from their next request."""
    _check_may_grant(manager, role)
    if member.role == OWNER:
        _check_may_grant(manager, OWNER)
        if role != OWNER:
            _keep_an_owner(member)
    if member.role == role:
        return
    previous, member.role = member.role, role
    _audit(
        manager,
        "member_role_changed",
        email=member.user.email,
        changes={"role": {"from": previous, "to": role}},
    )
    db.session.commit()


def remove(manager: Manager, member: Membership) -> None:
    """Take a member out of the store; their signed-in sessions end on their next request."""
    if member.role == OWNER:
        _check_may_grant(manager, OWNER)
        _keep_an_owner(member)
    user = member.user
    _audit(manager, "member_removed", email=user.email, role=member.role)
    db.session.delete(member)
    user.session_epoch += 1
    db.session.commit()


def _keep_an_owner(member: Membership) -> None:
    """Refuse to take the last owner's role away."""
    if owner_count(member.merchant_id) <= 1:
        raise MemberError(
            "role", "A store keeps at least one owner: make someone else owner first."
        )


def _audit(manager: Manager, action: str, **details: Any) -> None:
    """Append a members event to the store's audit log (committed with the change)."""
    db.session.add(
        AuditEvent(
            merchant_id=manager.membership.merchant_id,
            action=action,
            actor=manager.name,
            actor_user_id=manager.membership.user_id,
            ip=manager.ip,
            details=details,
        )
    )
