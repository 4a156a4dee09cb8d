"""Forms of the members pages (CSRF through Flask-WTF)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from portal.accounts.roles import ROLE_LABELS, ROLES

ROLE_CHOICES = [SelectChoice(role, ROLE_LABELS[role]) for role in ROLES]


class InviteForm(FlaskForm):
    """Invite someone by email, with a role."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    role = SelectField("Role", choices=ROLE_CHOICES, default="developer")


class RoleForm(FlaskForm):
    """Change a member's role."""

    role = SelectField("Role", choices=ROLE_CHOICES)


class ConfirmForm(FlaskForm):
    """A button that only needs its CSRF token (remove, resend, revoke)."""


class AcceptForm(FlaskForm):
    """Accept an invitation: the password of the account (new or existing)."""

    password = PasswordField("Password", validators=[DataRequired()])
