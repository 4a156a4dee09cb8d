"""The schema comes from the migrations, and it is exactly the models' schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from sqlalchemy import inspect

from portal.extensions import db


def test_migrated_database_matches_the_models(app: Flask) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_key_hash_is_a_unique_index(app: Flask) -> None:
    """The API finds a key by one indexed lookup of its hash."""
    inspector = inspect(db.engine)
    unique_columns = [c["column_names"] for c in inspector.get_unique_constraints("api_keys")]
    unique_indexes = [i["column_names"] for i in inspector.get_indexes("api_keys") if i["unique"]]
    assert ["key_hash"] in unique_columns + unique_indexes
