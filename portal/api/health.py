"""Placeholder: filled in by the API work."""
