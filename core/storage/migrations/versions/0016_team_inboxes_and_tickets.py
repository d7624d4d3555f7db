"""team inboxes and tickets (issue 20): teams, team inboxes and their members, agents'
capacity, routing rules, the ticket columns, each ticket's contacts and activity log, the
per-sender counts of a team inbox, and the team inbox of an email (docs/tickets.md)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 15:30:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0016'
down_revision: Union[str, Sequence[str], None] = '0015'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _sqlite_add_team_inbox_id() -> None:
    """emails.team_inbox_id on SQLite, in place. Not batch mode: that copies the table and
    drops the old one, and with foreign keys on (core.storage.db) the drop is an implicit
    DELETE that cascades to every email's attachments, sources and contacts (or fails,
    "database table is locked"); it also drops the search index's triggers on emails.
    SQLite adds a column with its reference in place. Its reflection only reads the name
    and ON DELETE of a table constraint ("CONSTRAINT name FOREIGN KEY ..."), so the
    comment states it in that form, for alembic's comparison of models and schema."""
    op.execute(sa.text(
        'ALTER TABLE emails ADD COLUMN team_inbox_id INTEGER'
        ' REFERENCES team_inboxes (id) ON DELETE CASCADE'
        ' /* CONSTRAINT fk_emails_team_inbox_id_team_inboxes FOREIGN KEY (team_inbox_id)'
        ' REFERENCES team_inboxes (id) ON DELETE CASCADE */'))
    op.create_index(op.f('ix_emails_team_inbox_id'), 'emails', ['team_inbox_id'], unique=False)


# The tickets table's new columns on SQLite: (name, type and default, referenced table,
# ON DELETE) - added in place for the same reason as emails.team_inbox_id: batch mode's
# DROP TABLE tickets would cascade to email_tickets and delete every email's link to
# its ticket.
_TICKET_COLUMNS = (
    ('team_inbox_id', 'INTEGER', 'team_inboxes', 'CASCADE'),
    ('thread_id', 'INTEGER', 'threads', 'SET NULL'),
    ('pipeline', "VARCHAR(50) DEFAULT 'support' NOT NULL", None, None),
    ('stage', "VARCHAR(50) DEFAULT 'new' NOT NULL", None, None),
    ('status', "VARCHAR(10) DEFAULT 'open' NOT NULL", None, None),
    ('priority', "VARCHAR(10) DEFAULT 'normal' NOT NULL", None, None),
    ('assignee_user_id', 'INTEGER', 'users', 'SET NULL'),
    ('assignee_team_id', 'INTEGER', 'teams', 'SET NULL'),
    ('contact_id', 'INTEGER', 'contacts', 'SET NULL'),
    ('company_id', 'INTEGER', 'companies', 'SET NULL'),
    ('tags', "JSON DEFAULT '[]' NOT NULL", None, None),
    ('language', 'VARCHAR(16)', None, None),
    ('updated_at', 'DATETIME', None, None),
    ('closed_at', 'DATETIME', None, None),
    ('reopened_at', 'DATETIME', None, None),
    ('merged_into_id', 'INTEGER', 'tickets', 'SET NULL'),
)
_TICKET_INDEXES = ('assignee_user_id', 'contact_id', 'team_inbox_id', 'thread_id')


def _sqlite_extend_tickets() -> None:
    """The tickets columns on SQLite, in place (see ``_TICKET_COLUMNS``); a reference is
    stated again in a comment in table-constraint form, which SQLite's reflection reads
    (as for emails.team_inbox_id)."""
    for name, kind, table, on_delete in _TICKET_COLUMNS:
        sql = f'ALTER TABLE tickets ADD COLUMN {name} {kind}'
        if table is not None:
            reference = f'REFERENCES {table} (id) ON DELETE {on_delete}'
            sql += (f' {reference} /* CONSTRAINT fk_tickets_{name}_{table} FOREIGN KEY '
                    f'({name}) {reference} */')
        op.execute(sa.text(sql))
    for name in _TICKET_INDEXES:
        op.create_index(op.f(f'ix_tickets_{name}'), 'tickets', [name], unique=False)


def _sqlite_shrink_tickets() -> None:
    for name in _TICKET_INDEXES:
        op.drop_index(op.f(f'ix_tickets_{name}'), table_name='tickets')
    for name, *_ in reversed(_TICKET_COLUMNS):
        op.execute(sa.text(f'ALTER TABLE tickets DROP COLUMN {name}'))


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('team_inboxes',
    sa.Column('id', _ID, nullable=False),
    sa.Column('portal_id', _ID, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('business_hours', sa.JSON(), nullable=False),
    sa.Column('auto_acknowledge', sa.Boolean(), nullable=False),
    sa.Column('ack_text', sa.Text(), nullable=False),
    sa.Column('signature', sa.Text(), nullable=False),
    sa.Column('sender_hourly_limit', sa.Integer(), nullable=False),
    sa.Column('default_pipeline', sa.String(length=50), nullable=False),
    sa.Column('default_stage', sa.String(length=50), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], name=op.f('fk_team_inboxes_portal_id_portals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team_inboxes')),
    sa.UniqueConstraint('token', name=op.f('uq_team_inboxes_token')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('team_inboxes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_team_inboxes_portal_id'), ['portal_id'], unique=False)

    op.create_table('teams',
    sa.Column('id', _ID, nullable=False),
    sa.Column('portal_id', _ID, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], name=op.f('fk_teams_portal_id_portals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_teams')),
    sa.UniqueConstraint('portal_id', 'name', name=op.f('uq_teams_portal_id_name')),
    sqlite_autoincrement=True
    )
    op.create_table('agent_capacity',
    sa.Column('user_id', _ID, nullable=False),
    sa.Column('portal_id', _ID, nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=True),
    sa.Column('available', sa.Boolean(), nullable=False),
    sa.Column('last_assigned_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], name=op.f('fk_agent_capacity_portal_id_portals'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_agent_capacity_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_agent_capacity'))
    )
    with op.batch_alter_table('agent_capacity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agent_capacity_portal_id'), ['portal_id'], unique=False)

    op.create_table('routing_rules',
    sa.Column('id', _ID, nullable=False),
    sa.Column('portal_id', _ID, nullable=False),
    sa.Column('team_inbox_id', _ID, nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('conditions', sa.JSON(), nullable=False),
    sa.Column('actions', sa.JSON(), nullable=False),
    sa.Column('stop', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], name=op.f('fk_routing_rules_portal_id_portals'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['team_inbox_id'], ['team_inboxes.id'], name=op.f('fk_routing_rules_team_inbox_id_team_inboxes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_routing_rules')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('routing_rules', schema=None) as batch_op:
        batch_op.create_index('ix_routing_rules_portal_position', ['portal_id', 'position'], unique=False)
        batch_op.create_index(batch_op.f('ix_routing_rules_team_inbox_id'), ['team_inbox_id'], unique=False)

    op.create_table('team_inbox_members',
    sa.Column('id', _ID, nullable=False),
    sa.Column('team_inbox_id', _ID, nullable=False),
    sa.Column('user_id', _ID, nullable=True),
    sa.Column('team_id', _ID, nullable=True),
    sa.CheckConstraint('(user_id IS NULL) <> (team_id IS NULL)', name=op.f('ck_team_inbox_members_one_member')),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_team_inbox_members_team_id_teams'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['team_inbox_id'], ['team_inboxes.id'], name=op.f('fk_team_inbox_members_team_inbox_id_team_inboxes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_team_inbox_members_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team_inbox_members')),
    sa.UniqueConstraint('team_inbox_id', 'user_id', 'team_id', name=op.f('uq_team_inbox_members_team_inbox_id_user_id_team_id')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('team_inbox_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_team_inbox_members_team_id'), ['team_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_team_inbox_members_team_inbox_id'), ['team_inbox_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_team_inbox_members_user_id'), ['user_id'], unique=False)

    op.create_table('team_inbox_senders',
    sa.Column('team_inbox_id', _ID, nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('last_ack_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['team_inbox_id'], ['team_inboxes.id'], name=op.f('fk_team_inbox_senders_team_inbox_id_team_inboxes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('team_inbox_id', 'address', name=op.f('pk_team_inbox_senders'))
    )
    op.create_table('team_members',
    sa.Column('team_id', _ID, nullable=False),
    sa.Column('user_id', _ID, nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_team_members_team_id_teams'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_team_members_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('team_id', 'user_id', name=op.f('pk_team_members'))
    )
    with op.batch_alter_table('team_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_team_members_user_id'), ['user_id'], unique=False)

    op.create_table('ticket_activities',
    sa.Column('id', _ID, nullable=False),
    sa.Column('portal_id', _ID, nullable=False),
    sa.Column('ticket_id', _ID, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('actor_user_id', _ID, nullable=True),
    sa.Column('email_id', _ID, nullable=True),
    sa.Column('from_value', sa.String(length=100), nullable=True),
    sa.Column('to_value', sa.String(length=100), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['actor_user_id'], ['users.id'], name=op.f('fk_ticket_activities_actor_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['email_id'], ['emails.id'], name=op.f('fk_ticket_activities_email_id_emails'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], name=op.f('fk_ticket_activities_portal_id_portals'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_activities_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_activities')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('ticket_activities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_activities_portal_id'), ['portal_id'], unique=False)
        batch_op.create_index('ix_ticket_activities_ticket_id_id', ['ticket_id', 'id'], unique=False)

    op.create_table('ticket_contacts',
    sa.Column('ticket_id', _ID, nullable=False),
    sa.Column('contact_id', _ID, nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_ticket_contacts_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_contacts_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('ticket_id', 'contact_id', name=op.f('pk_ticket_contacts'))
    )
    with op.batch_alter_table('ticket_contacts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_contacts_contact_id'), ['contact_id'], unique=False)

    if op.get_bind().dialect.name == 'sqlite':
        _sqlite_add_team_inbox_id()
    else:
        with op.batch_alter_table('emails', schema=None) as batch_op:
            batch_op.add_column(sa.Column('team_inbox_id', _ID, nullable=True))
            batch_op.create_index(batch_op.f('ix_emails_team_inbox_id'), ['team_inbox_id'], unique=False)
            batch_op.create_foreign_key(batch_op.f('fk_emails_team_inbox_id_team_inboxes'), 'team_inboxes', ['team_inbox_id'], ['id'], ondelete='CASCADE')

    if op.get_bind().dialect.name == 'sqlite':
        _sqlite_extend_tickets()
    else:
        with op.batch_alter_table('tickets', schema=None) as batch_op:
            batch_op.add_column(sa.Column('team_inbox_id', _ID, nullable=True))
            batch_op.add_column(sa.Column('thread_id', _ID, nullable=True))
            batch_op.add_column(sa.Column('pipeline', sa.String(length=50), server_default='support', nullable=False))
            batch_op.add_column(sa.Column('stage', sa.String(length=50), server_default='new', nullable=False))
            batch_op.add_column(sa.Column('status', sa.String(length=10), server_default='open', nullable=False))
            batch_op.add_column(sa.Column('priority', sa.String(length=10), server_default='normal', nullable=False))
            batch_op.add_column(sa.Column('assignee_user_id', _ID, nullable=True))
            batch_op.add_column(sa.Column('assignee_team_id', _ID, nullable=True))
            batch_op.add_column(sa.Column('contact_id', _ID, nullable=True))
            batch_op.add_column(sa.Column('company_id', _ID, nullable=True))
            batch_op.add_column(sa.Column('tags', sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
            batch_op.add_column(sa.Column('language', sa.String(length=16), nullable=True))
            batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
            batch_op.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
            batch_op.add_column(sa.Column('reopened_at', sa.DateTime(timezone=True), nullable=True))
            batch_op.add_column(sa.Column('merged_into_id', _ID, nullable=True))
            batch_op.create_index(batch_op.f('ix_tickets_assignee_user_id'), ['assignee_user_id'], unique=False)
            batch_op.create_index(batch_op.f('ix_tickets_contact_id'), ['contact_id'], unique=False)
            batch_op.create_index(batch_op.f('ix_tickets_team_inbox_id'), ['team_inbox_id'], unique=False)
            batch_op.create_index(batch_op.f('ix_tickets_thread_id'), ['thread_id'], unique=False)
            batch_op.create_foreign_key(batch_op.f('fk_tickets_assignee_user_id_users'), 'users', ['assignee_user_id'], ['id'], ondelete='SET NULL')
            batch_op.create_foreign_key(batch_op.f('fk_tickets_assignee_team_id_teams'), 'teams', ['assignee_team_id'], ['id'], ondelete='SET NULL')
            batch_op.create_foreign_key(batch_op.f('fk_tickets_thread_id_threads'), 'threads', ['thread_id'], ['id'], ondelete='SET NULL')
            batch_op.create_foreign_key(batch_op.f('fk_tickets_team_inbox_id_team_inboxes'), 'team_inboxes', ['team_inbox_id'], ['id'], ondelete='CASCADE')
            batch_op.create_foreign_key(batch_op.f('fk_tickets_merged_into_id_tickets'), 'tickets', ['merged_into_id'], ['id'], ondelete='SET NULL')
            batch_op.create_foreign_key(batch_op.f('fk_tickets_company_id_companies'), 'companies', ['company_id'], ['id'], ondelete='SET NULL')
            batch_op.create_foreign_key(batch_op.f('fk_tickets_contact_id_contacts'), 'contacts', ['contact_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == 'sqlite':
        _sqlite_shrink_tickets()
    else:
        with op.batch_alter_table('tickets', schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f('fk_tickets_contact_id_contacts'), type_='foreignkey')
            batch_op.drop_constraint(batch_op.f('fk_tickets_company_id_companies'), type_='foreignkey')
            batch_op.drop_constraint(batch_op.f('fk_tickets_merged_into_id_tickets'), type_='foreignkey')
            batch_op.drop_constraint(batch_op.f('fk_tickets_team_inbox_id_team_inboxes'), type_='foreignkey')
            batch_op.drop_constraint(batch_op.f('fk_tickets_thread_id_threads'), type_='foreignkey')
            batch_op.drop_constraint(batch_op.f('fk_tickets_assignee_team_id_teams'), type_='foreignkey')
            batch_op.drop_constraint(batch_op.f('fk_tickets_assignee_user_id_users'), type_='foreignkey')
            batch_op.drop_index(batch_op.f('ix_tickets_thread_id'))
            batch_op.drop_index(batch_op.f('ix_tickets_team_inbox_id'))
            batch_op.drop_index(batch_op.f('ix_tickets_contact_id'))
            batch_op.drop_index(batch_op.f('ix_tickets_assignee_user_id'))
            batch_op.drop_column('merged_into_id')
            batch_op.drop_column('reopened_at')
            batch_op.drop_column('closed_at')
            batch_op.drop_column('updated_at')
            batch_op.drop_column('language')
            batch_op.drop_column('tags')
            batch_op.drop_column('company_id')
            batch_op.drop_column('contact_id')
            batch_op.drop_column('assignee_team_id')
            batch_op.drop_column('assignee_user_id')
            batch_op.drop_column('priority')
            batch_op.drop_column('status')
            batch_op.drop_column('stage')
            batch_op.drop_column('pipeline')
            batch_op.drop_column('thread_id')
            batch_op.drop_column('team_inbox_id')

    if op.get_bind().dialect.name == 'sqlite':
        op.drop_index(op.f('ix_emails_team_inbox_id'), table_name='emails')
        # Its reference is a column constraint: SQLite drops it with the column.
        op.execute(sa.text('ALTER TABLE emails DROP COLUMN team_inbox_id'))
    else:
        with op.batch_alter_table('emails', schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f('fk_emails_team_inbox_id_team_inboxes'), type_='foreignkey')
            batch_op.drop_index(batch_op.f('ix_emails_team_inbox_id'))
            batch_op.drop_column('team_inbox_id')

    with op.batch_alter_table('ticket_contacts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_contacts_contact_id'))

    op.drop_table('ticket_contacts')
    with op.batch_alter_table('ticket_activities', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_activities_ticket_id_id')
        batch_op.drop_index(batch_op.f('ix_ticket_activities_portal_id'))

    op.drop_table('ticket_activities')
    with op.batch_alter_table('team_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_team_members_user_id'))

    op.drop_table('team_members')
    op.drop_table('team_inbox_senders')
    with op.batch_alter_table('team_inbox_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_team_inbox_members_user_id'))
        batch_op.drop_index(batch_op.f('ix_team_inbox_members_team_inbox_id'))
        batch_op.drop_index(batch_op.f('ix_team_inbox_members_team_id'))

    op.drop_table('team_inbox_members')
    with op.batch_alter_table('routing_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_routing_rules_team_inbox_id'))
        batch_op.drop_index('ix_routing_rules_portal_position')

    op.drop_table('routing_rules')
    with op.batch_alter_table('agent_capacity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agent_capacity_portal_id'))

    op.drop_table('agent_capacity')
    op.drop_table('teams')
    with op.batch_alter_table('team_inboxes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_team_inboxes_portal_id'))

    op.drop_table('team_inboxes')
