"""Portal forms about shoppers."""

from __future__ import annotations

from flask_wtf import FlaskForm


class SignOutEverywhereForm(FlaskForm):
    """Confirms "Sign out everywhere" (the form carries the CSRF token)."""
