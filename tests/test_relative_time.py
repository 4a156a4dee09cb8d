"""Relative times on the keys pages."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from portal.relative_time import relative_time

NOW = datetime(2026, 11, 20, 10, 30)


@pytest.mark.parametrize(
    ("delta", "said"),
    [
        (timedelta(seconds=-20), "just now"),
        (timedelta(seconds=30), "just now"),
        (timedelta(minutes=-1), "1 minute ago"),
        (timedelta(minutes=-59, seconds=-59), "59 minutes ago"),
        (timedelta(hours=-1), "1 hour ago"),
        (timedelta(hours=-23), "23 hours ago"),
        (timedelta(days=-1), "1 day ago"),
        (timedelta(days=-44), "44 days ago"),
        (timedelta(minutes=5), "in 5 minutes"),
        (timedelta(days=7), "in 7 days"),
        (timedelta(days=-60), "Sep 21, 2026"),
        (timedelta(days=400), "Dec 25, 2027"),
    ],
)
def test_relative_time(delta: timedelta, said: str) -> None:
    assert relative_time(NOW + delta, NOW) == said
