"""The members page (/settings/members), invitation links, and switching between stores."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, g, request, session, url_for

from portal.accounts.access import (
    begin_pending_sign_in,
    login_required,
    safe_next,
    start_session,
)
from portal.accounts.permissions import SESSION_STORE, can, note_password_entered
from portal.accounts.roles import ROLES
from portal.htmx import full_redirect, render_page_or_block, see_other
from portal.members import service
from portal.members.forms import AcceptForm, ConfirmForm, InviteForm, RoleForm
from portal.members.reauth import require_recent_password
from portal.web import error_page

bp = Blueprint("members", __name__)
# After the role check (registered by the accounts blueprint, mounted first).
bp.before_app_request(require_recent_password)


def _manager() -> service.Manager:
    """The signed-in member making a change."""
    return service.Manager(membership=g.membership, ip=request.remote_addr)


def _invite_form(**kwargs: object) -> InviteForm:
    """The invite form, offering the owner role only to owners."""
    form = InviteForm(**kwargs)
    if not can("members:owners"):
        form.role.choices = [choice for choice in form.role.choices if choice.value != "owner"]
    return form


def _render_members(invite_form: InviteForm | None = None, status: int = 200) -> Response:
    """The members page, or its main block for htmx."""
    return render_page_or_block(
        "members/list.html",
        "main",
        status,
        members=service.list_members(g.merchant.id),
        invitations=service.pending_invitations(g.merchant.id),
        invite_form=invite_form or _invite_form(formdata=None),
        roles=ROLES,
        confirm_form=ConfirmForm(formdata=None),
        can_manage_owners=can("members:owners"),
    )


def _back() -> Response:
    """After a change: back to the members page."""
    return see_other(url_for("members.list_members"), _render_members)


@bp.route("/settings/members")
@login_required
def list_members() -> Response:
    """The store's members and pending invitations."""
    return _render_members()


@bp.route("/settings/members/invite", methods=["POST"])
@login_required
def invite() -> Response:
    """Invite someone by email with a role."""
    form = _invite_form()
    if form.validate_on_submit():
        try:
            invitation = service.invite(_manager(), form.email.data, form.role.data)
        except service.MemberError as error:
            form[error.field].errors.append(error.message)
        else:
            flash(f"Invitation sent to {invitation.email}. The link works for 7 days.", "success")
            return _back()
    return _render_members(form, 422)


def _member_or_404(member_id: int):  # noqa: ANN202 - Membership
    """One of this store's members, or 404."""
    member = service.get_member(g.merchant.id, member_id)
    if member is None:
        abort(404)
    return member


def _invitation_or_404(invitation_id: int):  # noqa: ANN202 - Invitation
    """One of this store's invitations, or 404."""
    invitation = service.get_invitation(g.merchant.id, invitation_id)
    if invitation is None:
        abort(404)
    return invitation


@bp.route("/settings/members/<int:member_id>/role", methods=["POST"])
@login_required
def change_role(member_id: int) -> Response:
    """Give a member another role."""
    member = _member_or_404(member_id)
    form = RoleForm()
    if form.validate_on_submit():
        try:
            service.change_role(_manager(), member, form.role.data)
        except service.MemberError as error:
            flash(error.message, "error")
        else:
            flash(f"{member.user.email} is now {member.role}.", "success")
    else:
        flash("Choose one of the roles.", "error")
    return _back()


@bp.route("/settings/members/<int:member_id>/remove", methods=["GET", "POST"])
@login_required
def remove(member_id: int) -> Response:
    """Confirm, then take a member out of the store."""
    member = _member_or_404(member_id)
    form = ConfirmForm()
    if request.method == "GET":
        return render_page_or_block("members/remove.html", "main", member=member, form=form)
    if form.validate_on_submit():
        email = member.user.email
        try:
            service.remove(_manager(), member)
        except service.MemberError as error:
            flash(error.message, "error")
        else:
            flash(f"{email} is no longer a member. Their sessions have ended.", "success")
    return _back()


@bp.route("/settings/members/invitations/<int:invitation_id>/resend", methods=["POST"])
@login_required
def resend(invitation_id: int) -> Response:
    """Mail a new link for an invitation."""
    invitation = _invitation_or_404(invitation_id)
    if ConfirmForm().validate_on_submit():
        try:
            service.resend(_manager(), invitation)
        except service.MemberError as error:
            flash(error.message, "error")
        else:
            flash(f"A new link was sent to {invitation.email}.", "success")
    return _back()


@bp.route("/settings/members/invitations/<int:invitation_id>/revoke", methods=["POST"])
@login_required
def revoke(invitation_id: int) -> Response:
    """Stop an invitation's link."""
    invitation = _invitation_or_404(invitation_id)
    if ConfirmForm().validate_on_submit():
        try:
            service.revoke(_manager(), invitation)
        except service.MemberError as error:
            flash(error.message, "error")
        else:
            flash(f"The invitation of {invitation.email} is revoked.", "success")
    return _back()


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def accept(token: str) -> Response:
    """Accept an invitation: set a password (new account) or enter yours (existing account)."""
    invitation = service.find_open_invitation(token)
    if invitation is None:
        return error_page(
            404,
            "Invitation not valid",
            "This invitation link was used, revoked or has expired. Ask the store for a new one.",
        )
    has_account = service.has_account(invitation)
    form = AcceptForm()
    if form.validate_on_submit():
        try:
            user = service.accept(invitation, form.password.data, request.remote_addr)
        except service.MemberError as error:
            form[error.field].errors.append(error.message)
        else:
            if user.two_factor_enabled:
                # Joined; signing in still takes the code step.
                begin_pending_sign_in(user, None, invitation.merchant_id)
                flash(f"You joined {invitation.merchant.name}.", "success")
                return full_redirect(url_for("twofactor.challenge"))
            start_session(user.id, user.session_epoch)
            note_password_entered()
            session[SESSION_STORE] = invitation.merchant_id
            flash(f"Welcome to {invitation.merchant.name}.", "success")
            return full_redirect(url_for("keys.list_keys"))
    response = render_page_or_block(
        "members/accept.html",
        "main",
        422 if form.errors else 200,
        form=form,
        invitation=invitation,
        has_account=has_account,
    )
    response.headers["Referrer-Policy"] = "no-referrer"  # the link's token stays here
    return response


@bp.route("/settings/switch-store", methods=["POST"])
@login_required
def switch_store() -> Response:
    """Work in another of the user's stores."""
    merchant_id = request.form.get("merchant_id", type=int)
    if not any(m.merchant_id == merchant_id for m in g.user.memberships):
        abort(404)
    session[SESSION_STORE] = merchant_id
    return full_redirect(safe_next(request.form.get("next"), url_for("keys.list_keys")))
