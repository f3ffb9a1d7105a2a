"""Add `claims`: eventIDs and batch ids by transaction, so the block rules that keep them
unique chain-wide are index lookups. Filled from the stored transactions.

Revision ID: 0003
Revises: 0002
"""

import json

import sqlalchemy as sa
from alembic import op

from ledger.claims import CODES_TX_TYPE, tx_claims
from ledger.policy import EPCIS_TX_TYPE

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None
_BATCH = 1000


def upgrade() -> None:
    claims = op.create_table(
        "claims",
        sa.Column("key", sa.LargeBinary(32), primary_key=True),
        sa.Column(
            "log_index",
            sa.BigInteger(),
            sa.ForeignKey("transactions.log_index"),
            primary_key=True,
        ),
    )
    connection = op.get_bind()
    txs = sa.table("transactions", sa.column("log_index"), sa.column("type"), sa.column("envelope"))
    rows = connection.execute(
        sa.select(txs.c.log_index, txs.c.type, txs.c.envelope)
        .where(txs.c.type.in_([EPCIS_TX_TYPE, CODES_TX_TYPE]))
        .order_by(txs.c.log_index)
    )
    pending: list[dict] = []
    for log_index, tx_type, envelope in rows:
        payload = json.loads(envelope)["body"]["payload"]
        pending += [{"key": k, "log_index": log_index} for k in tx_claims(tx_type, payload)]
        if len(pending) >= _BATCH:
            connection.execute(sa.insert(claims), pending)
            pending = []
    if pending:
        connection.execute(sa.insert(claims), pending)


def downgrade() -> None:
    op.drop_table("claims")
