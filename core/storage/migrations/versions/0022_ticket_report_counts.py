"""ticket report counts within the timeline's budget (issue 20)

Reports only read (issue 20 item 6): each ticket's figures are kept on write
(core.tickets.figures), with the channel of its first message and a copy of the
ticket's columns the reports count by (ticket_figures: its indexes cover volume,
status and workload), and every figure a row of ticket_figure_values in business
microseconds, so percentiles are read at their rank in the database, and every
assignment to a user (ticket_assignments) for workload. The figures
of every existing team-inbox ticket are computed here. And acknowledgement_outbox: a
team inbox's acknowledgements, written with their ticket and sent after the commit
(core.tickets.acknowledgements).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-01 18:30:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0022'
down_revision: Union[str, Sequence[str], None] = '0021'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    """Upgrade schema."""
    for column in (sa.Column('portal_id', sa.BigInteger(), nullable=True),
                   sa.Column('team_inbox_id', sa.BigInteger(), nullable=True),
                   sa.Column('created_at', sa.DateTime(timezone=True), nullable=True),
                   sa.Column('channel', sa.String(length=30), nullable=True),
                   sa.Column('status', sa.String(length=10), nullable=True),
                   sa.Column('assignee_user_id', sa.BigInteger(), nullable=True),
                   sa.Column('assignee_team_id', sa.BigInteger(), nullable=True),
                   sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True)):
        op.add_column('ticket_figures', column)
    op.create_index('ix_ticket_figures_created', 'ticket_figures',
                    ['portal_id', 'created_at', 'team_inbox_id', 'channel', 'status',
                     'assignee_user_id', 'assignee_team_id', 'ticket_updated_at'])
    op.create_index('ix_ticket_figures_status', 'ticket_figures',
                    ['portal_id', 'status', 'team_inbox_id', 'assignee_user_id',
                     'assignee_team_id'])
    op.create_index('ix_ticket_figures_closed', 'ticket_figures',
                    ['portal_id', 'closed_at', 'team_inbox_id', 'status', 'assignee_user_id'])
    op.create_table(
        'ticket_figure_values',
        sa.Column('ticket_id', _ID, nullable=False),
        sa.Column('metric', sa.SmallInteger(), nullable=False),
        sa.Column('position', sa.SmallInteger(), nullable=False),
        sa.Column('micros', sa.BigInteger(), nullable=False),
        sa.Column('portal_id', sa.BigInteger(), nullable=False),
        sa.Column('team_inbox_id', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ondelete='CASCADE',
                                name=op.f('fk_ticket_figure_values_ticket_id_tickets')),
        sa.PrimaryKeyConstraint('ticket_id', 'metric', 'position',
                                name=op.f('pk_ticket_figure_values')),
    )
    op.create_index('ix_ticket_figure_values_created', 'ticket_figure_values',
                    ['portal_id', 'metric', 'created_at', 'team_inbox_id', 'micros'])
    op.create_index('ix_ticket_figure_values_ranked', 'ticket_figure_values',
                    ['portal_id', 'metric', 'micros', 'created_at', 'team_inbox_id'])
    op.create_table(
        'ticket_assignments',
        sa.Column('ticket_id', _ID, nullable=False),
        sa.Column('position', sa.SmallInteger(), nullable=False),
        sa.Column('portal_id', sa.BigInteger(), nullable=False),
        sa.Column('team_inbox_id', sa.BigInteger(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('user_id', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ondelete='CASCADE',
                                name=op.f('fk_ticket_assignments_ticket_id_tickets')),
        sa.PrimaryKeyConstraint('ticket_id', 'position', name=op.f('pk_ticket_assignments')),
    )
    op.create_index('ix_ticket_assignments_at', 'ticket_assignments',
                    ['portal_id', 'at', 'team_inbox_id', 'user_id'])
    op.create_table(
        'acknowledgement_outbox',
        sa.Column('id', _ID, nullable=False),
        sa.Column('portal_id', _ID, nullable=False),
        sa.Column('ticket_id', _ID, nullable=False),
        sa.Column('message_id', sa.String(length=255), nullable=False),
        sa.Column('recipient', sa.String(length=320), nullable=False),
        sa.Column('message', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('given_up_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], ondelete='CASCADE',
                                name=op.f('fk_acknowledgement_outbox_portal_id_portals')),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ondelete='CASCADE',
                                name=op.f('fk_acknowledgement_outbox_ticket_id_tickets')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_acknowledgement_outbox')),
        sa.UniqueConstraint('message_id', name=op.f('uq_acknowledgement_outbox_message_id')),
        sa.UniqueConstraint('ticket_id', name=op.f('uq_acknowledgement_outbox_ticket_id')),
    )
    op.create_index(op.f('ix_acknowledgement_outbox_portal_id'), 'acknowledgement_outbox',
                    ['portal_id'])
    op.create_index('ix_acknowledgement_outbox_sent_at_next_attempt_at',
                    'acknowledgement_outbox', ['sent_at', 'next_attempt_at'])
    _backfill()


def _backfill() -> None:
    """Every team-inbox ticket's figures and channel, from its log (the same code that
    keeps them on write; at this revision its tables are the models')."""
    from core.tickets.figures import refresh

    connection = op.get_bind()
    ids = list(connection.scalars(sa.text(
        'SELECT id FROM tickets WHERE team_inbox_id IS NOT NULL ORDER BY id')))
    for start in range(0, len(ids), 2000):
        refresh(connection, ids[start:start + 2000])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_acknowledgement_outbox_sent_at_next_attempt_at',
                  table_name='acknowledgement_outbox')
    op.drop_index(op.f('ix_acknowledgement_outbox_portal_id'),
                  table_name='acknowledgement_outbox')
    op.drop_table('acknowledgement_outbox')
    op.drop_table('ticket_assignments')
    op.drop_table('ticket_figure_values')
    for name in ('ix_ticket_figures_closed', 'ix_ticket_figures_status',
                 'ix_ticket_figures_created'):
        op.drop_index(name, table_name='ticket_figures')
    with op.batch_alter_table('ticket_figures') as batch:
        for column in ('closed_at', 'assignee_team_id', 'assignee_user_id', 'status',
                       'channel', 'created_at', 'team_inbox_id', 'portal_id'):
            batch.drop_column(column)
