"""verified alternate sender addresses: a user address counts once confirmed

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 11:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0011'
down_revision: Union[str, Sequence[str], None] = '0010'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('user_addresses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('confirm_token_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('requested_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_user_addresses_confirm_token_hash'),
                                          ['confirm_token_hash'])
    # Every address that exists was asserted by the operator (`admin add-user --alias`),
    # an admin adding the user, or a connected inbox's login: confirmed.
    op.execute(sa.text("UPDATE user_addresses SET confirmed_at = CURRENT_TIMESTAMP"))


def downgrade() -> None:
    """Downgrade schema."""
    # An unconfirmed address was never the user's: it must not become one.
    op.execute(sa.text("DELETE FROM user_addresses WHERE confirmed_at IS NULL"))
    with op.batch_alter_table('user_addresses', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_user_addresses_confirm_token_hash'),
                                 type_='unique')
        batch_op.drop_column('requested_at')
        batch_op.drop_column('confirm_token_hash')
        batch_op.drop_column('confirmed_at')
