"""Initial schema: blocks, transactions, product index, log nodes, meta.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.create_table(
        "blocks",
        sa.Column("height", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("time", sa.String(24), nullable=False),
        sa.Column("header", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("commit", sa.Text(), nullable=False),
    )
    op.create_index("ix_blocks_time", "blocks", ["time"])
    op.create_table(
        "transactions",
        sa.Column("id", sa.LargeBinary(32), primary_key=True),
        sa.Column("height", sa.BigInteger(), sa.ForeignKey("blocks.height"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("signer", sa.String(64), nullable=False),
        sa.Column("envelope", sa.Text(), nullable=False),
    )
    op.create_index("ix_transactions_height", "transactions", ["height"])
    op.create_index("ix_transactions_signer_type", "transactions", ["signer", "type"])
    op.create_table(
        "product_index",
        sa.Column("identifier", sa.String(512), primary_key=True),
        sa.Column(
            "log_index",
            sa.BigInteger(),
            sa.ForeignKey("transactions.log_index"),
            primary_key=True,
        ),
    )
    op.create_table(
        "log_nodes",
        sa.Column("level", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("index", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )


def downgrade() -> None:
    for table in ("log_nodes", "product_index", "transactions", "blocks", "meta"):
        op.drop_table(table)
