"""`GET /admin/usage`: API calls per key and in total, and the store's sales."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from portal.api.schemas.base import ResponseModel, Timestamp
from portal.keys.models import STATE_ACTIVE, STATE_EXPIRED, STATE_REVOKED
from portal.store.common import ORDER_STATUSES
from portal.usage.models import OUTCOMES

Outcomes: type[BaseModel] = create_model(
    "UsageOutcomes",
    __config__=ConfigDict(json_schema_serialization_defaults_required=True),
    __doc__="Calls in the range by outcome.",
    **{name: (int, Field(ge=0)) for name in OUTCOMES},  # type: ignore[call-overload]
)
OrdersByStatus: type[BaseModel] = create_model(
    "OrdersByStatus",
    __config__=ConfigDict(json_schema_serialization_defaults_required=True),
    __doc__="Number of orders by status.",
    **{name: (int, Field(ge=0)) for name in ORDER_STATUSES},  # type: ignore[call-overload]
)
Revenue: type[BaseModel] = create_model(
    "Revenue",
    __config__=ConfigDict(json_schema_serialization_defaults_required=True),
    __doc__="Order totals of one currency by status, in minor units.",
    currency=(str, Field(pattern="^[A-Z]{3}$")),
    **{name: (int, Field(ge=0)) for name in ORDER_STATUSES},  # type: ignore[call-overload]
)


class EndpointUsage(ResponseModel):
    """Calls to one route."""

    method: str
    route: str = Field(examples=["/api/v1/catalog/products"])
    calls: int
    errors: int


class UsageFigures(ResponseModel):
    """Calls made with valid keys between start and end (`total_calls`: all time)."""

    start: str = Field(json_schema_extra={"format": "date-time"})
    end: str = Field(json_schema_extra={"format": "date-time"})
    total_calls: int
    calls_last_24h: int
    calls: int
    success_rate: float | None = Field(description="Share of calls that succeeded, 0 to 1.")
    avg_latency_ms: float | None
    p95_latency_ms: float | None
    outcomes: Outcomes  # type: ignore[valid-type]
    top_endpoints: list[EndpointUsage]


class KeyUsage(ResponseModel):
    """One key of the store and its figures."""

    id: int
    label: str
    type: Literal["publishable", "secret"]
    state: Literal[STATE_ACTIVE, STATE_EXPIRED, STATE_REVOKED]  # type: ignore[valid-type]
    last_used_at: Timestamp | None
    usage: UsageFigures


class Sales(ResponseModel):
    """Orders by status, and their totals by currency."""

    orders: OrdersByStatus  # type: ignore[valid-type]
    revenue: list[Revenue]  # type: ignore[valid-type]


class Usage(ResponseModel):
    """Usage of every key the calling key may see, in total and per key, and sales figures."""

    object: Literal["usage"] = "usage"
    start: str = Field(json_schema_extra={"format": "date-time"})
    end: str = Field(json_schema_extra={"format": "date-time"})
    total: UsageFigures
    keys: list[KeyUsage]
    sales: Sales

    @classmethod
    def build(cls, total: dict[str, Any], keys: list[dict[str, Any]], sales: Any) -> Usage:
        """The response from the usage figures (dicts) and the sales figures."""
        return cls(start=total["start"], end=total["end"], total=total, keys=keys, sales=sales)
