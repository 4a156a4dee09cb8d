"""store settings and leaked keys

Revision ID: 0004_webhooks
Revises: 0003_checkout_expiry
Create Date: 2026-12-01 23:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004_webhooks'
down_revision = '0003_checkout_expiry'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('support_email', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('storefront_url', sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column('customer_access_minutes', sa.Integer(), server_default='15', nullable=False))
        batch_op.add_column(sa.Column('customer_refresh_days', sa.Integer(), server_default='30', nullable=False))
        batch_op.add_column(sa.Column('revoke_leaked_keys', sa.Boolean(), server_default=sa.true(), nullable=False))

    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('leaked_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('leaked_at')

    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.drop_column('revoke_leaked_keys')
        batch_op.drop_column('customer_refresh_days')
        batch_op.drop_column('customer_access_minutes')
        batch_op.drop_column('storefront_url')
        batch_op.drop_column('support_email')
