"""checkouts expire after the store's hold time unless completed

Revision ID: 0003_checkout_expiry
Revises: 0002
Create Date: 2026-12-01 23:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003_checkout_expiry'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checkout_hold_minutes', sa.Integer(), server_default='30', nullable=False))

    with op.batch_alter_table('checkout_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('completed_at', sa.DateTime(), nullable=True))
    # Checkouts made before expiry existed have held their stock long enough: due at once.
    op.execute('UPDATE checkout_sessions SET expires_at = created_at')
    with op.batch_alter_table('checkout_sessions', schema=None) as batch_op:
        batch_op.alter_column('expires_at', existing_type=sa.DateTime(), nullable=False)
        batch_op.create_index('ix_checkout_sessions_open_expiry', ['completed_at', 'expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('checkout_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_checkout_sessions_open_expiry')
        batch_op.drop_column('completed_at')
        batch_op.drop_column('expires_at')

    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.drop_column('checkout_hold_minutes')
