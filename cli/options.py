"""What every `parktrace` command shares: the identity and node options, loading the
member identity they name, and `fail`, the one way a command ends in error (one line on
stderr, exit status 2 for bad input or a refusal unless told otherwise)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from ledger.errors import LedgerError
from sdk.signing import Identity

#: stderr, soft-wrapped so that a refusal stays one line however long it is.
err = Console(stderr=True, soft_wrap=True)

Url = Annotated[str, typer.Option("--url", envvar="PARKTRACE_URL", help="the node's API")]
KeyFile = Annotated[
    Path | None, typer.Option("--key", envvar="PARKTRACE_KEY", help="your private key (PEM)")
]
CertFile = Annotated[
    Path | None,
    typer.Option("--cert", envvar="PARKTRACE_CERT", help="your member certificate (PEM)"),
]
ConsortiumDir = Annotated[
    Path | None,
    typer.Option(
        "--consortium", envvar="PARKTRACE_CONSORTIUM", help="consortium directory with your keys"
    ),
]
Org = Annotated[
    str | None, typer.Option("--org", envvar="PARKTRACE_ORG", help="your organisation id")
]
User = Annotated[str | None, typer.Option("--user", help="user within --org (default: first)")]
Passphrase = Annotated[
    Path | None, typer.Option("--passphrase-file", help="file holding the key passphrase")
]
Wait = Annotated[float, typer.Option("--wait", help="seconds to wait for commit (0: don't)")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def load_identity(
    key: Path | None,
    cert: Path | None,
    consortium: Path | None,
    org: str | None,
    user: str | None,
    passphrase_file: Path | None,
) -> Identity:
    """The member identity the common options name (every signing CLI command's), or exit
    with a clear message."""
    passphrase = None
    if passphrase_file is not None:
        try:
            passphrase = passphrase_file.read_text(encoding="utf-8").rstrip("\r\n").encode()
        except OSError as exc:
            fail(f"cannot read {passphrase_file}: {exc.strerror}")
    try:
        if key is not None and cert is not None:
            return Identity.from_files(key, cert, passphrase)
        if consortium is not None and org is not None:
            return Identity.from_consortium(consortium, org, user, passphrase)
    except LedgerError as exc:
        fail(exc.message)
    except (OSError, ValueError, TypeError) as exc:
        fail(f"cannot load your key: {exc}")
    fail("signing needs your identity: --key and --cert, or --consortium and --org")
