"""Drop `ix_transactions_signer_type`: no query reads it (lookups go through the primary
key, the height index and the product index), and it cost about 96 bytes per event on
SQLite, 6% of the store (bench/storage.py).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_transactions_signer_type", table_name="transactions")


def downgrade() -> None:
    op.create_index("ix_transactions_signer_type", "transactions", ["signer", "type"])
