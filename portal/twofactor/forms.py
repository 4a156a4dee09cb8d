"""Forms of two-factor sign-in (CSRF through Flask-WTF)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import AnyOf, DataRequired, Length


class ConfirmForm(FlaskForm):
    """Turn two-factor sign-in on: the code the app shows after scanning."""

    code = StringField("6-digit code from your app", validators=[DataRequired(), Length(max=16)])


class CodeForm(FlaskForm):
    """The code step of signing in: a code from the app, or a recovery code."""

    code = StringField("Authentication code", validators=[DataRequired(), Length(max=64)])


class ButtonForm(FlaskForm):
    """A button that only needs its CSRF token (new recovery codes, turn off)."""


class RequirementForm(FlaskForm):
    """Require two-factor sign-in of every member of the store, or stop requiring it."""

    required = HiddenField(validators=[AnyOf(["on", "off"])])
