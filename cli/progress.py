"""The progress bar of a full-chain verification (`parktrace verify`, `parktrace audit
verify`): events checked of the total, the rate, and the time left, on stderr (so that
`--json` output stays clean), drawn only when stderr is a terminal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from cli.options import err


class RateColumn(ProgressColumn):
    """Events per second, as Rich measures it over the last updates."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} events/s" if speed else "– events/s", style="cyan")


class EventsColumn(ProgressColumn):
    """Events checked of the total (the total is known once the job has started)."""

    def render(self, task: Task) -> Text:
        total = f"{task.total:,.0f}" if task.total is not None else "?"
        return Text(f"{task.completed:,.0f}/{total} events")


class Bar:
    """One verification's bar: `update(events, total)` as often as there is news."""

    def __init__(self, progress: Progress, description: str) -> None:
        self.progress = progress
        self.task = progress.add_task(description, total=None)

    def update(self, events: int, total: int | None) -> None:
        self.progress.update(self.task, completed=events, total=total or None)


@contextmanager
def verification_bar(description: str = "verifying") -> Iterator[Bar]:
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        EventsColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("elapsed,"),
        TimeRemainingColumn(),
        TextColumn("left"),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    with progress:
        yield Bar(progress, description)
