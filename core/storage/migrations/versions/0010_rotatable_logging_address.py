"""a portal's logging address can be rotated: the previous one and its grace period

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 11:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0010'
down_revision: Union[str, Sequence[str], None] = '0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('portals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_bcc_token', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('previous_token_expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_portals_previous_bcc_token'),
                                          ['previous_bcc_token'])


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('portals', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_portals_previous_bcc_token'), type_='unique')
        batch_op.drop_column('previous_token_expires_at')
        batch_op.drop_column('previous_bcc_token')
