"""Merchants, their users and markets, and signing in."""
