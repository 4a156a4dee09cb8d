"""Times as people say them: "3 minutes ago", "in 2 days"."""

from __future__ import annotations

from datetime import datetime

from portal.database import utcnow

_UNITS = ((86_400, "day"), (3_600, "hour"), (60, "minute"))
FAR = 45 * 86_400  # beyond this the date says more than a count of days


def relative_time(moment: datetime, now: datetime | None = None) -> str:
    """`moment` relative to `now` (UTC): "just now", "5 minutes ago", "in 3 days", or its date."""
    now = now or utcnow()
    seconds = int((moment - now).total_seconds())
    distance = abs(seconds)
    if distance < 60:
        return "just now"
    if distance >= FAR:
        return moment.strftime("%b %d, %Y").replace(" 0", " ")
    for size, unit in _UNITS:
        if distance >= size:
            count = distance // size
            phrase = f"{count} {unit}{'' if count == 1 else 's'}"
            return f"in {phrase}" if seconds > 0 else f"{phrase} ago"
    return "just now"  # unreachable: distance >= 60 matches minutes
