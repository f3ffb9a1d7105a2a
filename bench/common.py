"""What every benchmark script shares: the machine it ran on, the exact command, JSON
output, a dated row in `bench/RESULTS.md`, percentiles, and signed sample chains built
fast (transactions signed in a process pool, blocks certified on the spot by `DevChain`).

Scripts import it as `common` (Python puts the script's own directory first on sys.path).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "RESULTS.md"

if str(ROOT) not in sys.path:  # without the editable install (PYTHONPATH still wins)
    sys.path.append(str(ROOT))


# -- the machine and the command --------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int:
    """CPUs this process may run on (what `nproc` prints)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    return {
        "nproc": cores(),
        "cpu": cpu_model(),
        "memory_gib": memory_gib(),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


def machine_line(info: dict[str, Any]) -> str:
    return f"{info['nproc']}× {info['cpu']}, {info['memory_gib']} GiB, Python {info['python']}"


def command() -> str:
    """The command line that ran this script, as typed from the repository root."""
    python = Path(sys.executable)
    try:
        python_text = str(python.relative_to(ROOT))
    except ValueError:
        python_text = str(python)
    script = Path(sys.argv[0]).resolve()
    try:
        script_text = str(script.relative_to(ROOT))
    except ValueError:
        script_text = str(script)
    return shlex.join([python_text, script_text, *sys.argv[1:]])


# -- arguments, output, RESULTS.md -------------------------------------------------------------
def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes."""
    text = (doc or "").strip()
    p = argparse.ArgumentParser(
        description=text.splitlines()[0] if text else None,
        epilog="\n".join(text.splitlines()[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="a short smoke run on tiny sizes")
    p.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="markdown file the dated row is appended to (default: bench/RESULTS.md)",
    )
    p.add_argument("--no-record", action="store_true", help="print the JSON, append no row")
    return p


def emit(
    name: str,
    result: dict[str, Any],
    figures: dict[str, Any],
    args: argparse.Namespace,
    *,
    title: str,
) -> None:
    """Print `result` as JSON (with machine and command) and append a dated row."""
    info = machine()
    cmd = command()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    full = {"benchmark": name, "date": stamp, "machine": info, "command": cmd, **result}
    if getattr(args, "quick", False):
        full["quick"] = True
    print(json.dumps(full, indent=2, ensure_ascii=False))
    sys.stdout.flush()
    if not getattr(args, "no_record", False):
        label = " (quick)" if getattr(args, "quick", False) else ""
        append_row(
            args.results,
            name,
            title,
            {
                "date": stamp + label,
                "machine": machine_line(info),
                **{k: _cell(v) for k, v in figures.items()},
                "command": f"`{cmd}`",
            },
        )


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def append_row(path: Path, name: str, title: str, row: dict[str, str]) -> None:
    """Append `row` to the table of section `## name` of `path`, creating what is missing.

    A section's columns are fixed by its first row; a later row with other columns starts a
    new table under the same heading, so nothing recorded is ever rewritten.
    """
    heading = f"## {name}"
    header = "| " + " | ".join(row) + " |"
    rule = "|" + "|".join("---" for _ in row) + "|"
    line = "| " + " | ".join(row.values()) + " |"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    if not lines:
        lines = ["# Benchmark results", "", "Rows are appended by the scripts in `bench/`."]
    try:
        start = lines.index(heading)
    except ValueError:
        lines += ["", heading, "", title, "", header, rule, line]
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        tables = [i for i in range(start, end) if lines[i].startswith("| ")]
        last_header = max((i for i in tables if i + 1 < end and lines[i + 1] == rule), default=-1)
        if last_header >= 0 and lines[last_header] == header:
            last_row = max(i for i in range(last_header, end) if lines[i].startswith("|"))
            lines.insert(last_row + 1, line)
        else:
            while end > start + 1 and not lines[end - 1].strip():
                end -= 1
            lines[end:end] = ["", header, rule, line]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# -- statistics --------------------------------------------------------------------------------
def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def ratio(a: float | None, b: float | None, digits: int = 3) -> float | None:
    return None if a is None or not b else round(a / b, digits)


# -- signed sample transactions and chains ------------------------------------------------------
_CONSORTIUM: dict[str, Any] = {}


def load_consortium(directory: Path) -> Any:
    """The consortium written in `directory`, loaded once per process."""
    from ledger.consortium import Consortium

    key = str(directory)
    if key not in _CONSORTIUM:
        _CONSORTIUM[key] = Consortium.load(directory)
    return _CONSORTIUM[key]


def sample_consortium(directory: Path) -> Any:
    """The park's sample consortium (seeded keys), written to `directory` so that worker
    processes sign with exactly the same certificates as this one."""
    from ledger.consortium import Consortium

    Consortium.sample(seed=b"parktrace-bench").write(directory, force=True)
    return load_consortium(directory)


def _sign_range(job: tuple[str, int, int, str]) -> list[Any]:
    """Sample transactions start..end-1, in a worker process: as (id, canonical JSON)
    (`form` "json"), or as Transaction objects with ids and hashes computed, their
    signatures verified against the signer's registered key ("verified") or not
    ("objects")."""
    directory, start, end, form = job
    from devtools.samples import sample_event_tx

    consortium = load_consortium(Path(directory))
    members = consortium.genesis.membership().members
    out: list[Any] = []
    for i in range(start, end):
        tx = sample_event_tx(consortium, i)
        if form == "json":
            out.append((tx.id, tx.canonical().decode()))
            continue
        if form == "verified":
            tx.verify_signature(members[tx.signer].public_key)  # raises if it does not verify
        tx.leaf_hash()
        out.append(tx)
    return out


def _signed(
    directory: Path, start: int, count: int, form: str, workers: int | None, chunk: int
) -> Iterator[list[Any]]:
    workers = workers or cores()
    end = start + count
    jobs = [(str(directory), i, min(i + chunk, end), form) for i in range(start, end, chunk)]
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield _sign_range(job)
        return
    with ProcessPoolExecutor(workers) as pool:
        yield from pool.map(_sign_range, jobs)


def signed_envelopes(
    directory: Path, start: int, count: int, *, workers: int | None = None, chunk: int = 2000
) -> Iterator[list[tuple[str, str]]]:
    """(id, canonical JSON) of sample transactions start..start+count-1 of the consortium
    in `directory`, signed in a process pool, one list per chunk, in order: signing
    (~0.2 ms a transaction) is not what a benchmark should be waiting for."""
    return _signed(directory, start, count, "json", workers, chunk)


def build_chain(
    store: Any,
    directory: Path,
    events: int,
    *,
    per_block: int = 1000,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    chain: Any = None,
    first: int = 0,
    verify: bool = True,
) -> Any:
    """A fully signed chain of `events` sample EPCIS events (sample numbers first, first+1,
    …) of the consortium in `directory`, in `store`, `per_block` to a block, every block
    certified by a quorum through `DevChain` (which checks each block like a node does
    before storing it), going on from `chain` if given. Returns the DevChain.

    Transactions are signed in a process pool, and each signature is verified there, once:
    those verdicts seed this process's signature cache for the duration of the build, so
    that DevChain's check does not verify it a second time here. The cache is turned off
    again before returning: whatever verifies the chain afterwards checks every signature.
    `verify=False` skips the workers' check too (signatures this script just made; for
    fixtures too large to spend a verification per event on, see bench/resolver.py).
    """
    from ledger.tx import _remember_verified, _verified_token, cache_verified_signatures
    from nodes.devchain import DevChain

    consortium = load_consortium(directory)
    members = consortium.genesis.membership().members
    if chain is None:
        chain = DevChain(consortium.genesis, consortium.validator_keys, store)
    made = 0
    pending: list[Any] = []
    cache_verified_signatures(4 * per_block + 4096)
    try:
        form = "verified" if verify else "objects"
        for txs in _signed(directory, first, events, form, workers, 2000):
            for tx in txs:  # verified by the worker that signed it (unless verify=False)
                _remember_verified(_verified_token(tx, members[tx.signer].public_key))
            pending += txs
            while len(pending) >= per_block or (pending and made + len(pending) == events):
                block, pending = pending[:per_block], pending[per_block:]
                chain.commit_block(block)
                made += len(block)
                if progress:
                    progress(made)
    finally:
        cache_verified_signatures(0)
    return chain


class Stopwatch:
    """Wall and CPU time of this process over a `with` block."""

    def __enter__(self) -> Stopwatch:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0


def log(message: str) -> None:
    """Progress on stderr (stdout is the JSON)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
