"""raw copies of header blocks live in their row, not in the blob store

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 13:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('raw_copies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('content', sa.LargeBinary(), nullable=True))
        batch_op.alter_column('blob_sha256', existing_type=sa.String(length=64), nullable=True)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('raw_copies', schema=None) as batch_op:
        batch_op.alter_column('blob_sha256', existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column('content')
