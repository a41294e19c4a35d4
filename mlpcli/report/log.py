"""A training log: one row per epoch, written as the epoch ends, as CSV or JSON Lines.

Each row is flushed as it is written, so a log can be followed while training runs (`tail
-f`) and holds every finished epoch of a run that was stopped. A resumed run appends. The
file is opened with the first row: a run that fails before its first epoch leaves none.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..io.run_meta import EPOCH_FIGURES

COLUMNS = ("epoch", *EPOCH_FIGURES)


class EpochLog:
    """Rows of COLUMNS in `path`: JSON Lines when its name ends in .jsonl, else CSV.
    `append` adds to an existing log (a resumed run); otherwise the file starts anew."""

    def __init__(self, path: str | Path, append: bool = False):
        self.path, self.append = Path(path), append
        self.json = self.path.suffix.lower() == ".jsonl"
        self.file = None

    def _open(self) -> None:
        has_rows = self.append and self.path.is_file() and self.path.stat().st_size > 0
        self.file = open(self.path, "a" if self.append else "w", encoding="utf-8", newline="")
        if not self.json and not has_rows:
            self._write(",".join(COLUMNS))

    def write(self, record: dict) -> None:
        """The epoch's record from training (a missing figure, as validation's when there is
        no validation split, is left empty in CSV and null in JSON); OSError when the file
        cannot take it (a full disk)."""
        if self.file is None:
            self._open()
        row = {name: record.get(name) for name in COLUMNS}
        if self.json:
            self._write(json.dumps(row))
            return
        text = io.StringIO()
        csv.writer(text, lineterminator="").writerow(["" if v is None else v for v in row.values()])
        self._write(text.getvalue())

    def _write(self, line: str) -> None:
        self.file.write(line + "\n")
        self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()

    def __enter__(self) -> EpochLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_log(path: str | Path) -> list[dict]:
    """The rows of a log EpochLog wrote, as dicts of numbers (None where empty)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    rows = list(csv.DictReader(io.StringIO(text)))
    return [{k: (float(v) if v not in ("", None) else None) for k, v in r.items()} for r in rows]
