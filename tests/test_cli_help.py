"""`--help` of every command and sub-command, run through the installed `parktrace` entry
point: help is the first thing a user types, and one option text read as Rich markup
(`ORG[/USER]`) once made `parktrace serve --help` crash. The command list is walked from
the live Click tree, so a command added later is covered without editing this file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import typer.main

from cli.main import app

if TYPE_CHECKING:
    from typer._click.core import Command

#: The console script installed next to the interpreter running the tests (.venv/bin).
PARKTRACE = Path(sys.executable).with_name("parktrace")


def subcommands(command: Command) -> dict[str, Command]:
    """A group's commands by name; {} for a leaf. (Typer builds its own Click-style
    classes, so a group is known by its `commands`, not by a Click base class.)"""
    return dict(getattr(command, "commands", {}))


def command_paths(command: Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command reachable from `command`, groups included, as argv word tuples."""
    found = [path]
    for name, sub in sorted(subcommands(command).items()):
        found += command_paths(sub, (*path, name))
    return found


TREE = typer.main.get_command(app)
PATHS = command_paths(TREE)


def test_the_walk_finds_every_level_of_the_tree() -> None:
    groups = [name for name, sub in subcommands(TREE).items() if subcommands(sub)]
    leaves = [p for p in PATHS if not subcommands(_resolve(p))]
    # The root, its groups (consortium, node, cluster, codes, audit, receipt…), and their
    # nested groups (audit proof / recall / report) are all reached.
    assert len(groups) >= 5, groups
    assert any(len(p) == 3 for p in PATHS), "no nested sub-group command was reached"
    assert len(leaves) >= 30, leaves
    assert ("serve",) in PATHS


def _resolve(path: tuple[str, ...]) -> Command:
    command = TREE
    for name in path:
        command = subcommands(command)[name]
    return command


@pytest.mark.skipif(not PARKTRACE.exists(), reason="the parktrace entry point is not installed")
@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "parktrace")
def test_help_works(path: tuple[str, ...], tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
    result = subprocess.run(
        [str(PARKTRACE), *path, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "MarkupError" not in result.stderr, result.stderr
    assert result.stdout.startswith(f"Usage: parktrace {' '.join(path)}".rstrip()), result.stdout
    assert "--help" in result.stdout
    command = _resolve(path)
    # Each option a command declares is named in its help, so none was lost to markup.
    for param in command.params:
        if param.param_type_name == "option" and not getattr(param, "hidden", False):
            assert any(opt in result.stdout for opt in param.opts), (param.opts, result.stdout)
    for name in subcommands(command):
        assert name in result.stdout, (name, result.stdout)
