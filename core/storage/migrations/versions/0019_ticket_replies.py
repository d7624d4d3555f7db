"""agents' work on tickets beside the reply: a team inbox's canned responses, and who
is viewing or replying to a ticket (collision detection) (issue 20 item 4)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 16:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0019'
down_revision: Union[str, Sequence[str], None] = '0018'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'canned_responses',
        sa.Column('id', _ID, nullable=False),
        sa.Column('portal_id', _ID, nullable=False),
        sa.Column('team_inbox_id', _ID, nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_by', _ID, nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], ondelete='CASCADE',
                                name=op.f('fk_canned_responses_portal_id_portals')),
        sa.ForeignKeyConstraint(['team_inbox_id'], ['team_inboxes.id'], ondelete='CASCADE',
                                name=op.f('fk_canned_responses_team_inbox_id_team_inboxes')),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], ondelete='SET NULL',
                                name=op.f('fk_canned_responses_created_by_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_canned_responses')),
        sa.UniqueConstraint('team_inbox_id', 'name',
                            name=op.f('uq_canned_responses_team_inbox_id_name')),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f('ix_canned_responses_portal_id'), 'canned_responses', ['portal_id'])
    op.create_table(
        'ticket_presence',
        sa.Column('ticket_id', _ID, nullable=False),
        sa.Column('user_id', _ID, nullable=False),
        sa.Column('portal_id', _ID, nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('seen_activity_id', sa.BigInteger(), nullable=False),
        sa.Column('since', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ondelete='CASCADE',
                                name=op.f('fk_ticket_presence_ticket_id_tickets')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE',
                                name=op.f('fk_ticket_presence_user_id_users')),
        sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], ondelete='CASCADE',
                                name=op.f('fk_ticket_presence_portal_id_portals')),
        sa.PrimaryKeyConstraint('ticket_id', 'user_id', name=op.f('pk_ticket_presence')),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('ticket_presence')
    op.drop_index(op.f('ix_canned_responses_portal_id'), table_name='canned_responses')
    op.drop_table('canned_responses')
