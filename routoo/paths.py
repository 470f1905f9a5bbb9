"""Where Routoo keeps files on this machine.

``cache_root()`` is the one folder every cache lives under: the embedding cache, the static
embedding tables, the data-set cache and downloaded data sets.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """Routoo's cache folder: ``$ROUTOO_CACHE_DIR`` (``~`` expanded), else ``~/.cache/routoo``."""
    return Path(os.environ.get("ROUTOO_CACHE_DIR") or Path.home() / ".cache" / "routoo").expanduser()
