"""tracking hits keep the client family their verdict names

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 10:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0007'
down_revision: Union[str, Sequence[str], None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('tracking_hits', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client', sa.String(length=60), server_default='', nullable=False))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('tracking_hits', schema=None) as batch_op:
        batch_op.drop_column('client')
