"""the code an extension's token was bought with: a replayed code revokes it, and a new
password revokes every token the extension's sign-in issued (issue 18)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 15:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0018'
down_revision: Union[str, Sequence[str], None] = '0017'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('grant_code_hash', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_api_tokens_grant_code_hash'),
                                          ['grant_code_hash'])


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_api_tokens_grant_code_hash'), type_='unique')
        batch_op.drop_column('grant_code_hash')
