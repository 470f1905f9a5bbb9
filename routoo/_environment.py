"""Environment variables set for one step only, so Routoo never changes the caller's environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def scoped_environment(**variables: str) -> Iterator[None]:
    """Sets those of ``variables`` the caller has not set, for the ``with`` block only."""
    added = {name: value for name, value in variables.items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)
