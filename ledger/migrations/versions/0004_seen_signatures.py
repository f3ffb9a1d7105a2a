"""`seen_signatures`: digests of request signatures a node has accepted, kept until they
expire, so a signed request replayed after the node restarts is still refused.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seen_signatures",
        sa.Column("digest", sa.LargeBinary(32), primary_key=True),
        sa.Column("expires", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_seen_signatures_expires", "seen_signatures", ["expires"])


def downgrade() -> None:
    op.drop_index("ix_seen_signatures_expires", table_name="seen_signatures")
    op.drop_table("seen_signatures")
