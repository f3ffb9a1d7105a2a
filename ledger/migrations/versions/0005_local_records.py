"""`local_records`: what a node's API keeps beside the chain (named queries and
subscriptions, with the position each subscriber acknowledged), so that a subscriber is
resumed after a restart of the node with nothing lost and nothing sent twice.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "local_records",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(256), primary_key=True),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("local_records")
