"""Where the named sets' original files live online, and fetching them into the cache."""

from __future__ import annotations

import os
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from routoo.errors import DatasetNotFoundError

DOWNLOAD_TIMEOUT_S = 60


def cache_root() -> Path:
    """Routoo's cache folder: ``$ROUTOO_CACHE_DIR``, else ``~/.cache/routoo``."""
    return Path(os.environ.get("ROUTOO_CACHE_DIR") or Path.home() / ".cache" / "routoo").expanduser()


def download_root() -> Path:
    """Where downloaded sets go, laid out like the shared data folder."""
    return cache_root() / "data"


@dataclass(frozen=True)
class RemoteFiles:
    """A set's files in a GitHub repository at a fixed commit: ``(path in repo, path under the data root)``.

    The commits are the short hashes the data's README records (the full ones could not be
    looked up while this was written); GitHub resolves short hashes in URLs, which has not
    been verified from this environment.
    """

    repo: str
    commit: str
    files: tuple[tuple[str, str], ...]

    @property
    def homepage(self) -> str:
        """The repository at the commit, on GitHub."""
        return f"https://github.com/{self.repo}/tree/{self.commit}"

    def url(self, remote_path: str) -> str:
        """The raw download URL of one file of the repository at the commit."""
        return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{remote_path}"

    def present_under(self, root: Path) -> bool:
        """Whether every file of the set is under ``root``."""
        return all((root / local).is_file() for _, local in self.files)

    def download(self, dataset: str, root: Path) -> None:
        """Fetch the missing files into ``root``; offline, ``DatasetNotFoundError`` names the set and URL."""
        for remote_path, local in self.files:
            target = root / local
            if target.is_file():
                continue
            url = self.url(remote_path)
            target.parent.mkdir(parents=True, exist_ok=True)
            # Write beside the target and rename, so an interrupted download leaves no partial file.
            partial = target.with_name(target.name + ".part")
            try:
                with (
                    urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response,
                    partial.open("wb") as out,
                ):
                    shutil.copyfileobj(response, out)
                partial.replace(target)
            except Exception as error:  # DNS, HTTP or a socket blocked by a sandbox: the set is unavailable
                partial.unlink(missing_ok=True)
                raise DatasetNotFoundError(
                    f"dataset {dataset!r} is not on this machine and downloading {url} failed ({error}); "
                    f"set ROUTOO_DATA_DIR (or pass data_dir) to a folder holding it"
                ) from error
