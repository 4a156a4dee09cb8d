"""Forms of the accounts area (CSRF through Flask-WTF)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Length


class RegisterForm(FlaskForm):
    """Register a store and its first user."""

    store_name = StringField("Store name", validators=[DataRequired(), Length(max=120)])
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired()])


class LoginForm(FlaskForm):
    """Sign in with email and password."""

    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


def _strip(value: str | None) -> str | None:
    """A submitted text without the spaces around it."""
    return value.strip() if isinstance(value, str) else value


class MarketForm(FlaskForm):
    """Add a market."""

    code = StringField("Code", validators=[DataRequired(), Length(max=16)])
    name = StringField("Name", validators=[DataRequired(), Length(max=80)])


class MarketNameForm(FlaskForm):
    """Rename a market (its code stays)."""

    # Stripped first, so a pasted name with spaces around it is measured as it will be saved.
    name = StringField("Name", filters=[_strip], validators=[DataRequired(), Length(max=80)])


class LogoutForm(FlaskForm):
    """Sign out (a form, so it carries a CSRF token)."""
