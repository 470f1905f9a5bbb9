"""Where the named sets' original files live online, and fetching them, verified, into the cache.

Each file a loader reads has a known sha256 (``file_hashes.json`` beside this module, taken
from the files the loaders were written against). A download is hashed as it is written and
kept only if it matches, so a source that changed, a Git LFS pointer or a cut-off transfer
never reaches a loader: it is an error naming the file. Files already under a data root are
read as they are. A repository folder that the shared data keeps as one zip (``ZippedFolders``)
is fetched file by file, each checked against its own sha256, and packed the same way.
"""

from __future__ import annotations

import hashlib
import tempfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath

from routoo.data.files import read_json
from routoo.errors import ConfigError, DatasetNotFoundError
from routoo.paths import cache_root

DOWNLOAD_TIMEOUT_S = 60
FILE_HASHES = Path(__file__).with_name("file_hashes.json")
RAW_GITHUB = "https://raw.githubusercontent.com"
_CHUNK_BYTES = 1 << 20


def download_root() -> Path:
    """Where downloaded sets go, laid out like the shared data folder."""
    return cache_root() / "data"


@lru_cache(maxsize=1)
def bundled_hashes() -> Mapping[str, str]:
    """``file_hashes.json``: the sha256 (hex) of every file of the named sets, by path under the data root."""
    return read_json(FILE_HASHES)["sha256"]


@lru_cache(maxsize=1)
def bundled_folder_hashes() -> Mapping[str, Mapping[str, str]]:
    """``file_hashes.json``'s ``folder_sha256``: for each zipped folder (by path under the data root),
    the sha256 of each file in it, by file name."""
    return read_json(FILE_HASHES)["folder_sha256"]


@dataclass(frozen=True)
class RemoteFiles:
    """A set's files in a GitHub repository at a fixed commit: ``(path in repo, path under the data root)``.

    The commits are the short hashes the data's README records; ``sha256`` (by default the
    bundled ``file_hashes.json``) pins each file's content whatever a commit resolves to.
    ``base_url`` serves the raw files, ``<base_url>/<repo>/<commit>/<path>``: GitHub's, or a mirror.
    """

    repo: str
    commit: str
    files: tuple[tuple[str, str], ...]
    base_url: str = RAW_GITHUB
    sha256: Mapping[str, str] = field(default_factory=bundled_hashes, repr=False, hash=False)

    def __post_init__(self) -> None:
        unhashed = [local for _, local in self.files if local not in self.sha256]
        if unhashed:
            raise ConfigError(f"no sha256 is known for {unhashed} of {self.repo}; add them to {FILE_HASHES}")

    @property
    def homepage(self) -> str:
        """The repository at the commit, on GitHub."""
        return f"https://github.com/{self.repo}/tree/{self.commit}"

    def url(self, remote_path: str) -> str:
        """The raw download URL of one file of the repository at the commit."""
        return _raw_url(self.base_url, self.repo, self.commit, remote_path)

    def present_under(self, root: Path) -> bool:
        """Whether every file of the set is under ``root``."""
        return all((root / local).is_file() for _, local in self.files)

    def download(self, dataset: str, root: Path) -> None:
        """Fetch the missing files into ``root``, each checked against its sha256.

        Offline, or when a download is not the expected file, ``DatasetNotFoundError`` names the
        set, the file and its URL; no partial or unverified file is left behind.
        """
        for remote_path, local in self.files:
            target = root / local
            if not target.is_file():
                _fetch(dataset, self.url(remote_path), target, local, self.sha256[local])


@dataclass(frozen=True)
class ZippedFolders:
    """Folders of a GitHub repository at a fixed commit, each kept locally as one zip: ``(folder, zip)``.

    The shared data packs such a folder (MMLU-Pro's ``eval_results/gpt4o/``) into a zip holding
    ``<folder name>/<file>``; a download fetches the files ``sha256`` (by default the bundled
    ``folder_sha256``) lists for the zip, checks each against its hash and packs them the same
    way, so a loader reads either copy alike. ``files`` pairs each folder with its zip.
    """

    repo: str
    commit: str
    files: tuple[tuple[str, str], ...]
    base_url: str = RAW_GITHUB
    sha256: Mapping[str, Mapping[str, str]] = field(
        default_factory=bundled_folder_hashes, repr=False, hash=False
    )

    def __post_init__(self) -> None:
        unhashed = [local for _, local in self.files if not self.sha256.get(local)]
        if unhashed:
            raise ConfigError(
                f"no file hashes are known for {unhashed} of {self.repo}; add them to {FILE_HASHES}"
            )

    @property
    def homepage(self) -> str:
        """The repository at the commit, on GitHub."""
        return f"https://github.com/{self.repo}/tree/{self.commit}"

    def present_under(self, root: Path) -> bool:
        """Whether every zip is under ``root``."""
        return all((root / local).is_file() for _, local in self.files)

    def download(self, dataset: str, root: Path) -> None:
        """Fetch each missing folder's files, verified one by one, and pack them into its zip."""
        for folder, local in self.files:
            target = root / local
            if target.is_file():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as staging:
                members = []
                for name, expected in self.sha256[local].items():
                    remote = f"{folder}/{name}"
                    url = _raw_url(self.base_url, self.repo, self.commit, remote)
                    _fetch(dataset, url, Path(staging) / name, remote, expected)
                    members.append(name)
                _pack(Path(staging), members, PurePosixPath(folder).name, target)


@dataclass(frozen=True)
class RemoteSources:
    """A named set whose files come from several sources (other commits, zipped folders), in order."""

    parts: tuple[RemoteFiles | ZippedFolders, ...]

    @property
    def files(self) -> tuple[tuple[str, str], ...]:
        """Every ``(path in repo, path under the data root)`` of every part."""
        return tuple(pair for part in self.parts for pair in part.files)

    @property
    def homepage(self) -> str:
        """The first part's repository at its commit, on GitHub."""
        return self.parts[0].homepage

    def present_under(self, root: Path) -> bool:
        """Whether every part is under ``root``."""
        return all(part.present_under(root) for part in self.parts)

    def download(self, dataset: str, root: Path) -> None:
        """Fetch what each part is missing."""
        for part in self.parts:
            part.download(dataset, root)


DataSource = RemoteFiles | ZippedFolders | RemoteSources


def _raw_url(base_url: str, repo: str, commit: str, remote_path: str) -> str:
    # Some paths hold spaces (MMLU-Pro's "computer science_result.json").
    return f"{base_url}/{repo}/{commit}/{urllib.parse.quote(remote_path)}"


def _pack(folder: Path, members: list[str], inside: str, target: Path) -> None:
    """Zip ``members`` of ``folder`` as ``<inside>/<member>`` into ``target``, written beside it first."""
    partial = target.with_name(target.name + ".part")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in members:
                archive.write(folder / name, f"{inside}/{name}")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def _fetch(dataset: str, url: str, target: Path, local: str, expected: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed once verified, so a failure leaves no file in its place.
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        try:
            with (
                urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response,
                partial.open("wb") as out,
            ):
                while chunk := response.read(_CHUNK_BYTES):
                    digest.update(chunk)
                    out.write(chunk)
        except Exception as error:  # DNS, HTTP or a socket blocked by a sandbox: the set is unavailable
            raise DatasetNotFoundError(
                f"dataset {dataset!r} is not on this machine and downloading {url} failed ({error}); "
                "set ROUTOO_DATA_DIR (or pass data_dir) to a folder holding it"
            ) from error
        if digest.hexdigest() != expected:
            raise DatasetNotFoundError(
                f"dataset {dataset!r}: {local} downloaded from {url} has sha256 {digest.hexdigest()}, "
                f"not the expected {expected} (the source changed or the transfer was damaged), so it "
                "was discarded; set ROUTOO_DATA_DIR (or pass data_dir) to a folder holding the set"
            )
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
