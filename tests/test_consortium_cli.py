"""`parktrace consortium init|show`: files, modes, an outside verifier, and clear errors."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.consortium import app
from ledger.consortium import SAMPLE_CONFIG, Consortium
from ledger.errors import EncodingError
from ledger.genesis import Genesis
from ledger.timefmt import now

runner = CliRunner()
WIDE = {"COLUMNS": "200"}


def invoke(*args: str, **kwargs):
    return runner.invoke(app, list(args), env=WIDE, **kwargs)


@pytest.fixture(scope="module")
def park_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("consortium") / "park"
    result = invoke("init", "--config", str(SAMPLE_CONFIG), "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_writes_the_documented_layout(park_dir: Path) -> None:
    assert (park_dir / "genesis.json").is_file()
    assert (park_dir / "certs" / "ca.pem").is_file()
    assert (park_dir / "keys" / "ca.key").is_file()
    assert (park_dir / "certs/orgs/gannan-orchard-coop/users/admin.pem").is_file()
    assert (park_dir / "keys/orgs/gannan-orchard-coop/users/admin.key").is_file()
    for node in ("park-committee", "market-supervision-bureau", "testing-centre"):
        assert list((park_dir / "keys/orgs" / node / "validators").glob("*.key"))
    assert (park_dir / "keys/orgs/ganzhou-mask-factory/validators/mask-factory-node.key").is_file()
    assert "keys/orgs/<org>/users/<user>.key" in (park_dir / "README.txt").read_text()


def test_private_keys_are_owner_only(park_dir: Path) -> None:
    keys = list((park_dir / "keys").rglob("*.key"))
    assert len(keys) == 1 + 10 + 4  # CA, one user per organisation, four validator nodes
    for key in keys:
        assert _mode(key) == 0o600, key
        assert b"BEGIN PRIVATE KEY" in key.read_bytes()
    for folder in [park_dir / "keys", *(p for p in (park_dir / "keys").rglob("*") if p.is_dir())]:
        assert _mode(folder) == 0o700, folder


def test_written_consortium_loads_and_signs(park_dir: Path) -> None:
    park = Consortium.load(park_dir)
    genesis = Genesis.load(park_dir / "genesis.json")
    assert park.genesis == genesis and park.ca_key is not None
    assert set(park.validator_keys) == {v.id for v, _ in genesis.validators}
    tx = park.sign_tx("testing-centre", "epcis.event", {"event": {"bizStep": "inspecting"}})
    assert genesis.membership().check_tx(tx, 1, now()).org == "testing-centre"


def test_openssl_verifies_every_certificate(park_dir: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: cannot cross-check with an outside verifier")
    certs = sorted(str(p) for p in (park_dir / "certs" / "orgs").rglob("*.pem"))
    assert len(certs) == 14
    ca = str(park_dir / "certs" / "ca.pem")
    done = subprocess.run(
        [openssl, "verify", "-x509_strict", "-CAfile", ca, *certs],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": OK") == 14
    foreign = Consortium.sample(seed=b"another park")
    stranger = park_dir.parent / "stranger.pem"
    stranger.write_text(foreign.user("gannan-orchard-coop").certificate)
    refused = subprocess.run(
        [openssl, "verify", "-CAfile", ca, str(stranger)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert refused.returncode != 0


def test_show_prints_members_roles_and_validators(park_dir: Path) -> None:
    result = invoke("show", str(park_dir))
    assert result.exit_code == 0, result.output
    out = result.output
    for text in (
        "Members",
        "Market Supervision Bureau",
        "市场监督管理局",
        "赣南脐橙种植专业合作社",
        "regulator, validator",
        "inspector, validator",
        "Validators (4, quorum 3)",
        "mask-factory-node",
        "1 of [market-supervision-bureau]",
        "epcis.event · inspecting",
        "6907890, 697512300",  # the mask factory's prefixes
        "membership.set_prefixes",
    ):
        assert text in out, text
    assert invoke("show", str(park_dir / "genesis.json")).exit_code == 0


def test_encrypted_keys(tmp_path: Path) -> None:
    secret = tmp_path / "pass.txt"
    secret.write_text("橙子 and 三七\n")
    out = tmp_path / "park"
    result = invoke(
        "init", "-c", str(SAMPLE_CONFIG), "-o", str(out), "--passphrase-file", str(secret)
    )
    assert result.exit_code == 0, result.output
    key = out / "keys/orgs/wenshan-growers/users/admin.key"
    assert b"BEGIN ENCRYPTED PRIVATE KEY" in key.read_bytes() and _mode(key) == 0o600
    park = Consortium.load(out, "橙子 and 三七".encode())
    assert park.user_key("wenshan-growers")[0].public_key is not None
    with pytest.raises(EncodingError, match="cannot load private key"):
        Consortium.load(out)


def test_prompted_passphrase(tmp_path: Path) -> None:
    out = tmp_path / "park"
    result = invoke("init", "-c", str(SAMPLE_CONFIG), "-o", str(out), "--encrypt", input="pw\npw\n")
    assert result.exit_code == 0, result.output
    assert b"ENCRYPTED" in (out / "keys" / "ca.key").read_bytes()


def _error(result) -> str:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # a message, never a traceback
    assert "Traceback" not in result.output
    return result.output


def test_bad_input_gives_clear_errors(tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    assert "config file nope.toml not found" in _error(
        invoke("init", "--config", "nope.toml", "--out", out)
    )
    bad = tmp_path / "bad.toml"
    bad.write_text("chain_id = [unclosed\n")
    assert "not valid TOML" in _error(invoke("init", "--config", str(bad), "--out", out))
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(
        SAMPLE_CONFIG.read_text(encoding="utf-8").replace(
            'roles = ["logistics"]', 'roles = ["trucker"]'
        )
    )
    message = _error(invoke("init", "--config", str(wrong), "--out", out))
    assert "organizations[8].roles: unknown role(s) trucker" in message
    sample = SAMPLE_CONFIG.read_text(encoding="utf-8")
    short = tmp_path / "short.toml"
    short.write_text(sample.replace('gs1_prefixes = ["6901234"]', 'gs1_prefixes = ["69012"]'))
    message = _error(invoke("init", "--config", str(short), "--out", out))
    assert "'69012' is not a GS1 Company Prefix (6 to 12 digits)" in message
    shared = tmp_path / "shared.toml"
    shared.write_text(sample.replace('gs1_prefixes = ["6904567"]', 'gs1_prefixes = ["6901234"]'))
    message = _error(invoke("init", "--config", str(shared), "--out", out))
    assert "GS1 Company Prefix(es) held by two organisations: 6901234" in message
    assert "no genesis.json" in _error(invoke("show", str(tmp_path / "missing")))
    assert "exists and is not a directory" in _error(
        invoke("init", "--config", str(SAMPLE_CONFIG), "--out", str(bad))
    )
    junk = tmp_path / "junk.json"
    junk.write_text('{"chain_id": "x"}')
    assert "genesis: missing field(s)" in _error(invoke("show", str(junk)))


def test_existing_directory_needs_force(park_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "again"
    shutil.copytree(park_dir, target)
    old = Genesis.load(target / "genesis.json").hash
    message = _error(invoke("init", "-c", str(SAMPLE_CONFIG), "-o", str(target)))
    assert "already exists and is not empty; use --force" in message
    assert Genesis.load(target / "genesis.json").hash == old  # nothing was touched
    result = invoke("init", "-c", str(SAMPLE_CONFIG), "-o", str(target), "--force")
    assert result.exit_code == 0, result.output
    assert Genesis.load(target / "genesis.json").hash != old
