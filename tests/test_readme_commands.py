"""The README's commands, run exactly as a new user runs them: from the root of a fresh
copy of the repository, with their default arguments and relative paths.

`make demo | tee demo.log` creates the copy's own virtualenv, brings the consortium up on
its default ports and prints the pages, the regulator's commands and a QR code; the tour's
commands are pasted in order against it; Ctrl-C (SIGINT to the process group, after the
pipe's reader died) leaves no process behind; a second `make demo` reuses the chain and
`parktrace demo --reset` starts over. Then the "Running a consortium" commands.

The demo's defaults point its codes at this machine's LAN address. This workplace allows
test traffic to loopback only, so the test fetches each printed URL at 127.0.0.1 (the nodes
listen on every interface, so it is the same server) after checking the URL's scheme, port
and path.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import zxingcpp
from PIL import Image

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
DEMO_PORTS = [*range(8601, 8605), *range(26601, 26605)]
#: How long a fresh copy may take to create its virtualenv (pip, from its cache).
INSTALL_SECONDS = 600
#: Issue's bound: from `parktrace demo` starting to the three pages answering.
READY_SECONDS = 120


def readme_blocks(section: str) -> list[str]:
    """Each shell command of a README section, continuation lines joined."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", body, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line:
                commands.append(line)
    return commands


def fresh_copy(target: Path) -> Path:
    """The repository as `git clone` would give it: the files git tracks (and new files it
    does not ignore), nothing else: no .venv, no var/."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def user_env() -> dict[str, str]:
    """The user's environment: no ParkTrace settings, no virtualenv of the test run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARKTRACE_", "PYTEST"))}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p
    )
    return env


def loopback(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"127.0.0.1:{parts.port}"))


class Session:
    """A shell pipeline in its own process group, as a terminal runs it."""

    def __init__(self, command: str, cwd: Path, log: Path) -> None:
        self.log = log
        self.out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            ["bash", "-c", command],
            cwd=cwd,
            env=user_env(),
            stdin=subprocess.DEVNULL,
            stdout=self.out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, marker: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker in self.text():
                return self.text()
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError(f"no {marker!r} within {timeout:.0f}s:\n{self.text()[-4000:]}")

    def interrupt(self, timeout: float = 60) -> int:
        """Ctrl-C: SIGINT to every process of the group."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout)
        finally:
            self.out.close()


def node_pids(root: Path) -> list[int]:
    return [int(p.read_text()) for p in root.glob("*/node.pid")]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[-1].startswith("Z"))


def run(command: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def decode_terminal_qr(output: str) -> list[str]:
    """Decode the QR code the demo drew in the terminal, two modules a character."""
    lines = output.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("The mask's code")) + 1
    rows = []
    for line in lines[first:]:
        if not line or not set(line) <= set("█▀▄ \xa0"):  # qrcode's blank is U+00A0
            break
        rows.append(line)
    scale = 8
    image = Image.new("L", (len(rows[0]) * scale, len(rows) * 2 * scale), 0)
    for y, row in enumerate(rows):
        for x, char in enumerate(row):
            # Printed inverted (light on dark): ink is a light module.
            for half, light in ((0, char in "█▀"), (1, char in "█▄")):
                if light:
                    top = (2 * y + half) * scale
                    image.paste(255, (x * scale, top, (x + 1) * scale, top + scale))
    return [r.text for r in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    for port in DEMO_PORTS:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                pytest.fail(f"port {port} is taken: stop the demo or cluster running here first")
    root = fresh_copy(tmp_path_factory.mktemp("fresh-clone"))
    yield root
    for pid in node_pids(root / "var" / "demo") + node_pids(root / "var" / "cluster"):
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_make_demo_tour_and_ctrl_c_exactly_as_the_readme_says(clone: Path) -> None:
    demo_dir = clone / "var" / "demo"
    session = Session("make demo | tee demo.log", clone, clone.parent / "terminal.log")
    try:
        session.wait_for(".venv/bin/parktrace demo", INSTALL_SECONDS)
        started = time.monotonic()
        output = session.wait_for("demo ready", READY_SECONDS)
        pages = re.findall(r"^\s+(https?://\S+/01/\S+)$", output, flags=re.M)
        assert len(pages) == 3, output
        with httpx.Client(timeout=30, headers={"Accept-Language": "en"}) as http:
            for page in pages:
                assert urlsplit(page).scheme == "http" and urlsplit(page).port == 8601
                answer = http.get(loopback(page))
                assert answer.status_code == 200, page
                assert "recorded on the park" in answer.text, page
            assert time.monotonic() - started < READY_SECONDS
            docs = re.search(r"API docs\s+(\S+)", output)
            assert docs and http.get(loopback(docs.group(1))).status_code == 200
            nodes = re.search(r"Nodes\s+(.+)", output)
            assert nodes is not None
            for url in nodes.group(1).split():
                assert http.get(f"{url}/healthz").status_code == 200, url
            # The QR code drawn in the terminal is the mask's code, served as printed.
            code = re.search(r"The mask's code, (\S+):", output)
            assert code is not None
            assert decode_terminal_qr(output) == [code.group(1)]
            assert urlsplit(code.group(1)).scheme == "http"
            scanned = http.get(loopback(code.group(1)))
            assert scanned.status_code == 200 and "KN95" in scanned.text
        # The regulator's commands, as printed (with the virtualenv's parktrace).
        printed = re.findall(r"^\s+(parktrace (?:verify|audit) .+)$", output, flags=re.M)
        assert len(printed) == 2, output
        for command in printed:
            done = run(f".venv/bin/{command}", clone)
            assert done.returncode == 0, (command, done.stdout, done.stderr)
        # The tour, pasted in order.
        tour = readme_blocks("A five-minute tour")
        assert len(tour) >= 6
        for command in tour:
            done = run(command, clone)
            assert done.returncode == 0, (command, done.stdout, done.stderr)
        assert (clone / "var" / "harvest-receipt.json").exists()
        ignored = run("git status --porcelain --ignored=no 2>/dev/null || true", clone)
        assert "harvest-receipt" not in ignored.stdout
        pids = node_pids(demo_dir)
        assert len(pids) == 4 and all(alive(p) for p in pids)
        # Ctrl-C after the pipe's reader died (tee is gone before the demo hears of it).
        subprocess.run(["pkill", "-KILL", "-g", str(session.process.pid), "-x", "tee"])
        time.sleep(0.5)
    finally:
        session.interrupt()
    left = [p for p in pids if alive(p)]
    assert not left, f"node processes left behind: {left}\n{session.text()[-2000:]}"
    assert not [p for p in _group(session.process.pid)], "processes of the pipeline left"

    # A second `make demo` reuses the chain.
    height = _height(clone)
    again = Session("make demo", clone, clone.parent / "terminal-2.log")
    try:
        output = again.wait_for("demo ready", READY_SECONDS)
        assert "reusing the recorded histories" in output
        assert "recording the three cases" not in output
        assert httpx.get("http://127.0.0.1:8601/healthz").json()["height"] >= height
    finally:
        again.interrupt()
    assert not [p for p in node_pids(demo_dir) if alive(p)]

    # `parktrace demo --reset` starts over.
    reset = Session(".venv/bin/parktrace demo --reset", clone, clone.parent / "terminal-3.log")
    try:
        output = reset.wait_for("demo ready", READY_SECONDS)
        assert "recording the three cases" in output
        assert httpx.get("http://127.0.0.1:8601/healthz").json()["height"] < height
    finally:
        assert reset.interrupt() == 0
    assert not [p for p in node_pids(demo_dir) if alive(p)]


def test_running_a_consortium_exactly_as_the_readme_says(clone: Path) -> None:
    if not (clone / ".venv" / "bin" / "parktrace").exists():
        assert run("make install", clone, timeout=INSTALL_SECONDS).returncode == 0
    up, status, down = readme_blocks("Running a consortium")
    done = run(up, clone, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    pids = node_pids(clone / "var" / "cluster")
    assert len(pids) == 4 and all(alive(p) for p in pids)
    done = run(status, clone)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("http://127.0.0.1:860") == 4
    done = run(down, clone)
    assert done.returncode == 0 and done.stdout.count("stopped") == 4, done.stdout
    assert not [p for p in pids if alive(p)]
    done = run(status, clone)
    assert done.returncode == 1 and done.stdout.count("down") == 4


def _height(clone: Path) -> int:
    done = run(".venv/bin/parktrace verify --db var/demo/park-committee-node/node.db --json", clone)
    assert done.returncode == 0, done.stderr
    return int(re.search(r'"head_height": (\d+)', done.stdout).group(1))  # type: ignore[union-attr]


def _group(pgid: int) -> list[int]:
    """Live processes of process group `pgid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found
