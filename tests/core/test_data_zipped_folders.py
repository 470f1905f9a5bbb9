"""Folders the shared data keeps as one zip (MMLU-Pro's API runs): fetched file by file, each verified,
and packed as the shared copy is; served here from a local file:// mirror."""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile
from pathlib import Path

import pytest

from routoo.data import mmlu_pro
from routoo.data.download import RemoteFiles, RemoteSources, ZippedFolders, bundled_folder_hashes
from routoo.errors import ConfigError, DatasetNotFoundError

MEMBERS = {"math_result.json": b'[{"question_id": 1}]', "computer science_result.json": b"[]"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def mirrored(tmp_path: Path, folders: ZippedFolders, content: dict[str, dict[str, bytes]]) -> ZippedFolders:
    """``folders`` served from a folder laid out as GitHub's raw URLs: ``content[folder][file]``."""
    root = tmp_path / "mirror"
    for folder, files in content.items():
        for name, data in files.items():
            path = root / folders.repo / folders.commit / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return dataclasses.replace(folders, base_url=root.as_uri())


def tiny_folders(hashes: dict[str, str]) -> ZippedFolders:
    return ZippedFolders(
        "owner/repo", "abc1234", (("results/run1", "tiny/run1.zip"),), sha256={"tiny/run1.zip": hashes}
    )


def test_a_folder_is_fetched_file_by_file_and_packed_as_one_zip(tmp_path: Path) -> None:
    folders = tiny_folders({name: sha256(data) for name, data in MEMBERS.items()})
    folders = mirrored(tmp_path, folders, {"results/run1": MEMBERS})
    assert not folders.present_under(tmp_path / "data")
    folders.download("tiny", tmp_path / "data")
    with zipfile.ZipFile(tmp_path / "data/tiny/run1.zip") as archive:
        assert {name: archive.read(name) for name in archive.namelist()} == {
            f"run1/{name}": data for name, data in MEMBERS.items()
        }
    assert folders.present_under(tmp_path / "data")
    assert [path.name for path in (tmp_path / "data/tiny").iterdir()] == ["run1.zip"]  # no staging left
    assert folders.files == (("results/run1", "tiny/run1.zip"),)
    assert folders.homepage == "https://github.com/owner/repo/tree/abc1234"


def test_a_file_with_other_content_is_an_error_and_no_zip_is_left(tmp_path: Path) -> None:
    folders = tiny_folders({name: sha256(data) for name, data in MEMBERS.items()})
    folders = mirrored(tmp_path, folders, {"results/run1": {**MEMBERS, "math_result.json": b"<html>"}})
    with pytest.raises(DatasetNotFoundError) as caught:
        folders.download("tiny", tmp_path / "data")
    message = str(caught.value)
    assert "'tiny'" in message and "results/run1/math_result.json" in message
    assert sha256(b"<html>") in message and sha256(MEMBERS["math_result.json"]) in message
    assert list((tmp_path / "data/tiny").iterdir()) == []


def test_a_folder_without_known_hashes_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"no file hashes are known for \['tiny/run1.zip'\] of owner/repo"):
        tiny_folders({})


def test_sources_of_one_set_are_fetched_together(tmp_path: Path) -> None:
    csv = b"a,b\n"
    files = RemoteFiles(
        "owner/repo", "0000001", (("data/set.csv", "tiny/set.csv"),), sha256={"tiny/set.csv": sha256(csv)}
    )
    (tmp_path / "mirror/owner/repo/0000001/data").mkdir(parents=True)
    (tmp_path / "mirror/owner/repo/0000001/data/set.csv").write_bytes(csv)
    files = dataclasses.replace(files, base_url=(tmp_path / "mirror").as_uri())
    folders = mirrored(
        tmp_path,
        tiny_folders({name: sha256(data) for name, data in MEMBERS.items()}),
        {"results/run1": MEMBERS},
    )
    sources = RemoteSources((files, folders))
    assert sources.files == (("data/set.csv", "tiny/set.csv"), ("results/run1", "tiny/run1.zip"))
    assert sources.homepage == files.homepage
    sources.download("tiny", tmp_path / "data")
    assert sources.present_under(tmp_path / "data")
    (tmp_path / "data/tiny/run1.zip").unlink()
    assert not sources.present_under(tmp_path / "data")


@pytest.mark.shared_data
def test_mmlu_pros_api_runs_download_as_the_shared_zips_hold_them(shared_data, tmp_path: Path) -> None:
    content: dict[str, dict[str, bytes]] = {}
    shared_members: dict[str, dict[str, bytes]] = {}
    for folder, local in mmlu_pro.API_RUN_FILES.files:
        with zipfile.ZipFile(shared_data / local) as archive:
            members = {
                name: archive.read(name) for name in archive.namelist() if name.endswith("_result.json")
            }
        shared_members[local] = members
        content[folder] = {name.split("/", 1)[1]: data for name, data in members.items()}
        # The bundled hashes are those of the shared zips' files.
        assert bundled_folder_hashes()[local] == {
            name: sha256(data) for name, data in content[folder].items()
        }
    mirrored(tmp_path, mmlu_pro.API_RUN_FILES, content).download("mmlu-pro", tmp_path / "data")
    for local, members in shared_members.items():
        with zipfile.ZipFile(tmp_path / "data" / local) as archive:
            assert {name: archive.read(name) for name in archive.namelist()} == members
