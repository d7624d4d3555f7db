"""web accounts: sign-in to the pages (logins with a password and a role, one-time links,
sessions)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 13:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0013'
down_revision: Union[str, Sequence[str], None] = '0012'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'web_logins',
        sa.Column('user_id', _ID, nullable=False),
        sa.Column('portal_id', _ID, nullable=False),
        sa.Column('role', sa.String(length=10), nullable=False),
        sa.Column('password_hash', sa.String(length=200), nullable=True),
        sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], ondelete='CASCADE',
                                name=op.f('fk_web_logins_portal_id_portals')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE',
                                name=op.f('fk_web_logins_user_id_users')),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_web_logins')),
    )
    op.create_index(op.f('ix_web_logins_portal_id'), 'web_logins', ['portal_id'])
    op.create_table(
        'web_links',
        sa.Column('id', _ID, nullable=False),
        sa.Column('portal_id', _ID, nullable=False),
        sa.Column('purpose', sa.String(length=10), nullable=False),
        sa.Column('user_id', _ID, nullable=True),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('role', sa.String(length=10), nullable=False),
        sa.Column('invited_by', _ID, nullable=True),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], ondelete='CASCADE',
                                name=op.f('fk_web_links_portal_id_portals')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE',
                                name=op.f('fk_web_links_user_id_users')),
        sa.ForeignKeyConstraint(['invited_by'], ['users.id'], ondelete='SET NULL',
                                name=op.f('fk_web_links_invited_by_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_web_links')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_web_links_token_hash')),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f('ix_web_links_portal_id'), 'web_links', ['portal_id'])
    op.create_index(op.f('ix_web_links_user_id'), 'web_links', ['user_id'])
    op.create_table(
        'web_sessions',
        sa.Column('id', _ID, nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('portal_id', _ID, nullable=False),
        sa.Column('user_id', _ID, nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('user_agent', sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], ondelete='CASCADE',
                                name=op.f('fk_web_sessions_portal_id_portals')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE',
                                name=op.f('fk_web_sessions_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_web_sessions')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_web_sessions_token_hash')),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f('ix_web_sessions_user_id'), 'web_sessions', ['user_id'])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f('ix_web_sessions_user_id'), table_name='web_sessions')
    op.drop_table('web_sessions')
    op.drop_index(op.f('ix_web_links_user_id'), table_name='web_links')
    op.drop_index(op.f('ix_web_links_portal_id'), table_name='web_links')
    op.drop_table('web_links')
    op.drop_index(op.f('ix_web_logins_portal_id'), table_name='web_logins')
    op.drop_table('web_logins')
