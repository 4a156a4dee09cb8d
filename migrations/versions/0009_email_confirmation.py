"""sign-up confirms the email: users.email_confirmed_at (every existing user counts as confirmed)

Revision ID: 0009_email_confirmation
Revises: 0008_two_factor
Create Date: 2026-12-05 06:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_email_confirmation'
down_revision = '0008_two_factor'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_confirmed_at', sa.DateTime(), nullable=True))
    # Accounts made before sign-up asked for a confirmation keep working as they did.
    op.execute("UPDATE users SET email_confirmed_at = created_at")


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('email_confirmed_at')
