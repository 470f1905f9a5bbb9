"""Token counting with litellm's bundled tiktoken encodings (the suite runs with sockets blocked)."""

from __future__ import annotations

import litellm
import numpy as np
import pytest

from routoo.tokens import count_tokens, count_tokens_many, encoding_name

TEXTS = ["Hello, world!", "", "Was ist 2 + 2? ÄÖÜ 数字 🙂", "def f(x):\n    return x * 2\n" * 20]


def test_count_tokens_agrees_with_litellm_token_counter_offline():
    for text in TEXTS:
        assert count_tokens(text) == litellm.token_counter(text=text)
        assert count_tokens(text, "gpt-4o") == litellm.token_counter(model="gpt-4o", text=text)


def test_models_pick_a_bundled_encoding():
    assert encoding_name(None) == "cl100k_base"
    assert encoding_name("gpt-4o-mini") == "o200k_base"
    assert encoding_name("openai/gpt-4o") == "o200k_base"
    assert encoding_name("gpt-4-1106-preview") == "cl100k_base"
    # Models litellm would fetch a Hugging Face tokenizer for are counted with cl100k_base instead.
    assert encoding_name("replicate/meta/llama-2-70b") == "cl100k_base"
    assert count_tokens("one two three", "replicate/meta/llama-2-70b") == count_tokens("one two three")


def test_count_tokens_many_matches_one_by_one():
    texts = TEXTS * 50
    counts = count_tokens_many(texts)
    assert counts.dtype == np.int64
    assert counts.tolist() == [count_tokens(text) for text in texts]
    assert count_tokens_many(texts, "gpt-4o").tolist() == [count_tokens(text, "gpt-4o") for text in texts]


def test_count_tokens_many_edge_cases():
    assert count_tokens_many([]).shape == (0,)
    assert count_tokens("") == 0
    with pytest.raises(TypeError, match="sequence of texts"):
        count_tokens_many("a single string")
