"""What chain this node serves: the values a client needs to sign for it and to check
what it is told (chain id, genesis hash, head)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from ledger import codec

from ..errors import error_responses
from ..services import Svc

router = APIRouter(tags=["Chain"])


class ChainInfo(BaseModel):
    chain_id: str = Field(description="sign transactions for this chain id")
    genesis_hash: str = Field(description="hash of the genesis document receipts verify against")
    height: int = Field(description="height of the last committed block (0: none yet)")
    head_hash: str | None = Field(description="hash of the last committed block header")
    log_size: int = Field(description="transactions in the whole-ledger log")
    log_root: str | None = Field(description="RFC 6962 root of the whole-ledger log")
    pending: int = Field(description="transactions waiting in this node's mempool")


@router.get(
    "/v1/chain",
    summary="Chain id, genesis hash and head of this node",
    response_model=ChainInfo,
    responses=error_responses(503),
)
async def chain_info(svc: Svc) -> ChainInfo:
    """The SDK reads `chain_id` here before signing when it has no genesis file at hand."""
    node = svc.node
    header = node.store.header(node.height) if node.height else None
    return ChainInfo(
        chain_id=node.genesis.chain_id,
        genesis_hash=node.genesis.hash,
        height=node.height,
        head_hash=header.hash if header else None,
        log_size=header.log_size if header else 0,
        log_root=header.log_root if header else None,
        pending=len(node.mempool),
    )


@router.get(
    "/v1/chain/genesis",
    summary="The genesis document: validator keys and members receipts verify against",
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def genesis(svc: Svc) -> Response:
    """What a browser or a phone needs to check a receipt itself; it hashes (domain
    "genesis", RFC 8785) to the `genesis_hash` every receipt names."""
    return Response(codec.canonical(svc.node.genesis.to_json()), media_type="application/json")
