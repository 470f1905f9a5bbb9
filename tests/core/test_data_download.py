"""Downloads of the named sets: verified by sha256, served here from a local file:// mirror."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest

from routoo.data import DATASETS, load_dataset, registry
from routoo.data.download import RAW_GITHUB, RemoteFiles, bundled_hashes
from routoo.errors import ConfigError, DatasetNotFoundError

CONTENT = b"question,answer\n2+2,4\n"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def mirror(tmp_path: Path, files: RemoteFiles, content: dict[str, bytes]) -> RemoteFiles:
    """``files`` served from a folder laid out as GitHub's raw URLs, holding ``content`` by remote path."""
    root = tmp_path / "mirror"
    for remote_path, data in content.items():
        path = root / files.repo / files.commit / remote_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return dataclasses.replace(files, base_url=root.as_uri())


def tiny_set(sha: str) -> RemoteFiles:
    return RemoteFiles(
        "owner/repo", "abc1234", (("evals/set.csv", "tiny/set.csv"),), sha256={"tiny/set.csv": sha}
    )


def test_a_download_whose_hash_matches_is_kept(tmp_path):
    files = mirror(tmp_path, tiny_set(sha256(CONTENT)), {"evals/set.csv": CONTENT})
    files.download("tiny", tmp_path / "data")
    assert (tmp_path / "data" / "tiny" / "set.csv").read_bytes() == CONTENT
    assert not list((tmp_path / "data").rglob("*.part"))
    assert files.present_under(tmp_path / "data")


def test_a_download_with_other_content_is_an_error_naming_the_file(tmp_path):
    expected = sha256(CONTENT)
    files = mirror(tmp_path, tiny_set(expected), {"evals/set.csv": b"<html>moved</html>"})
    with pytest.raises(DatasetNotFoundError) as caught:
        files.download("tiny", tmp_path / "data")
    message = str(caught.value)
    assert "'tiny'" in message and "tiny/set.csv" in message
    assert files.url("evals/set.csv") in message
    assert expected in message and sha256(b"<html>moved</html>") in message
    assert "ROUTOO_DATA_DIR" in message
    assert not (tmp_path / "data" / "tiny" / "set.csv").exists()
    assert not list((tmp_path / "data").rglob("*.part"))


def test_a_file_without_a_known_hash_is_refused():
    with pytest.raises(ConfigError, match=r"no sha256 is known for \['tiny/set.csv'\] of owner/repo"):
        RemoteFiles("owner/repo", "abc1234", (("evals/set.csv", "tiny/set.csv"),), sha256={})


def test_urls_are_githubs_raw_files_at_the_commit():
    files = tiny_set(sha256(CONTENT))
    assert files.url("evals/set.csv") == f"{RAW_GITHUB}/owner/repo/abc1234/evals/set.csv"
    assert files.homepage == "https://github.com/owner/repo/tree/abc1234"


def test_every_file_of_every_named_set_has_a_hash_and_no_hash_is_stale():
    named_files = {local for name in DATASETS for _, local in registry._named(name).files.files}
    assert named_files == set(bundled_hashes())
    assert all(len(value) == 64 and int(value, 16) >= 0 for value in bundled_hashes().values())


@pytest.mark.shared_data
def test_the_known_hashes_are_those_of_the_shared_data(shared_data):
    for local, expected in bundled_hashes().items():
        assert sha256((shared_data / local).read_bytes()) == expected, local


def serve_gsm8k(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut: int = 0) -> str:
    """Serve RouteLLM's GSM8K set from a mirror of the shared data (its first file ``cut`` bytes short)."""
    monkeypatch.setenv("ROUTOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ROUTOO_DATA_DIR", raising=False)
    named = registry._named("routellm-gsm8k")
    content = {remote: (shared_data / local).read_bytes() for remote, local in named.files.files}
    first_remote, first_local = named.files.files[0]
    content[first_remote] = content[first_remote][: len(content[first_remote]) - cut]
    served = mirror(tmp_path, named.files, content)
    monkeypatch.setitem(registry._NAMED_SETS, "routellm-gsm8k", dataclasses.replace(named, files=served))
    return first_local


@pytest.mark.shared_data
def test_a_named_set_downloads_from_a_mirror_and_loads_as_from_the_data_root(
    shared_data, tmp_path, monkeypatch
):
    serve_gsm8k(shared_data, tmp_path, monkeypatch)
    downloaded = load_dataset("routellm-gsm8k")
    from_root = load_dataset("routellm-gsm8k", data_dir=shared_data)
    assert downloaded.prompts == from_root.prompts
    np.testing.assert_array_equal(downloaded.cost, from_root.cost)
    assert registry.locate("routellm-gsm8k") == tmp_path / "cache" / "data"


@pytest.mark.shared_data
def test_a_named_set_whose_download_was_cut_short_is_not_loaded(shared_data, tmp_path, monkeypatch):
    local = serve_gsm8k(shared_data, tmp_path, monkeypatch, cut=100)
    with pytest.raises(DatasetNotFoundError, match=rf"{local} downloaded from .* has sha256 .*looked in"):
        load_dataset("routellm-gsm8k")
    assert registry.locate("routellm-gsm8k") is None
