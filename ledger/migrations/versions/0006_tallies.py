"""Add `tallies`: signed amounts by key and transaction, the running totals the domain's
rules need (harvest per plot and season, quantity held per lot, units sold). A total is a
sum over an index range, bounded by height, so admission stays an index lookup. Written
with each block from what the domain's rules derived of it; chains from before have no
rule set that keeps totals, so the table starts empty and stays consistent for them.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tallies",
        sa.Column("key", sa.LargeBinary(32), primary_key=True),
        sa.Column(
            "log_index",
            sa.BigInteger(),
            sa.ForeignKey("transactions.log_index"),
            primary_key=True,
        ),
        sa.Column("amount", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tallies")
