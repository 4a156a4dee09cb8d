"""The API's objects, defined once as pydantic models: request bodies, responses and errors.

Requests are parsed by their model (`base.parse`), responses serialised by theirs, and the
OpenAPI document is built from the models' own JSON Schema (`portal.api.openapi`).
"""
