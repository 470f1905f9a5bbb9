"""The suite itself: no test writes into the user's cache (conftest.py's autouse ``isolated_cache``).

These tests ask for no fixture that sets the cache: what they see is what every test sees.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import USER_CACHE

from routoo import embeddings
from routoo.data import cache, download
from routoo.embeddings import get_encoder
from routoo.static_embeddings import StaticEncoder


def assert_outside_the_users_cache(path: Path, session: Path) -> None:
    path = Path(path).resolve()
    assert path.is_relative_to(session), path
    for user_cache in (USER_CACHE, Path.home() / ".cache" / "routoo"):
        assert not path.is_relative_to(user_cache.resolve()), path


def test_every_cache_routoo_writes_is_in_this_sessions_temporary_folder(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    session = tmp_path_factory.getbasetemp().resolve()
    root = embeddings.cache_root()
    assert_outside_the_users_cache(root, session)
    writers = {
        "data.download.cache_root": download.cache_root(),
        "embeddings.default_cache_dir": embeddings.default_cache_dir(),
        "data.download.download_root": download.download_root(),
        "data.cache.entry_dir": cache.entry_dir("any-key"),
        "get_encoder().cache": get_encoder().cache.path,
        "get_encoder('static').table_path": get_encoder("static").table_path,
        "StaticEncoder().table_path": StaticEncoder().table_path,
    }
    for writer, path in writers.items():
        assert path is not None, writer
        assert Path(path).resolve().is_relative_to(root.resolve()), (writer, path)


def test_a_subprocess_inherits_the_temporary_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    code = "from routoo.embeddings import cache_root; print(cache_root())"
    printed = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert Path(printed.strip()) == embeddings.cache_root()
    assert_outside_the_users_cache(Path(printed.strip()), tmp_path_factory.getbasetemp().resolve())
