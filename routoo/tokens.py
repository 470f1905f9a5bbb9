"""Token counts for prompts and answers, with the tiktoken encodings litellm ships offline.

litellm's ``token_counter`` fetches a Hugging Face tokenizer from the Hub for Llama, Cohere
and Replicate models, which never works offline; so every model is counted with a bundled
tiktoken encoding: ``o200k_base`` for the OpenAI models tiktoken maps to it, ``cl100k_base``
(litellm's default) for every other model. Counts for non-OpenAI models are therefore close
approximations, not their own tokenizer's numbers.

This is Routoo's one token counter. ``count_tokens``/``count_tokens_many`` count text (the
data sets' input and output tokens); ``count_prompt_tokens`` counts a chat call as litellm
lays it out (the router's estimates), which adds litellm's message framing: 7 tokens more
than the text for a one-turn prompt.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import tiktoken

from routoo._environment import scoped_environment
from routoo.errors import ConfigError

DEFAULT_ENCODING = "cl100k_base"


@lru_cache(maxsize=4)
def _encoding(name: str) -> tiktoken.Encoding:
    # tiktoken reads an encoding from TIKTOKEN_CACHE_DIR, or else downloads it.
    with scoped_environment(TIKTOKEN_CACHE_DIR=str(bundled_tokenizers())):
        return tiktoken.get_encoding(name)


def bundled_tokenizers() -> Path:
    """The tiktoken encodings litellm ships (cl100k_base and o200k_base among them), found
    without importing litellm, which takes seconds."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("litellm is not installed: Routoo counts tokens with the encodings it ships")
    return Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"


def encoding_name(model: str | None = None) -> str:
    """The bundled encoding that counts ``model``'s tokens (``cl100k_base`` unless OpenAI's ``o200k``)."""
    if not model:
        return DEFAULT_ENCODING
    try:
        name = tiktoken.encoding_name_for_model(model.rsplit("/", 1)[-1])
    except KeyError:
        return DEFAULT_ENCODING
    return "o200k_base" if name == "o200k_base" else DEFAULT_ENCODING


def count_tokens(text: str, model: str | None = None) -> int:
    """Tokens in ``text`` as ``model`` (or, without one, litellm's default encoding) counts them."""
    return len(_encoding(encoding_name(model)).encode_ordinary(text))


def count_tokens_many(texts: Sequence[str], model: str | None = None) -> np.ndarray:
    """Token counts of many texts at once (int64 array), encoded in parallel threads."""
    if isinstance(texts, str):
        raise TypeError("count_tokens_many takes a sequence of texts; use count_tokens for one text")
    if len(texts) == 0:
        return np.zeros(0, dtype=np.int64)
    encode = _encoding(encoding_name(model)).encode_ordinary
    texts = list(texts)
    # tiktoken releases the GIL while encoding; one large chunk per thread keeps the per-text
    # overhead lower than encode_ordinary_batch, which submits every text as its own task.
    threads = max(1, min(8, os.cpu_count() or 1))
    size = -(-len(texts) // threads)
    chunks = [texts[start : start + size] for start in range(0, len(texts), size)]
    with ThreadPoolExecutor(len(chunks)) as pool:
        counts = pool.map(lambda chunk: [len(encode(text)) for text in chunk], chunks)
    return np.fromiter(itertools.chain.from_iterable(counts), dtype=np.int64, count=len(texts))


def count_prompt_tokens(
    messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None = None
) -> int:
    """Input tokens of a chat call as litellm lays it out, counted with the default encoding.

    Every model is counted so: for Llama or Cohere names litellm would otherwise fetch a
    tokenizer from the Hugging Face Hub. Images count as litellm's default size.
    """
    from routoo._litellm import litellm

    tokenizer = {"type": "openai_tokenizer", "tokenizer": _encoding(DEFAULT_ENCODING)}
    return int(
        litellm.token_counter(
            custom_tokenizer=tokenizer,
            messages=list(messages),
            tools=list(tools) if tools else None,
            use_default_image_token_count=True,
        )
    )
