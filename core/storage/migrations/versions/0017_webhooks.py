"""signed webhooks and their delivery log (issue 20)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 15:30:00

"""
from datetime import UTC, datetime
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0017'
down_revision: Union[str, Sequence[str], None] = '0016'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'webhook_endpoints',
        sa.Column('id', _ID, nullable=False),
        sa.Column('portal_id', _ID, nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('description', sa.String(length=200), nullable=False),
        sa.Column('event_types', sa.JSON(), nullable=False),
        sa.Column('secret', sa.Text(), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('state_reason', sa.Text(), nullable=False),
        sa.Column('consecutive_failures', sa.Integer(), nullable=False),
        sa.Column('start_after', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], ondelete='CASCADE',
                                name=op.f('fk_webhook_endpoints_portal_id_portals')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints')),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f('ix_webhook_endpoints_portal_id'), 'webhook_endpoints',
                    ['portal_id'])
    cursor = op.create_table(
        'webhook_cursor',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('last_event_id', sa.BigInteger(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_cursor')),
        sqlite_autoincrement=True,
    )
    # Dispatch starts at the events already there: an endpoint gets only what follows it.
    bind = op.get_bind()
    last = bind.execute(sa.text('SELECT max(id) FROM events')).scalar()
    now = datetime.now(UTC)
    op.bulk_insert(cursor, [{'id': 1, 'last_event_id': last or 0, 'updated_at': (
        now.replace(tzinfo=None) if bind.dialect.name == 'sqlite' else now)}])
    op.create_table(
        'webhook_deliveries',
        sa.Column('id', _ID, nullable=False),
        sa.Column('endpoint_id', _ID, nullable=False),
        sa.Column('portal_id', _ID, nullable=False),
        sa.Column('event_id', sa.BigInteger(), nullable=False),
        sa.Column('event_type', sa.String(length=30), nullable=False),
        sa.Column('payload', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_response_code', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=False),
        sa.Column('log', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'], ondelete='CASCADE',
                                name=op.f('fk_webhook_deliveries_endpoint_id_webhook_endpoints')),
        sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], ondelete='CASCADE',
                                name=op.f('fk_webhook_deliveries_portal_id_portals')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_webhook_deliveries_due', 'webhook_deliveries',
                    ['status', 'next_attempt_at'])
    op.create_index('ix_webhook_deliveries_endpoint_id_id', 'webhook_deliveries',
                    ['endpoint_id', 'id'])
    op.create_index(op.f('ix_webhook_deliveries_portal_id'), 'webhook_deliveries',
                    ['portal_id'])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('webhook_deliveries')
    op.drop_table('webhook_cursor')
    op.drop_table('webhook_endpoints')
