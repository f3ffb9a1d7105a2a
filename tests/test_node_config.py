"""node.toml as its documentation shows it, and the one-line refusals of what it is not."""

from __future__ import annotations

import textwrap
import tomllib
from pathlib import Path

import pytest

import nodes.config
from nodes.config import ConfigError, NodeConfig, render

BASE = {"node": {"id": "n", "db": "sqlite:///n.db", "consortium": "c"}}


def test_the_documented_example_parses_and_means_what_its_comments_say(tmp_path: Path) -> None:
    doc = nodes.config.__doc__ or ""
    example = textwrap.dedent(doc[doc.index("    [node]") :])
    config = NodeConfig.from_dict(tomllib.loads(example), tmp_path)
    assert config.id == "park-committee-node"
    assert config.capture_signers == ("gannan-orchard-coop", "wenshan-growers/admin")
    assert config.public_urls == ("https://node-a.park.example",)
    assert config.api_listen == ("127.0.0.1", 8601)


def test_capture_signers_round_trip_through_the_written_file(tmp_path: Path) -> None:
    text = render(
        node_id="n",
        consortium="c",
        db="sqlite:///n.db",
        listen="127.0.0.1:1",
        peers={},
        api_listen="127.0.0.1:2",
        capture_signers=("gannan-orchard-coop", "wenshan-growers/admin"),
    )
    config = NodeConfig.from_dict(tomllib.loads(text), tmp_path)
    assert config.capture_signers == ("gannan-orchard-coop", "wenshan-growers/admin")


@pytest.mark.parametrize(
    ("capture", "message"),
    [
        ({"signers": "gannan-orchard-coop"}, r"\[capture\] signers: expected a list"),
        ({"signers": ["a/b/c"]}, r"\[capture\] signers: expected a list"),
        ({"signers": [""]}, r"\[capture\] signers: expected a list"),
        ({"signer": ["a"]}, r"\[capture\]: expected a table with only signers"),
    ],
)
def test_a_bad_capture_table_is_one_clear_line(
    tmp_path: Path, capture: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        NodeConfig.from_dict({**BASE, "capture": capture}, tmp_path)


def test_capture_signers_need_the_consortium_directory(tmp_path: Path) -> None:
    bundle = {"id": "n", "db": "sqlite:///n.db", "genesis": "g", "key": "k", "certificate": "c"}
    with pytest.raises(ConfigError, match="read from the consortium directory"):
        NodeConfig.from_dict({"node": bundle, "capture": {"signers": ["a"]}}, tmp_path)
