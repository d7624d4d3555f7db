"""connected IMAP/SMTP mailboxes of team inboxes (issue 20)

An inbox is a user's (``user_id``) or a team inbox's (``team_inbox_id``, deleted with
it): exactly one is set.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-01 18:30:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0021'
down_revision: Union[str, Sequence[str], None] = '0020'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_CHECK = '(user_id IS NULL) <> (team_inbox_id IS NULL)'
# inbox_folders' columns, to keep its rows across SQLite's rebuild of inboxes.
_FOLDER_COLUMNS = ('id, inbox_id, role, name, uidvalidity, last_uid, highest_modseq,'
                   ' synced_at, error')


def _keep_folders() -> None:
    """SQLite changes a column's NOT NULL only by copying the table (batch mode); with
    foreign keys on (core.storage.db), dropping the old inboxes is an implicit DELETE
    that cascades to every checkpoint in inbox_folders. They are copied aside first and
    put back after (ids kept)."""
    op.execute(sa.text(f'CREATE TABLE _inbox_folders_kept AS SELECT {_FOLDER_COLUMNS}'
                       ' FROM inbox_folders'))


def _restore_folders() -> None:
    op.execute(sa.text('DELETE FROM inbox_folders'))
    op.execute(sa.text(f'INSERT INTO inbox_folders ({_FOLDER_COLUMNS})'
                       f' SELECT {_FOLDER_COLUMNS} FROM _inbox_folders_kept'))
    op.execute(sa.text('DROP TABLE _inbox_folders_kept'))


def upgrade() -> None:
    """Upgrade schema."""
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        _keep_folders()
    with op.batch_alter_table('inboxes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('team_inbox_id', _ID, nullable=True))
        batch_op.alter_column('user_id', existing_type=_ID, nullable=True)
        batch_op.create_foreign_key(batch_op.f('fk_inboxes_team_inbox_id_team_inboxes'),
                                    'team_inboxes', ['team_inbox_id'], ['id'],
                                    ondelete='CASCADE')
        batch_op.create_index(batch_op.f('ix_inboxes_team_inbox_id'), ['team_inbox_id'],
                              unique=False)
        batch_op.create_check_constraint(batch_op.f('ck_inboxes_one_owner'), _CHECK)
    if sqlite:
        _restore_folders()


def downgrade() -> None:
    """Downgrade schema. A team inbox's mailbox has no user to belong to: it goes."""
    op.execute(sa.text('DELETE FROM inboxes WHERE user_id IS NULL'))
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        _keep_folders()
    with op.batch_alter_table('inboxes', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_inboxes_one_owner'), type_='check')
        batch_op.drop_index(batch_op.f('ix_inboxes_team_inbox_id'))
        batch_op.drop_constraint(batch_op.f('fk_inboxes_team_inbox_id_team_inboxes'),
                                 type_='foreignkey')
        batch_op.alter_column('user_id', existing_type=_ID, nullable=False)
        batch_op.drop_column('team_inbox_id')
    if sqlite:
        _restore_folders()
