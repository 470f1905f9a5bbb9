"""The sentence encoder matches sentence-transformers, and its sqlite cache saves re-encoding."""

from __future__ import annotations

import logging
import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from routoo import embeddings
from routoo.embeddings import (
    CACHE_FILE,
    EmbeddingCache,
    SentenceEncoder,
    default_model_path,
    get_encoder,
    text_digest,
)
from routoo.errors import ConfigError

TEXTS = [
    "Sam has 12 apples and buys 30 more. How many apples does Sam have now?",
    "Write a haiku about the moon.",
    "Ça va? Écris un poème sur l'hiver, s'il te plaît. 数学 🙂",
    "x",
    "word " * 400,  # far beyond the 256-word-piece limit
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="module")
def encoder(cache_dir: Path) -> SentenceEncoder:
    # Small batches, so that padding within a batch is exercised.
    return SentenceEncoder(batch_size=2, cache_dir=cache_dir)


def test_matches_sentence_transformers(encoder: SentenceEncoder) -> None:
    sentence_transformers = pytest.importorskip("sentence_transformers")
    reference = sentence_transformers.SentenceTransformer(str(default_model_path()), device="cpu")
    expected = reference.encode(TEXTS, batch_size=3)
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def no_model(texts: list[str]) -> tuple[np.ndarray, int]:
    raise AssertionError(f"the model was asked to encode {texts}")


def test_cache_hit_returns_identical_vectors_without_the_model(
    encoder: SentenceEncoder, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = encoder.encode(TEXTS[:3])
    fresh = SentenceEncoder(cache_dir=cache_dir)
    monkeypatch.setattr(fresh, "_embed", no_model)
    np.testing.assert_array_equal(fresh.encode(TEXTS[:3]), first)
    assert (cache_dir / CACHE_FILE).is_file()


def test_an_interrupted_encode_keeps_the_batches_it_finished(
    encoder: SentenceEncoder, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[list[str]] = []
    embed = encoder._embed

    def fail_on_second_batch(texts: list[str]) -> tuple[np.ndarray, int]:
        batches.append(list(texts))
        if len(batches) == 2:
            raise RuntimeError("interrupted")
        return embed(texts)

    monkeypatch.setattr(encoder, "_embed", fail_on_second_batch)
    with pytest.raises(RuntimeError, match="interrupted"):
        encoder.encode([f"interrupted prompt number {i}" for i in range(4)])  # two batches of two
    fresh = SentenceEncoder(cache_dir=cache_dir)
    monkeypatch.setattr(fresh, "_embed", no_model)
    assert fresh.encode(batches[0]).shape == (2, 384)


def test_only_missing_distinct_texts_reach_the_model(
    encoder: SentenceEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []
    embed = encoder._embed

    def spy(texts: list[str]) -> tuple[np.ndarray, int]:
        seen.append(list(texts))
        return embed(texts)

    monkeypatch.setattr(encoder, "_embed", spy)
    known = encoder.encode(["a known prompt", "another known prompt"])
    seen.clear()
    mixed = encoder.encode(["a new prompt", "a known prompt", "a new prompt", "another known prompt"])
    assert seen == [["a new prompt"]]
    np.testing.assert_array_equal(mixed[[1, 3]], known)
    np.testing.assert_array_equal(mixed[0], mixed[2])
    np.testing.assert_array_equal(mixed[0], encoder.encode(["a new prompt"])[0])


def test_long_texts_are_cut_at_the_model_limit_and_logged(
    encoder: SentenceEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    assert encoder.max_length == 256
    with caplog.at_level(logging.INFO, logger="routoo.embeddings"):
        longer = encoder.encode(["word " * 300 + "and a different ending"])
    np.testing.assert_allclose(longer, encoder.encode(["word " * 400]), atol=1e-6)
    assert "longer than 256 word pieces" in caplog.text


def test_empty_input_and_a_bare_string(encoder: SentenceEncoder) -> None:
    assert encoder.encode([]).shape == (0, 384)
    with pytest.raises(TypeError, match="not one string"):
        encoder.encode("one prompt")  # type: ignore[arg-type]


def test_unusable_cache_warns_and_encodes_anyway(
    encoder: SentenceEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("in the way")
    monkeypatch.setattr(encoder, "cache", EmbeddingCache(not_a_dir / CACHE_FILE))
    with pytest.warns(RuntimeWarning, match="embedding cache .* is unusable"):
        vectors = encoder.encode(["a prompt the cache cannot hold"])
    assert vectors.shape == (1, 384)
    assert encoder.cache is None


def test_cache_location_follows_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROUTOO_NO_EMBED_CACHE", raising=False)
    monkeypatch.setenv("ROUTOO_CACHE_DIR", str(tmp_path))
    assert SentenceEncoder().cache.path == tmp_path / CACHE_FILE
    assert SentenceEncoder(cache_dir=tmp_path / "elsewhere").cache.path == tmp_path / "elsewhere" / CACHE_FILE
    assert SentenceEncoder(cache_dir=False).cache is None
    monkeypatch.setenv("ROUTOO_NO_EMBED_CACHE", "1")
    assert SentenceEncoder().cache is None


def test_encoder_id_is_stable_and_names_the_folder() -> None:
    first, second = SentenceEncoder(cache_dir=False), SentenceEncoder(cache_dir=False)
    assert first.encoder_id == second.encoder_id
    assert first.encoder_id.startswith(default_model_path().name + "-")
    assert first.dim == 384


def test_get_encoder_shares_one_instance_per_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings, "_ENCODERS", {})
    assert get_encoder() is get_encoder(default_model_path())
    assert get_encoder() is get_encoder(str(default_model_path()))


def test_a_folder_without_a_model_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no config\.json"):
        SentenceEncoder(tmp_path)


def _write_vectors(path: Path, start: int, count: int) -> None:
    cache = EmbeddingCache(path)
    for i in range(start, start + count):  # one transaction each: many chances to collide
        cache.put("test-encoder", {text_digest(str(i)): np.full(4, i, dtype=np.float32)})


def test_processes_share_the_cache_safely(tmp_path: Path) -> None:
    path = tmp_path / CACHE_FILE
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_write_vectors, args=(path, start, 150)) for start in (0, 100, 200)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=60)
        assert writer.exitcode == 0
    found = EmbeddingCache(path).get("test-encoder", [text_digest(str(i)) for i in range(350)])
    assert len(found) == 350
    assert all(found[text_digest(str(i))][0] == i for i in range(350))
    assert EmbeddingCache(path).get("another-encoder", [text_digest("0")]) == {}
