"""What a key's usage panel needs: its figures and the charts' label formats."""

from __future__ import annotations

from portal.keys.models import ApiKey
from portal.usage import stats


def chart_labels() -> dict[str, object]:
    """Label formats for the charts' bars."""
    return {
        "hour_label": lambda moment: moment.strftime("%H:00"),
        "day_label": lambda day: day.strftime("%b %d"),
        "outcome_labels": stats.OUTCOME_LABELS,
    }


def key_usage_context(key: ApiKey, outcome: str | None = None) -> dict[str, object]:
    """What the usage panel of a key needs (recent calls filtered by `outcome`, if one)."""
    outcome = outcome if outcome in stats.OUTCOMES else None
    usage = stats.summarize(merchant_id=key.merchant_id, key_id=key.id, recent_outcome=outcome)
    return {"usage": usage, "recent_outcome": outcome, **chart_labels()}
