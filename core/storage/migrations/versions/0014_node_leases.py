"""leases: one node at a time for each connected inbox and for the purge; events notify other nodes (issue 17)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 15:30:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0014'
down_revision: Union[str, Sequence[str], None] = '0013'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


# PostgreSQL: every statement that inserts events notifies the channel that each node's
# event streams listen on (core.storage.listen) with the ids of the portals concerned,
# comma-separated; empty (wake every stream) when they would not fit in one
# notification. Notifications go out at commit, identical ones folded.
_NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION inboxlog_events_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  portals text;
BEGIN
  SELECT string_agg(DISTINCT portal_id::text, ',') INTO portals FROM inserted;
  IF portals IS NOT NULL THEN
    PERFORM pg_notify('inboxlog_events',
                      CASE WHEN length(portals) > 7000 THEN '' ELSE portals END);
  END IF;
  RETURN NULL;
END
$$
"""
_NOTIFY_TRIGGER = """
CREATE TRIGGER events_notify AFTER INSERT ON events
REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION inboxlog_events_notify()
"""


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'node_leases',
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('holder', sa.String(length=120), nullable=False),
        sa.Column('expires_at', sa.Double(), nullable=False),
        sa.Column('acquired_at', sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_node_leases')),
    )
    op.create_index(op.f('ix_node_leases_holder'), 'node_leases', ['holder'])
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_NOTIFY_FUNCTION)
        op.execute(_NOTIFY_TRIGGER)


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS events_notify ON events')
        op.execute('DROP FUNCTION IF EXISTS inboxlog_events_notify()')
    op.drop_index(op.f('ix_node_leases_holder'), table_name='node_leases')
    op.drop_table('node_leases')
