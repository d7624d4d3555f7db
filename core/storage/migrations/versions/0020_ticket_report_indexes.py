"""ticket reports within the contact timeline's budget (issue 20 item 6): indexes for
the tickets created in a range, those open now and the assignments in a range, and
each ticket's stored SLA figures (ticket_figures, core.reports)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01 17:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0020'
down_revision: Union[str, Sequence[str], None] = '0019'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index('ix_tickets_portal_id_created_at', 'tickets', ['portal_id', 'created_at'])
    op.create_index('ix_tickets_portal_id_status', 'tickets', ['portal_id', 'status'])
    op.create_index('ix_ticket_activities_portal_id_kind_at', 'ticket_activities',
                    ['portal_id', 'kind', 'at'])
    op.create_table(
        'ticket_figures',
        sa.Column('ticket_id', _ID, nullable=False),
        sa.Column('as_of_activity_id', sa.BigInteger(), nullable=False),
        sa.Column('ticket_updated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('hours_key', sa.String(length=64), nullable=False),
        sa.Column('first_response', sa.Float(), nullable=True),
        sa.Column('first_resolution', sa.Float(), nullable=True),
        sa.Column('reopen_first_responses', sa.Text(), nullable=False),
        sa.Column('next_responses', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ondelete='CASCADE',
                                name=op.f('fk_ticket_figures_ticket_id_tickets')),
        sa.PrimaryKeyConstraint('ticket_id', name=op.f('pk_ticket_figures')),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('ticket_figures')
    op.drop_index('ix_ticket_activities_portal_id_kind_at', table_name='ticket_activities')
    op.drop_index('ix_tickets_portal_id_status', table_name='tickets')
    op.drop_index('ix_tickets_portal_id_created_at', table_name='tickets')
