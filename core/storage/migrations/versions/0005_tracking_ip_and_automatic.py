"""tracked sends remember their creator's address; emails mark automatic mail

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 10:45:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('tracked_sends', schema=None) as batch_op:
        batch_op.add_column(sa.Column('creator_ip', sa.String(length=64), server_default='', nullable=False))
    with op.batch_alter_table('emails', schema=None) as batch_op:
        batch_op.add_column(sa.Column('automatic', sa.String(length=40), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('emails', schema=None) as batch_op:
        batch_op.drop_column('automatic')
    with op.batch_alter_table('tracked_sends', schema=None) as batch_op:
        batch_op.drop_column('creator_ip')
