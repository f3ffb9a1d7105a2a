"""Reading bulk-load files (CSV rows or an EPCIS document) into checked parts, each event
labelled with where it came from ("line 17", "epcisBody.eventList[3]") so that a
refusal can be traced back to the file.

Checking is dominated by GS1 event hash IDs (about a millisecond an event in the
reference implementation), so large CSV files are checked by worker processes, a few
chunks ahead of the upload, in file order.
"""

from __future__ import annotations

import csv
import multiprocessing
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from traceability.epcis.csvformat import CsvChunk, read_csv
from traceability.epcis.document import CheckedDocument, check_document, parse_json


@dataclass
class Part:
    checked: CheckedDocument | None
    labels: list[str]  # one per event of `checked`
    unreadable: list[tuple[str, str, str]] = field(default_factory=list)  # label, code, why


@dataclass
class ImportPlan:
    path: Path
    total: int  # events (or rows) to go through
    namespaces: dict[str, str]
    chunk: int
    document: CheckedDocument | None = None  # an EPCIS document, checked when planned

    def parts(self, workers: int = 1) -> Iterator[Part]:
        """The file's events in checked parts, in order; `workers` > 1 checks CSV chunks
        in that many processes."""
        if self.document is not None:
            labels = [f"epcisBody.eventList[{i}]" for i in range(self.document.total)]
            yield Part(self.document, labels)
        elif workers > 1 and self.total > 2 * self.chunk:
            yield from self._csv_parts_parallel(workers)
        else:
            for chunk, unreadable in self._csv_chunks():
                checked = check_document(chunk.document) if chunk.lines else None
                yield Part(checked, [f"line {n}" for n in chunk.lines], unreadable)

    def _csv_chunks(self) -> Iterator[tuple[CsvChunk, list[tuple[str, str, str]]]]:
        with self.path.open(encoding="utf-8-sig", newline="") as stream:
            for chunk in read_csv(stream, self.namespaces, chunk=self.chunk):
                unreadable = [(f"line {n}", "invalid_csv", why) for n, why in chunk.errors]
                yield chunk, unreadable

    def _csv_parts_parallel(self, workers: int) -> Iterator[Part]:
        context = multiprocessing.get_context("spawn")  # no fork of a threaded parent
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            ahead: deque[tuple[CsvChunk, list, Future[CheckedDocument] | None]] = deque()
            for chunk, unreadable in self._csv_chunks():
                work = pool.submit(check_document, chunk.document) if chunk.lines else None
                ahead.append((chunk, unreadable, work))
                if len(ahead) > 2 * workers:
                    yield _part(*ahead.popleft())
            while ahead:
                yield _part(*ahead.popleft())


def _part(chunk: CsvChunk, unreadable: list, work: Future[CheckedDocument] | None) -> Part:
    checked = work.result() if work is not None else None
    return Part(checked, [f"line {n}" for n in chunk.lines], unreadable)


def plan_import(path: Path, namespaces: dict[str, str], *, chunk: int = 500) -> ImportPlan:
    """What importing `path` will go through (reads CSV headers / the document now, so a
    file that cannot be imported at all fails before anything is sent)."""
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as stream:
            reader = csv.reader(stream)
            from traceability.epcis.csvformat import check_header

            check_header(next(reader, None))
            total = sum(1 for _ in reader)
        return ImportPlan(path, total, namespaces, chunk)
    checked = check_document(parse_json(path.read_bytes()), max_events=None)
    return ImportPlan(path, checked.total, namespaces, chunk, checked)
