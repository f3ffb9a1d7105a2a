"""`parktrace consortium …`: bootstrap a consortium and show who is in it.

Bad input (missing or malformed config, an existing directory, a wrong passphrase) ends
with one clear line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.options import fail, read_passphrase
from ledger.consortium import ConsortiumConfig, build_consortium
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.identity import load_certificate

app = typer.Typer(
    help="Consortium membership: root CA, member certificates, genesis.",
    no_args_is_help=True,
)


def _passphrase(encrypt: bool, passphrase_file: Path | None) -> bytes | None:
    if passphrase_file is not None:
        passphrase = read_passphrase(passphrase_file)
        if not passphrase:
            fail(f"passphrase file {passphrase_file} is empty")
        return passphrase
    if encrypt:
        text = typer.prompt(
            "Passphrase for the private keys", hide_input=True, confirmation_prompt=True
        )
        return text.encode("utf-8")
    return None


@app.command()
def init(
    config: Annotated[Path, typer.Option("--config", "-c", help="consortium TOML file")],
    out: Annotated[Path, typer.Option("--out", "-o", help="directory to create")],
    force: Annotated[bool, typer.Option(help="overwrite a non-empty --out directory")] = False,
    encrypt: Annotated[
        bool, typer.Option(help="encrypt every private key with a passphrase (prompted)")
    ] = False,
    passphrase_file: Annotated[
        Path | None, typer.Option(help="read the key passphrase from this file (implies encrypt)")
    ] = None,
) -> None:
    """Create the root CA, member and validator keys and certificates, and genesis.json."""
    try:
        cfg = ConsortiumConfig.load(config)
    except FileNotFoundError:
        fail(f"config file {config} not found")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read config file {config}: {exc}")
    except (LedgerError, tomllib.TOMLDecodeError) as exc:
        fail(str(exc))
    if out.exists() and not out.is_dir():
        fail(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        fail(f"{out} already exists and is not empty; use --force to overwrite it")
    passphrase = _passphrase(encrypt, passphrase_file)
    try:
        consortium = build_consortium(cfg)
        consortium.write(out, passphrase, force=force)
    except (LedgerError, OSError, ValueError) as exc:
        fail(str(exc))
    console = Console()
    _print_summary(console, consortium.genesis)
    console.print(
        f"\nWrote [bold]{escape(str(out))}[/]: genesis.json, certs/ and keys/ "
        f"({'encrypted' if passphrase else 'unencrypted'}, mode 0600). "
        "Give keys/orgs/<org>/ to each organisation and take keys/ca.key offline."
    )


@app.command()
def show(
    directory: Annotated[Path, typer.Argument(help="consortium directory or a genesis.json")],
) -> None:
    """Print the organisations, their roles and certificates, validators and policy."""
    path = directory / "genesis.json" if directory.is_dir() else directory
    try:
        genesis = Genesis.load(path)
    except FileNotFoundError:
        fail(f"no genesis.json at {path}")
    except OSError as exc:
        fail(f"cannot read {path}: {exc}")
    except LedgerError as exc:
        fail(f"{path}: {exc}")
    console = Console()
    _print_summary(console, genesis)
    _print_policy(console, genesis)


def _row(table: Table, *cells: str) -> None:
    """Cells are data, not rich markup: a '[role]' must print as written."""
    table.add_row(*(escape(c) for c in cells))


def _print_summary(console: Console, genesis: Genesis) -> None:
    ca = load_certificate(genesis.ca_certificate)
    console.print(f"[bold]Chain[/] {escape(genesis.chain_id)}   [bold]genesis[/] {genesis.hash}")
    console.print(
        f"[bold]Genesis time[/] {genesis.genesis_time}   "
        f"[bold]CA[/] {escape(ca.subject.rfc4514_string())} "
        f"(valid until {ca.not_valid_after_utc:%Y-%m-%d})"
    )
    members = Table(title="Members", show_lines=True)
    for column in ("Organisation", "名称", "Id", "Roles", "GS1 prefixes", "Certificates"):
        members.add_column(column)
    for org, creds in genesis.organizations:
        certs = "\n".join(
            f"{c.common_name} ({', '.join(c.roles)}) {c.fingerprint[:16]}… "
            f"until {c.not_after:%Y-%m-%d}"
            for c in creds
        )
        prefixes = ", ".join(org.gs1_prefixes) or "-"
        _row(members, org.name, org.name_zh, org.id, ", ".join(org.roles), prefixes, certs or "-")
    console.print(members)
    quorum = genesis.validator_set().quorum
    validators = Table(title=f"Validators ({len(genesis.validators)}, quorum {quorum})")
    for column in ("Id", "Organisation", "Key", "Certificate"):
        validators.add_column(column)
    for validator, cred in genesis.validators:
        key = validator.public_key
        _row(
            validators,
            validator.id,
            validator.org,
            f"{key.scheme}:{key.fingerprint[:16]}…",
            f"{cred.fingerprint[:16]}…",
        )
    console.print(validators)
    console.print(
        f"[bold]Membership changes[/] need approval by {escape(genesis.approval.describe())}"
    )


def _print_policy(console: Console, genesis: Genesis) -> None:
    policy = genesis.policy
    table = Table(title="Write policy")
    table.add_column("Transaction / bizStep")
    table.add_column("Allowed roles")
    for tx_type, roles in policy.transactions.items():
        _row(table, tx_type, ", ".join(roles) or "nobody")
    for step, roles in policy.biz_steps.items():
        _row(table, f"  epcis.event · {step}", ", ".join(roles) or "nobody")
    _row(table, "  epcis.event · (other)", ", ".join(policy.unlisted_biz_steps) or "nobody")
    console.print(table)
