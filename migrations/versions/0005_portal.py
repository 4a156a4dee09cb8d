"""key reveals (idempotent create and rotate forms); error code, client IP, request id of calls

Revision ID: 0005_portal
Revises: 0004_customers

"""
import sqlalchemy as sa
from alembic import op

revision = "0005_portal"
down_revision = "0004_customers"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("usage_calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error_code", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("client_ip", sa.String(length=45), nullable=True))
        batch_op.add_column(sa.Column("request_id", sa.String(length=40), nullable=True))
    op.create_table(
        "key_reveals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("request_token", sa.String(length=64), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=12), nullable=False),
        sa.Column("sealed", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_key_reveals_api_key_id_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_key_reveals_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_key_reveals_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_reveals")),
        sa.UniqueConstraint("merchant_id", "request_token", name="uq_key_reveals_merchant_request"),
    )


def downgrade():
    op.drop_table("key_reveals")
    with op.batch_alter_table("usage_calls", schema=None) as batch_op:
        batch_op.drop_column("request_id")
        batch_op.drop_column("client_ip")
        batch_op.drop_column("error_code")
