"""A disk cache for slow-to-build data: numpy arrays in safetensors plus a JSON document, never pickle.

An entry is a folder named by a key that hashes what it was built from (source file sizes
and modification times, a loader version), so a changed source or loader misses the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from routoo.data.files import logger
from routoo.paths import cache_root

ARRAYS_FILE = "arrays.safetensors"
DOCUMENT_FILE = "document.json"


def source_key(kind: str, version: str, files: Sequence[Path]) -> str:
    """A cache key for ``kind`` built by loader ``version`` from ``files`` (by size and mtime)."""
    digest = hashlib.sha256(f"{kind}:{version}".encode())
    for path in files:
        stat = path.stat()
        digest.update(f"\0{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return f"{kind}-{digest.hexdigest()[:16]}"


def entry_dir(key: str) -> Path:
    """The folder of the cache entry ``key``."""
    return cache_root() / "datasets" / key


def load_entry(key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The cached arrays and document under ``key``, or None if absent or unreadable."""
    folder = entry_dir(key)
    try:
        arrays = load_file(str(folder / ARRAYS_FILE))
        document = json.loads((folder / DOCUMENT_FILE).read_text(encoding="utf-8"))
    except (OSError, SafetensorError, json.JSONDecodeError, UnicodeDecodeError):
        return None  # a missing or damaged entry is rebuilt from the sources
    return arrays, document


def save_entry(key: str, arrays: Mapping[str, np.ndarray], document: Mapping[str, Any]) -> None:
    """Store an entry atomically (a temporary folder renamed into place); a failure only warns."""
    folder = entry_dir(key)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{key}-"))
    except OSError as error:
        logger.warning("cannot write the cache entry %s (%s); the next load rebuilds it", folder, error)
        return
    try:
        save_file(
            {name: np.ascontiguousarray(array) for name, array in arrays.items()}, str(staging / ARRAYS_FILE)
        )
        (staging / DOCUMENT_FILE).write_text(json.dumps(document), encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)
    except OSError as error:
        logger.warning("cannot write the cache entry %s (%s); the next load rebuilds it", folder, error)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
