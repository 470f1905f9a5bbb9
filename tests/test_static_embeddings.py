"""Static embeddings: distilled from MiniLM row by row, averaged per prompt, cached as safetensors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import planted_prompts
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from routoo import embeddings, static_embeddings
from routoo.embeddings import SentenceEncoder, default_model_path, get_encoder
from routoo.errors import PredictorLoadError
from routoo.predictors import MFPredictor, load_predictor
from routoo.static_embeddings import StaticEncoder

TEXTS = ["Sam has 12 apples and buys 30 more.", "Write a haiku about the moon.", "数学 🙂 Ça va?"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("static-cache")


@pytest.fixture(scope="module")
def encoder(cache_dir: Path) -> StaticEncoder:
    return StaticEncoder(cache_dir=cache_dir)


def test_a_one_piece_text_embeds_exactly_as_the_source_model(encoder: StaticEncoder) -> None:
    source = SentenceEncoder(cache_dir=False)
    words = ["hello", "apples", "moon", "theorem"]
    np.testing.assert_allclose(encoder.encode(words), source.encode(words), atol=1e-5)


def test_a_text_is_the_normalised_mean_of_its_pieces(encoder: StaticEncoder) -> None:
    vectors = encoder.encode(TEXTS)
    table = static_embeddings._TABLES[encoder.encoder_id]
    tokenizer = Tokenizer.from_file(str(default_model_path() / "tokenizer.json"))
    tokenizer.no_padding()  # the file pads to 128 word pieces, for the transformer
    for text, vector in zip(TEXTS, vectors, strict=True):
        pieces = tokenizer.encode(text, add_special_tokens=False).ids
        mean = table[pieces].mean(axis=0)
        np.testing.assert_allclose(vector, mean / np.linalg.norm(mean), atol=1e-5)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32


def test_long_texts_are_not_cut(encoder: StaticEncoder) -> None:
    short, long = encoder.encode(["apples " * 10, "apples " * 300 + "poem " * 300])
    assert not np.allclose(short, long, atol=1e-3)  # the pieces past MiniLM's window still count


def test_empty_text_is_the_zero_vector_and_a_bare_string_is_refused(encoder: StaticEncoder) -> None:
    assert not encoder.encode(["", "  "]).any()
    assert encoder.encode([]).shape == (0, 384)
    with pytest.raises(TypeError, match="sequence of texts"):
        encoder.encode("one string")


def random_table(encoder: StaticEncoder, size: int) -> np.ndarray:
    return np.random.default_rng(0).random((size, encoder.dim), dtype=np.float32)


def test_the_table_is_read_back_instead_of_distilled_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(static_embeddings, "_TABLES", {})
    monkeypatch.setattr(StaticEncoder, "distill", random_table)
    expected = StaticEncoder(cache_dir=tmp_path).encode(TEXTS)
    monkeypatch.setattr(static_embeddings, "_TABLES", {})  # as a new process
    monkeypatch.setattr(StaticEncoder, "distill", lambda self, size: pytest.fail("distilled again"))
    np.testing.assert_array_equal(StaticEncoder(cache_dir=tmp_path).encode(TEXTS), expected)


def test_a_damaged_table_is_distilled_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(static_embeddings, "_TABLES", {})
    fresh = StaticEncoder(cache_dir=tmp_path)
    fresh.table_path.parent.mkdir(parents=True)
    fresh.table_path.write_bytes(b"not safetensors")
    monkeypatch.setattr(StaticEncoder, "distill", lambda self, size: np.ones((size, self.dim), np.float32))
    with caplog.at_level(logging.WARNING, logger="routoo.static_embeddings"):
        vectors = fresh.encode(["hello"])
    assert "unusable" in caplog.text and "distilling it again" in caplog.text
    np.testing.assert_allclose(vectors, np.full((1, 384), 384**-0.5), rtol=1e-5)
    assert load_file(fresh.table_path)["table"].shape == (30522, 384)  # rewritten whole


def test_get_encoder_names_the_static_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings, "_ENCODERS", {})
    static = get_encoder("static")
    assert isinstance(static, StaticEncoder)
    assert static is get_encoder(f"static:{default_model_path()}")
    assert static.encoder_id != get_encoder().encoder_id
    assert static.encoder_id.startswith("static") and get_encoder().encoder_id in static.encoder_id


def test_mf_over_static_embeddings_learns_and_round_trips(
    planted_dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_dir: Path
) -> None:
    monkeypatch.setenv("ROUTOO_CACHE_DIR", str(cache_dir))
    monkeypatch.setattr(embeddings, "_ENCODERS", {})
    held_out, is_math = planted_prompts(40, seed=1)
    predictor = MFPredictor(encoder="static").fit(planted_dataset(noise=0.1))
    scores = predictor.predict(held_out)
    assert np.mean((scores[:, 0] > scores[:, 1]) == is_math) >= 0.9
    loaded = load_predictor(predictor.save(tmp_path))
    np.testing.assert_array_equal(loaded.predict(held_out), scores)

    # The saved head belongs to the static embeddings: loading it over MiniLM is refused.
    config = (tmp_path / "config.json").read_text().replace('"encoder": "static"', '"encoder": null')
    (tmp_path / "config.json").write_text(config)
    with pytest.raises(PredictorLoadError, match="trained on embeddings of encoder 'static"):
        load_predictor(tmp_path)
