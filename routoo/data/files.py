"""Reading the source files of routing data sets, with errors that name the file and row."""

from __future__ import annotations

import csv
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from routoo.errors import DataError

logger = logging.getLogger("routoo.data")

# Some CSV cells (few-shot prompts, long answers) exceed the csv module's 128 kB default.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def read_csv(path: Path, required: Sequence[str] = ()) -> list[dict[str, str]]:
    """All rows of a CSV file as dicts; raises ``DataError`` naming a missing column."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = reader.fieldnames or []
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    missing = [column for column in required if column not in columns]
    if missing:
        raise DataError(f"{path}: missing columns {missing}")
    return rows


def read_json(path: Path) -> Any:
    """A JSON file's content; raises ``DataError`` naming the file when it is not valid JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None


def read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line; ``DataError`` names ``file:line`` if malformed."""
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{number}: not valid JSON ({error.msg})") from None


def parse_bool(value: str, where: str) -> float:
    """``"True"``/``"False"`` (any case) as 1.0/0.0; ``DataError`` naming ``where`` otherwise."""
    text = value.strip().lower()
    if text in ("true", "1", "1.0"):
        return 1.0
    if text in ("false", "0", "0.0"):
        return 0.0
    raise DataError(f"{where}: expected True or False, got {value!r}")


def report_dropped(dataset: str, count: int, reason: str) -> None:
    """Log (at WARNING, so it shows by default) how many source rows a loader left out, and why."""
    if count:
        logger.warning("%s: dropped %d %s", dataset, count, reason)
