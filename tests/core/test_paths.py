"""One cache folder for every cache Routoo writes, with ``~`` expanded wherever it is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from routoo import embeddings, paths
from routoo.data import cache, download


def test_every_cache_is_under_the_one_cache_root_with_home_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ROUTOO_CACHE_DIR", "~/routoo-cache")
    root = tmp_path / "routoo-cache"
    assert paths.cache_root() == root
    assert embeddings.default_cache_dir() == root
    assert download.download_root() == root / "data"
    assert cache.entry_dir("key") == root / "datasets" / "key"
    assert embeddings.cache_root is paths.cache_root  # the old name, kept for one release


def test_the_default_cache_root_is_in_the_home_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("ROUTOO_CACHE_DIR")
    assert paths.cache_root() == tmp_path / ".cache" / "routoo"
