"""What every API model shares: strict request parsing with messages that name the field,
response serialisation, timestamps and the list envelope."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    create_model,
)

from portal.store.requests import RequestModel, describe_error  # noqa: F401 - re-exported


def iso_timestamp(moment: datetime) -> str:
    """A stored (naive UTC) time as ISO 8601 to the second with a Z."""
    return moment.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


Timestamp = Annotated[
    datetime,
    PlainSerializer(iso_timestamp, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "description": "ISO 8601, UTC (Z)."}),
]


class ResponseModel(BaseModel):
    """A response object; every field is always present in what the API sends."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    def body(self) -> dict[str, Any]:
        """The JSON-ready body."""
        return self.model_dump(mode="json")


def list_of(item: type[ResponseModel]) -> type[ResponseModel]:
    """The envelope every list endpoint answers: `{"data": [...], "has_more": bool}`."""
    return create_model(
        f"{item.__name__}List",
        __base__=ResponseModel,
        __doc__=f"One page of {item.__name__} objects, ordered by id.",
        data=(list[item], ...),  # type: ignore[valid-type]
        has_more=(
            bool,
            Field(
                description="Whether more objects follow; pass the last id as `starting_after` "
                "to get them."
            ),
        ),
    )


def list_body(envelope: type[ResponseModel], items: list[ResponseModel], has_more: bool) -> Any:
    """A list response's JSON body."""
    return envelope(data=items, has_more=has_more).body()
