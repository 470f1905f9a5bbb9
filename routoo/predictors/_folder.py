"""What binds a saved predictor's folder together: its weights' hashes, its paths, finite weights.

``Predictor.save`` records the sha256 of every weights file under the folder (``*.safetensors``
and ``*.gguf``: a fine-tuned encoder's and copied files' included; an ensemble's members are
predictor folders binding their own) in ``config.json`` as ``weights_sha256``;
``Predictor.load`` checks them before reading any weights, so a folder whose weights were
swapped or edited is refused with an error naming the file. A folder saved
before hashes were recorded still loads, with a warning: save it again to bind it.

Settings that name a file or folder a predictor reads (``PATH_SETTINGS``: the encoder of
``mf`` and ``knn``, with or without the ``static:`` prefix, and the GGUF backbone of
``causal-lm``) are saved relative to the predictor's folder, the file or folder copied into
``files/<setting>/`` when it lies elsewhere (pickled weights left out), and resolved inside
the folder on load, never against the working directory. A path in a config that leads out of
the folder (an absolute path, or one through ``..``) is refused. Weights must be finite: NaN
or infinity in a tensor is refused, naming it, except NaN in the tensors a kind declares as
holding missing records (``Predictor._tensors_with_gaps``).
"""

from __future__ import annotations

import hashlib
import shutil
import warnings
from collections.abc import Collection, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from routoo.embeddings import STATIC_PREFIX
from routoo.errors import PredictorError, PredictorLoadError

HASHES_KEY = "weights_sha256"
WEIGHTS_SUFFIXES = (".safetensors", ".gguf")
# Settings naming a file or folder the predictor reads on load.
PATH_SETTINGS = ("encoder", "gguf_path")
# Where save copies a setting's file or folder that lies outside the predictor's folder.
COPIED_DIR = "files"
# An encoder setting naming the folder that static embeddings are distilled from.
STATIC_FOLDER = STATIC_PREFIX + ":"
# Pickled weights are never copied into a predictor's folder, nor loaded from one.
PICKLED = ("*.bin", "*.pt", "*.pth", "*.pkl", "*.pickle", "*.ckpt")


# ------------------------------------------------------------------------- hashes
def weight_hashes(folder: Path, predictor_files: Collection[str]) -> dict[str, str]:
    """The sha256 of every weights file under ``folder``, by its path relative to it.

    A subfolder holding all of ``predictor_files`` is a saved predictor of its own (an
    ensemble's member, an onboarded predictor's base): its config binds its weights.
    """
    entries = list(folder.rglob("*"))
    nested = {
        path for path in entries if path.is_dir() and all((path / name).is_file() for name in predictor_files)
    }
    files = sorted(
        path
        for path in entries
        if path.is_file() and path.suffix in WEIGHTS_SUFFIXES and nested.isdisjoint(path.parents)
    )
    return {file.relative_to(folder).as_posix(): _sha256(file) for file in files}


def check_hashes(folder: Path, config: Mapping[str, Any], config_file: Path) -> None:
    """``PredictorLoadError`` naming the first weights file that is not the one ``save`` hashed."""
    recorded = config.get(HASHES_KEY)
    if recorded is None:
        warnings.warn(
            f"{config_file} records no hashes of its weights (saved by an older Routoo), so nothing "
            "shows whether they are the weights it was saved with; save the predictor again to bind them",
            UserWarning,
            stacklevel=4,
        )
        return
    if not isinstance(recorded, dict) or not all(isinstance(v, str) for v in recorded.values()):
        raise PredictorLoadError(f"{config_file}: {HASHES_KEY} must map weights files to sha256 digests")
    for name, digest in recorded.items():
        file = inside(folder, name, f"{config_file}: {HASHES_KEY} names {name!r}")
        if not file.is_file():
            raise PredictorLoadError(
                f"{file} is missing or corrupted: it is not there, and {config_file} lists it among "
                "the predictor's weights"
            )
        actual = _sha256(file)
        if actual != digest:
            raise PredictorLoadError(
                f"{file} is missing or corrupted: it is not the file this predictor was saved with "
                f"(its sha256 is {actual}, {config_file} records {digest}); the weights were "
                "changed or swapped after saving"
            )


def _sha256(file: Path) -> str:
    with file.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# ------------------------------------------------------------------- finite weights
def check_finite(
    tensors: Mapping[str, np.ndarray], with_gaps: Collection[str], file: Path, error: type[PredictorError]
) -> None:
    """``error`` naming the first tensor holding NaN or infinity (NaN allowed in ``with_gaps``)."""
    for name, array in tensors.items():
        if not np.issubdtype(array.dtype, np.floating):
            continue
        if np.isinf(array).any() or (name not in with_gaps and np.isnan(array).any()):
            raise error(
                f"{file}: tensor {name!r} holds NaN or infinite values; a predictor's weights are finite"
            )


# -------------------------------------------------------------------------- paths
def stored_paths(params: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """``params`` as ``save`` writes them: each path setting relative to ``folder``, copied in if outside."""
    stored = dict(params)
    root = folder.resolve()
    for name in PATH_SETTINGS:
        prefix, path = _split(stored.get(name))
        if path is None:
            continue
        source = Path(path).resolve()
        if not source.exists():
            raise PredictorError(f"cannot save: {name}={stored[name]!r} names {source}, which does not exist")
        if not source.is_relative_to(root):
            source = _copy_in(source, root / COPIED_DIR / name)
        stored[name] = prefix + source.relative_to(root).as_posix()
    return stored


def resolved_paths(params: Mapping[str, Any], folder: Path, config_file: Path) -> dict[str, Any]:
    """``params`` as ``load`` uses them: each path setting resolved inside ``folder``, or refused."""
    if not isinstance(params, Mapping):
        raise PredictorLoadError(f"{config_file}: params must be an object of settings, not {params!r}")
    resolved = dict(params)
    for name in PATH_SETTINGS:
        prefix, path = _split(resolved.get(name))
        if path is not None:
            where = f"{config_file}: {name}={resolved[name]!r}"
            resolved[name] = prefix + str(inside(folder, path, where))
    return resolved


def inside(folder: Path, relative: str, where: str) -> Path:
    """``folder / relative``, resolved; ``PredictorLoadError`` naming ``where`` if it leads out."""
    if not isinstance(relative, str) or PurePosixPath(relative).is_absolute() or Path(relative).is_absolute():
        raise PredictorLoadError(f"{where} is not a path relative to the predictor's folder {folder}")
    root = folder.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise PredictorLoadError(
            f"{where} leads out of the predictor's folder {folder}: a predictor reads only its own files"
        )
    return path


def _split(value: object) -> tuple[str, str | None]:
    """A path setting's prefix and path; no path for None, for ``"static"`` or for a non-string."""
    if not isinstance(value, str) or value == STATIC_PREFIX:
        return "", None
    if value.startswith(STATIC_FOLDER):
        return STATIC_FOLDER, value.removeprefix(STATIC_FOLDER) or None
    return "", value


def _copy_in(source: Path, target_dir: Path) -> Path:
    """``source`` copied to ``target_dir/<its name>`` (pickled files left out), replacing what was there."""
    target = target_dir / source.name
    if target.is_dir():
        shutil.rmtree(target)
    target_dir.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(*PICKLED))
    else:
        shutil.copy2(source, target)
    return target
