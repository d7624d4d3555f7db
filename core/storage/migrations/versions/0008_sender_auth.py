"""sender authentication: the portal's policy, the email's result

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 10:45:00

Portals that exist get "monitor", new ones "enforce" (the model's default): an upgrade
must not start refusing mail before the operator has set --trusted-networks and DNS;
the admin switches a portal to "enforce" with PATCH /api/v1/settings.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('portals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sender_auth', sa.String(length=16),
                                      server_default='monitor', nullable=False))
    # Only the rows that exist now take "monitor": the model gives new portals "enforce",
    # and the schema keeps no server default (the model's metadata has none).
    with op.batch_alter_table('portals', schema=None) as batch_op:
        batch_op.alter_column('sender_auth', server_default=None)
    with op.batch_alter_table('emails', schema=None) as batch_op:
        batch_op.add_column(sa.Column('auth', sa.JSON(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('emails', schema=None) as batch_op:
        batch_op.drop_column('auth')
    with op.batch_alter_table('portals', schema=None) as batch_op:
        batch_op.drop_column('sender_auth')
