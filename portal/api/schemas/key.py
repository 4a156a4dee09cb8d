"""`GET /key`: the calling key describes itself."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from portal.api.schemas.base import ResponseModel, Timestamp
from portal.keys.scopes import SCOPES

ScopeName = Literal[tuple(SCOPES)]  # type: ignore[valid-type]


class Key(ResponseModel):
    """The calling key: what it is and what it may do."""

    # Optional fields are left out of the body when empty, so they are not required.
    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    id: int
    type: Literal["publishable", "secret"]
    mode: Literal["live", "test"]
    scopes: list[ScopeName] = Field(description="In the order of the scope registry.")
    market: str | None = Field(description="Null: every market of the merchant.")
    rate_limit: int = Field(description="Requests per minute.")
    expires_at: Timestamp | None
    allowed_origins: list[str] | None = Field(
        default=None, description="Publishable keys only; empty allows every origin."
    )
    allowed_ip_ranges: list[str] | None = Field(
        default=None, description="Secret keys only (CIDR); empty allows every address."
    )

    def body(self) -> dict[str, Any]:
        """The JSON body: a key shows origins or IP ranges, whichever its type has."""
        body = self.model_dump(mode="json")
        for name in ("allowed_origins", "allowed_ip_ranges"):
            if body[name] is None:
                del body[name]
        return body
