"""What every API model shares: strict request parsing with messages that name the field,
response serialisation, timestamps and the list envelope."""

from __future__ import annotations

import types
from datetime import datetime
from typing import Annotated, Any, ClassVar, Self, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
    create_model,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from portal.store.common import InvalidField


def iso_timestamp(moment: datetime) -> str:
    """A stored (naive UTC) time as ISO 8601 to the second with a Z."""
    return moment.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


Timestamp = Annotated[
    datetime,
    PlainSerializer(iso_timestamp, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "description": "ISO 8601, UTC (Z)."}),
]


def _drop_absent_defaults(schema: dict[str, Any]) -> None:
    """`None` as a default means "not given" (PATCH): it is no value a client should send."""
    for field in schema.get("properties", {}).values():
        if "default" in field and field["default"] is None and "anyOf" not in field:
            del field["default"]


class RequestModel(BaseModel):
    """A request body: unknown fields refused, JSON types strict (a boolean is no integer).

    Each field's `description` says what it accepts, in the words error messages use:
    "price must be <description>."
    """

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_drop_absent_defaults)
    # What the body is, for messages such as "colour is not a product field".
    object_name: ClassVar[str] = "request"

    @classmethod
    def parse(cls, data: Any) -> Self:
        """The body as this model, or InvalidField naming the first bad field."""
        if isinstance(data, cls):
            return data
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            field, message = describe_error(cls, error)
            raise InvalidField(field, message) from None


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


# -- error messages -------------------------------------------------------------------------

_BOUND_ERRORS = {"less_than_equal": "le", "less_than": "lt"}
_OBJECT_ERRORS = {"model_type", "model_attributes_type", "dict_type"}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (directly, in a list, or optional), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = get_origin(annotation)
    if origin in (list, Union, types.UnionType, Annotated):
        for argument in get_args(annotation):
            found = _model_in(argument)
            if found is not None:
                return found
    return None


def _locate(
    model: type[RequestModel], loc: tuple[int | str, ...]
) -> tuple[str, type[BaseModel], FieldInfo | None]:
    """The dotted path of an error's location, the model it is in, and its field."""
    path = ""
    current: type[BaseModel] = model
    field: FieldInfo | None = None
    for part in loc:
        if isinstance(part, int):
            if field is not None and _model_in(field.annotation) is None:
                break  # an item of a list of plain values: name the list
            path += f"[{part}]"
            continue
        owner = _model_in(field.annotation) if field is not None else current
        current = owner or current
        path = f"{path}.{part}" if path else part
        field = current.model_fields.get(part)
        if field is None:
            break
    return path or "body", current, field


def _message(model: type[RequestModel], error: ErrorDetails) -> tuple[str, str]:
    path, owner, field = _locate(model, tuple(error["loc"]))
    kind = error["type"]
    context = error.get("ctx") or {}
    accepts = field.description if field is not None else None
    if kind == "missing":
        return path, f"{path} is required."
    if kind == "extra_forbidden":
        what = getattr(owner, "object_name", "request")
        expected = ", ".join(owner.model_fields)
        return path, f"{path} is not a {what} field (expected: {expected})."
    if kind in _OBJECT_ERRORS:
        return path, f"{path} must be a JSON object."
    if kind == "string_too_long":
        return path, f"{path} must be at most {context['max_length']} characters."
    if kind in _BOUND_ERRORS:
        return path, f"{path} must be at most {context[_BOUND_ERRORS[kind]]}."
    blank = error.get("input") is None or (
        kind == "string_too_short" and context.get("min_length") == 1
    )
    if accepts and blank:
        return path, f"{path} is required and must be {accepts}."
    if accepts:
        return path, f"{path} must be {accepts}."
    return path, f"{path}: {error['msg']}."


def describe_error(model: type[RequestModel], error: ValidationError) -> tuple[str, str]:
    """(field path, message) for the first problem: unknown fields first, then field order."""
    problems = sorted(error.errors(), key=lambda item: item["type"] != "extra_forbidden")
    return _message(model, problems[0])
