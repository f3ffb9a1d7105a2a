"""docker-compose.yml, the Dockerfile and .dockerignore agree with the CLI and keep each
member's secrets to itself.

Without a Docker engine: the compose file is parsed; every command in it is run through
the real CLI (`--help`); every path it mounts is one `cluster init --compose` writes; no
node mounts the CA key or another member's private key; no password is in the file; the
build context Docker would send (computed by Docker's own SDK) holds no key, venv or var/.
Then the four bundles, copied away from the consortium, run as real node processes with
the settings compose gives them: they commit blocks, issue codes, and the regulator's node
compares the chains. With a Docker engine, the image is built and the cluster brought up.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from docker.utils.build import exclude_paths

from devtools import cluster, compose_bundle
from devtools.cluster import COMPOSE_API, COMPOSE_P2P, compose_db_url
from ledger.consortium import Consortium
from ledger.crypto import PrivateKey
from nodes.config import BlockConfig, NodeConfig, render
from sdk.audit import AuditClient
from sdk.signing import Identity, sign_request
from tests.localnet import FAST

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
CLI = Path(sys.executable).parent / "parktrace"
DEMO_PORTS = {*range(8601, 8605), *range(26601, 26605)}
MASK_GTIN = "6907890000346"


def node_services() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in COMPOSE["services"].items() if "build" in svc}


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `parktrace cluster init --compose --dir var/compose` writes, in a scratch
    project directory (the compose file's `./var/compose`)."""
    project = tmp_path_factory.mktemp("project")
    init = cli("cluster", "init", "--compose", "--dir", str(project / "var" / "compose"))
    assert init.returncode == 0, init.stderr
    return project


def host_path(project: Path, spec: str) -> Path:
    """A compose bind-mount or env_file path, relative to the project directory."""
    assert spec.startswith("./"), f"{spec}: only paths inside the project are mounted"
    return project / spec[2:]


def bind_mounts(svc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(host, container, mode) of a service's bind mounts (named volumes left out)."""
    mounts = []
    for volume in svc.get("volumes", []):
        host, target, *mode = volume.split(":")
        if host.startswith(("./", "/")):
            mounts.append((host, target, mode[0] if mode else "rw"))
    return mounts


def consortium_keys(consortium: Path) -> dict[bytes, str]:
    """Public key -> owner ('ca' or organisation id) of every private key the consortium
    directory holds."""
    owners: dict[bytes, str] = {}
    for path in (consortium / "keys").rglob("*.key"):
        parts = path.relative_to(consortium / "keys").parts
        owner = "ca" if parts == ("ca.key",) else parts[1]
        owners[PrivateKey.load(path).public_key.key] = owner
    return owners


# -- the compose file -----------------------------------------------------------------------


def test_compose_parses_with_a_node_and_a_database_per_validator(generated: Path) -> None:
    ids = {m.id for m in cluster.members(generated / "var" / "compose")}
    assert set(node_services()) == ids
    for node_id in ids:
        db = COMPOSE["services"][f"{node_id}-db"]
        assert db["image"].startswith("postgres:")
        assert any(v.startswith(f"{node_id}-pg:") for v in db["volumes"])
        assert f"{node_id}-pg" in COMPOSE["volumes"]


def test_every_service_has_a_health_check_and_waits_for_healthy_dependencies() -> None:
    for name, svc in COMPOSE["services"].items():
        test = svc.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"
        for needed, how in svc.get("depends_on", {}).items():
            assert how == {"condition": "service_healthy"}, f"{name} -> {needed}"
            assert needed in COMPOSE["services"]
    for name, svc in node_services().items():
        assert svc["healthcheck"]["test"][1:4] == ["parktrace", "node", "health"], name
        assert svc["depends_on"] == {f"{name}-db": {"condition": "service_healthy"}}
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^HEALTHCHECK .*\n?.*parktrace\", \"node\", \"health\"", dockerfile, re.M)


def test_every_command_is_a_real_cli_command() -> None:
    entrypoint = [
        line
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("ENTRYPOINT")
    ]
    assert entrypoint == ['ENTRYPOINT ["parktrace"]']
    commands = set()
    for svc in node_services().values():
        commands.add(tuple(svc["command"]))  # run by the entrypoint, `parktrace`
        commands.add(tuple(svc["healthcheck"]["test"][2:]))  # CMD parktrace …
    assert len(commands) == 2
    for command in commands:
        words = [w for w in command if not w.startswith("-")][:2]
        result = cli(*words, "--help", timeout=60)
        assert result.returncode == 0, f"{' '.join(command)}: {result.stderr}"
        for flag in (w for w in command if w.startswith("--")):
            assert flag in result.stdout, f"{' '.join(command)}: no {flag}"


def test_the_nodes_run_unprivileged() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and not users[-1].startswith(("0", "root"))
    assert f"--uid {compose_bundle.IMAGE_UID}" in dockerfile
    for name, svc in node_services().items():
        assert svc["user"].startswith("${PARKTRACE_UID:?"), name


def test_published_ports_do_not_clash_with_the_demo_and_stay_on_loopback() -> None:
    published = []
    for name, svc in COMPOSE["services"].items():
        for port in svc.get("ports", []):
            host, host_port, container = str(port).split(":")
            assert host == "127.0.0.1", f"{name}: {port}"
            published.append(int(host_port))
            assert int(container) == COMPOSE_API
    assert len(published) == len(set(published)) == len(node_services())
    assert not DEMO_PORTS & set(published)


def test_no_password_is_written_in_the_compose_file() -> None:
    assert not re.search(r"password\s*[:=]", COMPOSE_TEXT, re.I)
    assert not re.search(r"://[^/@\s:]+:[^/@\s]+@", COMPOSE_TEXT), "a URL with a password"
    for name, svc in COMPOSE["services"].items():
        env = svc.get("environment", {})
        assert not any("PASSWORD" in key and not key.endswith("_FILE") for key in env), name
        assert svc.get("env_file"), f"{name}: its database password comes from an env file"


# -- what `cluster init --compose` writes, and what each node mounts of it ------------------


def test_every_mounted_path_is_written_by_cluster_init_compose(generated: Path) -> None:
    for name, svc in COMPOSE["services"].items():
        for spec in svc.get("env_file", []):
            path = host_path(generated, spec)
            assert path.is_file(), f"{name}: {spec}"
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for name, svc in node_services().items():
        mounts = bind_mounts(svc)
        assert mounts, name
        for host, _target, _mode in mounts:
            assert host_path(generated, host).exists(), f"{name}: {host} is not generated"
        # The bundle is read-only; only its state directory is writable.
        writable = [t for _h, t, mode in mounts if mode != "ro"]
        assert writable == [f"{compose_bundle.MOUNT}/{compose_bundle.STATE}"], name
        # Everything the node is told to read is inside what it mounts.
        bundle = host_path(generated, mounts[0][0])
        assert mounts[0][1] == compose_bundle.MOUNT
        config_path = Path(svc["command"][3])
        config = NodeConfig.load(bundle / config_path.relative_to(compose_bundle.MOUNT))
        assert config.consortium is None
        for path in (config.genesis_path, config.key_path(""), config.certificate_path("")):
            assert path.parent == bundle.resolve() and path.is_file(), path
        assert config.data_dir == (bundle / compose_bundle.STATE).resolve()
        for key, value in svc["environment"].items():
            if isinstance(value, str) and value.startswith(f"{compose_bundle.MOUNT}/"):
                inside = bundle / Path(value).relative_to(compose_bundle.MOUNT)
                assert inside.is_file(), f"{name}: {key}={value} is not in its bundle"


def test_the_generated_configs_address_the_compose_services(generated: Path) -> None:
    directory = generated / "var" / "compose"
    for name in node_services():
        config = tomllib.loads((directory / name / "node.toml").read_text())
        assert config["node"]["db"] == compose_db_url(name)
        assert config["network"]["listen"] == f"0.0.0.0:{COMPOSE_P2P}"
        assert config["api"]["listen"] == f"0.0.0.0:{COMPOSE_API}"
        peers = config["network"]["peers"]
        assert set(peers) == set(node_services()) - {name}
        assert all(addr == f"{peer}:{COMPOSE_P2P}" for peer, addr in peers.items())
        env = NodeEnv.of(directory / name / compose_bundle.DB_ENV)
        assert env["POSTGRES_PASSWORD"] == env["PGPASSWORD"] and len(env["PGPASSWORD"]) >= 24
    passwords = {NodeEnv.of(directory / n / "db.env")["PGPASSWORD"] for n in node_services()}
    assert len(passwords) == len(node_services()), "each database has its own password"
    settings = NodeEnv.of(directory / compose_bundle.COMPOSE_ENV)
    assert int(settings["PARKTRACE_UID"]) != 0


def private_keys_in(folders: list[Path], owners: dict[bytes, str]) -> dict[str, str]:
    """File name -> owner of every private key among the files below `folders`, found by
    content (any name, any place), owners as `consortium_keys` names them."""
    found = {}
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            data = path.read_bytes()
            try:
                key = PrivateKey.from_pem(data)
            except Exception:  # not a key of the consortium's kind; and no other kind either
                assert b"PRIVATE KEY" not in data, f"{path}: a private key of unknown kind"
                continue
            found[str(path.relative_to(folder))] = owners.get(key.public_key.key, "unknown")
    return found


def test_no_node_mounts_the_ca_key_or_another_members_private_key(generated: Path) -> None:
    directory = generated / "var" / "compose"
    owners = consortium_keys(directory / "consortium")
    park = Consortium.load(directory / "consortium")
    orgs = {v.id: v.org for v, _ in park.genesis.validators}
    for name, svc in node_services().items():
        mounted = [host_path(generated, host) for host, _t, _m in bind_mounts(svc)]
        keys = private_keys_in(mounted, owners)
        assert set(keys.values()) == {orgs[name]}, f"{name} mounts {keys}"
        assert PrivateKey.load(directory / name / "node.key").public_key == next(
            v.public_key for v, _ in park.genesis.validators if v.id == name
        )
        print(f"{name}: mounts the keys {keys} and no other")


def test_the_key_check_finds_a_planted_key_whatever_its_name(
    generated: Path, tmp_path: Path
) -> None:
    """The check above is not vacuous: the CA key or another member's key, copied into a
    bundle under an innocent name, is found."""
    directory = generated / "var" / "compose"
    consortium = directory / "consortium"
    owners = consortium_keys(consortium)
    bundle = tmp_path / "park-committee-node"
    shutil.copytree(directory / "park-committee-node", bundle)
    shutil.copy(consortium / "keys" / "ca.key", bundle / "state" / "cache.bin")
    other = next((consortium / "keys" / "orgs" / "testing-centre").rglob("*.key"))
    shutil.copy(other, bundle / "backup.pem")
    keys = private_keys_in([bundle], owners)
    assert keys["state/cache.bin"] == "ca" and keys["backup.pem"] == "testing-centre"
    assert keys["node.key"] == "park-committee"


def test_init_compose_twice_keeps_every_password_and_key(generated: Path) -> None:
    directory = generated / "var" / "compose"
    before = {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}
    again = cli("cluster", "init", "--compose", "--dir", str(directory))
    assert again.returncode == 0, again.stderr
    after = {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}
    assert after == before


def test_the_build_context_carries_no_key_venv_or_var(tmp_path: Path) -> None:
    """The files `docker build` would send, as Docker's SDK applies .dockerignore."""
    shutil.copytree(ROOT, tmp_path / "repo", ignore=shutil.ignore_patterns(".git", ".venv", "var"))
    repo = tmp_path / "repo"
    # What a working checkout has lying around.
    for leftover in (".venv/bin/python", "var/compose/consortium/keys/ca.key", "node.db"):
        (repo / leftover).parent.mkdir(parents=True, exist_ok=True)
        (repo / leftover).write_text("x")
    (repo / "api" / "stray.key").write_text("-----BEGIN PRIVATE KEY-----")
    patterns = (repo / ".dockerignore").read_text().splitlines()
    sent = exclude_paths(str(repo), [p for p in patterns if p and not p.startswith("#")])
    assert "pyproject.toml" in sent and "devtools/cluster.py" in sent
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for pattern in packages["packages"]["find"]["include"]:
        package = pattern.rstrip("*")
        assert f"{package}/__init__.py" in sent, f"the image would lack the {package} package"
        assert f"COPY {package} {package}" in (ROOT / "Dockerfile").read_text(), package
    assert "web/templates" in {str(Path(p).parent) for p in sent}
    bad = [
        p
        for p in sent
        if p.startswith((".venv", "var/", "tests/", ".git")) or p.endswith((".key", ".db", ".env"))
    ]
    assert not bad, bad
    print(f"build context: {len(sent)} files")


def test_a_config_naming_neither_consortium_nor_bundle_files_is_one_clear_line(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "node.toml"
    bad.write_text(
        '[node]\nid = "park-committee-node"\ndb = "sqlite:///n.db"\ngenesis = "g.json"\n'
    )
    result = cli("node", "run", "--config", str(bad), timeout=60)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert message == (
        "error: [node] needs consortium, or all of genesis, key, certificate (a node bundle)"
    )
    assert "Traceback" not in result.stderr


# -- the bundles run, with the settings compose gives them ----------------------------------


class NodeEnv(dict[str, str]):
    @classmethod
    def of(cls, path: Path) -> NodeEnv:
        """KEY=VALUE lines of an env file."""
        lines = path.read_text().splitlines()
        return cls(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def local_environment(svc: dict[str, Any], bundle: Path, urls: dict[str, str]) -> dict[str, str]:
    """The environment compose gives a node, for a process on this machine: container
    paths point into the bundle, service names become loopback addresses."""
    env = {**os.environ, **NodeEnv.of(bundle / compose_bundle.DB_ENV)}
    for key, value in svc["environment"].items():
        value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))  # compose's defaults
        env[key] = value.replace(f"{compose_bundle.MOUNT}/", f"{bundle}/")
    env["PARKTRACE_AUDIT_NODES"] = ",".join(f"{n}={u}" for n, u in urls.items())
    env["PARKTRACE_SCAN_DB"] = f"sqlite:///{bundle / compose_bundle.STATE / 'scans.db'}"
    env["PARKTRACE_RESOLVER_HOST"] = "id.parktrace.example"
    return env


@dataclass
class BundleNet:
    dir: Path
    urls: dict[str, str]
    park: Consortium
    consortium: Path


@pytest.fixture(scope="module")
def bundles(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BundleNet]:
    """The four bundles alone (no consortium directory beside them), each run as a real
    `parktrace node run` process on loopback and SQLite, with the compose environment."""
    source = generated / "var" / "compose"
    run = tmp_path_factory.mktemp("bundles")
    p2p, api = cluster.free_ports(), cluster.free_ports()
    while abs(api - p2p) <= 5:
        api = cluster.free_ports()
    names = list(node_services())
    p2p_of = {n: f"127.0.0.1:{p2p + i + 1}" for i, n in enumerate(names)}
    urls = {n: f"http://127.0.0.1:{api + i + 1}" for i, n in enumerate(names)}
    processes = []
    for name in names:
        bundle = run / name
        shutil.copytree(source / name, bundle)
        (bundle / "node.toml").write_text(
            render(
                node_id=name,
                own_files=compose_bundle.OWN_FILES,
                data_dir=compose_bundle.STATE,
                db="sqlite:///state/node.db",
                listen=p2p_of[name],
                peers={n: a for n, a in p2p_of.items() if n != name},
                api_listen=urls[name].removeprefix("http://"),
                blocks=BlockConfig(max_txs=500, batch_ms=50, idle_ms=1000),
                consensus=FAST,
            )
        )
        with open(bundle / compose_bundle.STATE / "node.log", "ab") as log:
            processes.append(
                subprocess.Popen(
                    [str(CLI), *node_services()[name]["command"][:3], str(bundle / "node.toml")],
                    env=local_environment(node_services()[name], bundle, urls),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=run,
                )
            )
    try:
        deadline = time.monotonic() + 90
        for name in names:
            while cli("node", "health", "--url", urls[name], timeout=30).returncode != 0:
                log = (run / name / compose_bundle.STATE / "node.log").read_text()[-2000:]
                assert time.monotonic() < deadline, f"{name} never healthy: {log}"
                assert all(p.poll() is None for p in processes), f"{name} exited: {log}"
                time.sleep(0.3)
        yield BundleNet(run, urls, Consortium.load(source / "consortium"), source / "consortium")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def signed(net: BundleNet, method: str, url: str, org: str, body: Any = None) -> httpx.Response:
    holder = net.park.user(org)
    assert holder.key is not None
    raw = b"" if body is None else json.dumps(body).encode()
    with httpx.Client(timeout=60) as http:
        request = http.build_request(
            method,
            url,
            content=raw or None,
            headers={"content-type": "application/json"} if body is not None else {},
        )
        sign_request(request, Identity(holder.key, holder.fingerprint), raw)
        return http.send(request)


@pytest.mark.slow
def test_each_node_runs_from_its_bundle_alone(bundles: BundleNet) -> None:
    assert not (bundles.dir / "consortium").exists()
    health = cli("node", "health", "--url", next(iter(bundles.urls.values())))
    assert health.returncode == 0 and health.stdout.startswith("ok: height")
    heights = {}
    deadline = time.monotonic() + 60
    for name, url in bundles.urls.items():
        while True:
            info = httpx.get(f"{url}/healthz", timeout=10).json()
            if info["height"] >= 2 and len(info["peers"]) == 3:
                break
            assert time.monotonic() < deadline, f"{name} makes no progress: {info}"
            time.sleep(0.3)
        heights[name] = info["height"]
    # Only the state directory was written to.
    for name in bundles.urls:
        written = {p.name for p in (bundles.dir / name / compose_bundle.STATE).iterdir()}
        assert "signstate.json" in written and "node.db" in written
    print(f"heights from bundles alone: {heights}")


@pytest.mark.slow
def test_issuing_codes_works_with_the_compose_settings(bundles: BundleNet, tmp_path: Path) -> None:
    """The producer issues with the real CLI, sealing the batch key to the resolver key the
    node announces; another node, holding the same key from its own bundle, recognises
    the codes as genuine."""
    url = bundles.urls["mask-factory-node"]
    settings = httpx.get(f"{url}/v1/codes/settings", timeout=10).json()
    assert len(settings["resolverKeys"]) == 1
    issued = cli(
        "codes", "issue", "--gtin", MASK_GTIN, "--lot", "KN95-COMPOSE", "--count", "3",
        "--formats", "svg", "--out", str(tmp_path / "codes"), "--url", url,
        "--consortium", str(bundles.consortium), "--org", "ganzhou-mask-factory",
    )  # fmt: skip
    assert issued.returncode == 0, issued.stderr
    with open(tmp_path / "codes" / "codes.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    uri = next(v for v in rows[0].values() if v.startswith("https://"))
    other = bundles.urls["park-committee-node"]
    path = httpx.URL(uri).raw_path.decode()
    page = httpx.get(f"{other}{path}", headers={"Accept-Language": "zh"}, timeout=30)
    assert page.status_code == 200, page.text
    assert "正品码" in page.text


@pytest.mark.slow
def test_the_regulators_node_compares_the_chains_and_the_others_say_why_not(
    bundles: BundleNet,
) -> None:
    holder = bundles.park.user("market-supervision-bureau")
    assert holder.key is not None
    regulator = Identity(holder.key, holder.fingerprint)
    with AuditClient(bundles.urls["market-supervision-node"], identity=regulator) as audit:
        verdict = audit.compare()
    assert verdict["ok"] is True and verdict["diverging_nodes"] == [], verdict
    assert len(verdict["nodes"]) == 4
    refused = signed(
        bundles,
        "GET",
        f"{bundles.urls['testing-centre-node']}/v1/audit/compare",
        "market-supervision-bureau",
    )
    assert refused.status_code in range(400, 500) and "PARKTRACE_AUDIT" in refused.text


# -- with a Docker engine: build the image, bring the cluster up ----------------------------


def docker_unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "no docker client"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "docker info timed out"
    if info.returncode != 0:
        return f"no Docker engine (docker info: {(info.stderr or info.stdout).strip()[:200]})"
    compose = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    return None if compose.returncode == 0 else "docker compose plugin missing"


@pytest.mark.slow
def test_compose_builds_the_image_and_brings_the_cluster_up(tmp_path: Path) -> None:
    reason = docker_unavailable()
    if reason:
        pytest.skip(reason)
    project = tmp_path / "project"
    project.mkdir()
    # The repository's compose file, its build context made absolute.
    data = yaml.safe_load(COMPOSE_TEXT)
    for svc in data["services"].values():
        if "build" in svc:
            svc["build"] = str(ROOT)
    (project / "docker-compose.yml").write_text(yaml.safe_dump(data))
    assert (
        cli("cluster", "init", "--compose", "--dir", str(project / "var/compose")).returncode == 0
    )
    name = f"parktrace-test-{uuid.uuid4().hex[:8]}"
    compose = [
        "docker", "compose", "-p", name, "--project-directory", str(project),
        "--env-file", str(project / "var/compose/compose.env"),
    ]  # fmt: skip
    try:
        up = subprocess.run(
            [*compose, "up", "--build", "--wait", "--wait-timeout", "300"],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert up.returncode == 0, up.stderr[-3000:]
        for svc in node_services().values():
            port = svc["ports"][0].split(":")[1]
            deadline = time.monotonic() + 120
            while httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json()["height"] < 1:
                assert time.monotonic() < deadline
                time.sleep(1)
    finally:
        subprocess.run([*compose, "down", "-v"], capture_output=True, timeout=300)
