"""docker-compose.yml and the Dockerfile agree with the CLI: every service runs a real
command of the project, and mounts the configuration `cluster init --compose` writes."""

from __future__ import annotations

import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from api.cluster import COMPOSE_API, COMPOSE_P2P, compose_db_url, create

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def node_services() -> dict[str, dict]:
    return {name: svc for name, svc in COMPOSE["services"].items() if "build" in svc}


def test_compose_parses_with_a_node_and_a_database_per_validator(tmp_path: Path) -> None:
    members = create(tmp_path, nodes=4, compose=True)
    ids = {m.id for m in members}
    assert set(node_services()) == ids
    for node_id in ids:
        db = COMPOSE["services"][f"{node_id}-db"]
        assert db["image"].startswith("postgres:")
        assert any(v.startswith(f"{node_id}-pg:") for v in db["volumes"])
        assert f"{node_id}-pg" in COMPOSE["volumes"]


def test_every_service_command_is_a_real_cli_command(tmp_path: Path) -> None:
    entrypoint = [
        line
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("ENTRYPOINT")
    ]
    assert entrypoint == ['ENTRYPOINT ["parktrace"]']
    for name, svc in node_services().items():
        command = svc["command"]
        assert command[:2] == ["node", "run"], name
        # The same words, given to the project's CLI, are accepted (--help stops before running).
        result = subprocess.run(
            [sys.executable, "-m", "api", *command[:2], "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        flag = command[2]
        assert flag in result.stdout, f"{name}: {shlex.join(command)}"


def test_mounted_configuration_is_what_the_cli_generates(tmp_path: Path) -> None:
    generated = tmp_path / "compose"
    init = subprocess.run(
        [sys.executable, "-m", "api", "cluster", "init", "--compose", "--dir", str(generated)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert init.returncode == 0, init.stderr
    for name, svc in node_services().items():
        host_dir, mount = svc["volumes"][0].split(":")
        assert host_dir == "./var/compose" and mount == "/cluster"
        config_path = Path(svc["command"][3])
        relative = config_path.relative_to(mount)
        config = tomllib.loads((generated / relative).read_text())
        assert config["node"]["id"] == name
        assert config["node"]["db"] == compose_db_url(name)
        assert f"{name}-db" in svc["depends_on"]
        assert config["network"]["listen"].endswith(f":{COMPOSE_P2P}")
        assert config["api"]["listen"].endswith(f":{COMPOSE_API}")
        assert any(p.endswith(f":{COMPOSE_API}") for p in svc["ports"])
        peers = config["network"]["peers"]
        assert set(peers) == set(node_services()) - {name}
        assert all(addr == f"{peer}:{COMPOSE_P2P}" for peer, addr in peers.items())
        # The consortium the node points at is the one written beside it.
        consortium = (generated / relative).parent / config["node"]["consortium"]
        assert (consortium / "genesis.json").exists()
