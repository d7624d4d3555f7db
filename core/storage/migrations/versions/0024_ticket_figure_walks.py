"""team inboxes whose figures are stale (issue 20: an hours change is not one long write)

A change of a team inbox's time zone or business hours recomputed every ticket of the
inbox in the transaction that changed them, holding SQLite's only write lock (and, on
PostgreSQL, every ticket's row) for as long as that took. The change now leaves a row
here; core.tickets.refigure recomputes the inbox's tickets in small transactions, in
ticket id order from after_ticket_id, and deletes the row when done.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-01 22:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0024'
down_revision: Union[str, Sequence[str], None] = '0023'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'ticket_figure_walks',
        sa.Column('team_inbox_id', _ID, nullable=False),
        sa.Column('portal_id', _ID, nullable=False),
        sa.Column('after_ticket_id', sa.BigInteger(), nullable=False),
        sa.Column('marked_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['team_inbox_id'], ['team_inboxes.id'], ondelete='CASCADE',
                                name=op.f('fk_ticket_figure_walks_team_inbox_id_team_inboxes')),
        sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], ondelete='CASCADE',
                                name=op.f('fk_ticket_figure_walks_portal_id_portals')),
        sa.PrimaryKeyConstraint('team_inbox_id', name=op.f('pk_ticket_figure_walks')),
    )
    op.create_index(op.f('ix_ticket_figure_walks_portal_id'), 'ticket_figure_walks',
                    ['portal_id'])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f('ix_ticket_figure_walks_portal_id'), table_name='ticket_figure_walks')
    op.drop_table('ticket_figure_walks')
