"""What every `parktrace` command shares: the identity and node options, loading the
member identity they name, and `fail`, the one way a command ends in error (one line on
stderr, exit status 2 for bad input or a refusal unless told otherwise)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

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


def read_passphrase(path: Path | None) -> bytes | None:
    """The passphrase held in `path` (its first line), None without a file, or exit."""
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n").encode()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")


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
    passphrase = read_passphrase(passphrase_file)
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


@dataclass(frozen=True)
class Signer:
    """The member identity the identity options name, loaded only when a command signs."""

    key: Path | None = None
    cert: Path | None = None
    consortium: Path | None = None
    org: str | None = None
    user: str | None = None
    passphrase_file: Path | None = None

    def identity(self) -> Identity:
        return load_identity(
            self.key, self.cert, self.consortium, self.org, self.user, self.passphrase_file
        )


_SIGNER_OPTIONS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=option)
    for name, option in (
        ("key", KeyFile),
        ("cert", CertFile),
        ("consortium", ConsortiumDir),
        ("org", Org),
        ("user", User),
        ("passphrase_file", Passphrase),
    )
]
Command = TypeVar("Command", bound=Callable[..., Any])


def with_signer(command: Command) -> Command:
    """Give `command` the identity options; it receives them as one `signer: Signer`.

    Every signing command takes the same six options; declaring them once keeps their names,
    help and environment variables the same everywhere."""
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "signer"]

    @functools.wraps(command)
    def run(**options: Any) -> Any:
        signer = Signer(**{p.name: options.pop(p.name) for p in _SIGNER_OPTIONS})
        return command(signer=signer, **options)

    run.__signature__ = signature.replace(parameters=[*own, *_SIGNER_OPTIONS])  # type: ignore[attr-defined]
    return run  # type: ignore[return-value]
