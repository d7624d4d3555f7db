"""connected inboxes sign in with OAuth 2.0 too; a disconnect names its reason

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 10:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0009'
down_revision: Union[str, Sequence[str], None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('inboxes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('auth', sa.String(length=10), server_default='password', nullable=False))
        batch_op.add_column(sa.Column('oauth_provider', sa.String(length=40), server_default='', nullable=False))
        batch_op.add_column(sa.Column('status_code', sa.String(length=40), server_default='', nullable=False))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('inboxes', schema=None) as batch_op:
        batch_op.drop_column('status_code')
        batch_op.drop_column('oauth_provider')
        batch_op.drop_column('auth')
