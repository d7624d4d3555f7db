"""ingest log entries name their team inbox (issue 20)

A team inbox's ingest-log entries are its members' and the admin's only. They were
recognised by their source (``team_inbox``) or logging address (``<token>@``,
``+inbox-<id>@``), which missed mail synced from the inbox's connected mailbox (source
``sync``, the mailbox's own address). ingest_log.team_inbox_id now names the inbox
(core.audit); the entries the old patterns attribute to one inbox get its id here. The
rest stay NULL and core.audit keeps the old patterns for them. No foreign key: an entry
of a deleted inbox stays its (hidden from users) rather than becoming everyone's.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-01 20:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0023'
down_revision: Union[str, Sequence[str], None] = '0022'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('ingest_log', sa.Column('team_inbox_id', _ID, nullable=True))
    connection = op.get_bind()
    for inbox_id, portal_id, token in connection.execute(sa.text(
            'SELECT id, portal_id, token FROM team_inboxes ORDER BY id')):
        connection.execute(sa.text(
            'UPDATE ingest_log SET team_inbox_id = :inbox WHERE portal_id = :portal'
            ' AND team_inbox_id IS NULL AND (lower(logging_address) LIKE :token'
            ' OR lower(logging_address) LIKE :tag)'),
            {'inbox': inbox_id, 'portal': portal_id, 'token': f'{token.lower()}@%',
             'tag': f'%+inbox-{inbox_id}@%'})


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('ingest_log') as batch:
        batch.drop_column('team_inbox_id')
