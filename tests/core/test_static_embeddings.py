"""Static embeddings: distilled from MiniLM row by row, averaged per prompt, shipped in float16 or
cached as safetensors."""

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
from routoo.predictors import MFPredictor, load_default, load_predictor
from routoo.static_embeddings import SHIPPED_TABLES, StaticEncoder

TEXTS = ["Sam has 12 apples and buys 30 more.", "Write a haiku about the moon.", "数学 🙂 Ça va?"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("static-cache")


@pytest.fixture(scope="module")
def encoder(cache_dir: Path) -> StaticEncoder:
    """An encoder over the table distilled here (float32, in ``cache_dir``), not the shipped one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(static_embeddings, "SHIPPED_TABLES", cache_dir / "nothing-shipped")
        patch.setattr(static_embeddings, "_TABLES", {})
        encoder = StaticEncoder(cache_dir=cache_dir)
        encoder.encode(["distil the table now, while the shipped one is hidden"])
    return encoder


@pytest.fixture
def no_shipped_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As where Routoo ships no table for the encoder: it is read from the cache or distilled."""
    monkeypatch.setattr(static_embeddings, "SHIPPED_TABLES", tmp_path / "nothing-shipped")


def test_a_one_piece_text_embeds_exactly_as_the_source_model(encoder: StaticEncoder) -> None:
    source = SentenceEncoder(cache_dir=False)
    words = ["hello", "apples", "moon", "theorem"]
    np.testing.assert_allclose(encoder.encode(words), source.encode(words), atol=1e-5)


def test_a_text_is_the_normalised_mean_of_its_pieces(encoder: StaticEncoder) -> None:
    vectors = encoder.encode(TEXTS)
    table = load_file(encoder.table_path)["table"]
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


@pytest.mark.usefixtures("no_shipped_table")
def test_a_text_encoded_alone_again_is_read_from_the_recent_texts(encoder: StaticEncoder) -> None:
    texts = planted_prompts(5)[0]
    batch = encoder.encode(texts)
    first = encoder.encode(texts[:1])
    first[0] = 0.0  # the caller's copy: changing it leaves the kept vector as it was
    np.testing.assert_array_equal(encoder.encode(texts[:1])[0], batch[0])
    assert texts[0] in encoder._recent
    for text in [f"text {i}" for i in range(static_embeddings.RECENT_TEXTS + 1)]:
        encoder.encode([text])
    assert texts[0] not in encoder._recent and len(encoder._recent) == static_embeddings.RECENT_TEXTS


def test_the_table_is_read_back_instead_of_distilled_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(static_embeddings, "_TABLES", {})
    monkeypatch.setattr(StaticEncoder, "distill", random_table)
    expected = StaticEncoder(cache_dir=tmp_path).encode(TEXTS)
    monkeypatch.setattr(static_embeddings, "_TABLES", {})  # as a new process
    monkeypatch.setattr(StaticEncoder, "distill", lambda self, size: pytest.fail("distilled again"))
    np.testing.assert_array_equal(StaticEncoder(cache_dir=tmp_path).encode(TEXTS), expected)


@pytest.mark.usefixtures("no_shipped_table")
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


def test_the_shipped_table_is_the_distilled_one_rounded_to_float16(encoder: StaticEncoder) -> None:
    shipped = load_file(SHIPPED_TABLES / f"{encoder.encoder_id}.safetensors")["table"]
    distilled = load_file(encoder.table_path)["table"]
    assert shipped.dtype == np.float16 and shipped.shape == distilled.shape == (30522, 384)
    # float16 keeps 11 significant bits: a rounding moves a value by at most 2**-11 of it
    # (2**-25 below float16's normal range); 1% more covers float32 noise between CPUs.
    np.testing.assert_allclose(shipped.astype(np.float32), distilled, rtol=1.01 * 2**-11, atol=2**-25)


def test_a_fresh_machine_reads_the_shipped_table_and_distils_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoder: StaticEncoder
) -> None:
    monkeypatch.setattr(static_embeddings, "_TABLES", {})
    monkeypatch.setattr(StaticEncoder, "distill", lambda self, size: pytest.fail("distilled"))
    fresh = StaticEncoder(cache_dir=tmp_path)
    assert fresh.shipped_path.is_file() and fresh.encoder_id == encoder.encoder_id
    np.testing.assert_allclose(fresh.encode(TEXTS), encoder.encode(TEXTS), atol=1e-3)
    assert not (tmp_path / "static").exists()  # nothing written to the cache


def test_a_damaged_shipped_table_gives_way_to_the_cached_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, encoder: StaticEncoder
) -> None:
    monkeypatch.setattr(static_embeddings, "SHIPPED_TABLES", tmp_path)
    monkeypatch.setattr(static_embeddings, "_TABLES", {})
    (tmp_path / f"{encoder.encoder_id}.safetensors").write_bytes(b"not safetensors")
    fresh = StaticEncoder(cache_dir=encoder.table_path.parent.parent)
    with caplog.at_level(logging.WARNING, logger="routoo.static_embeddings"):
        np.testing.assert_array_equal(fresh.encode(TEXTS), encoder.encode(TEXTS))
    assert "unusable" in caplog.text and "using the cached or a distilled table" in caplog.text


def default_predictions(
    monkeypatch: pytest.MonkeyPatch, encoder: StaticEncoder, table_path: Path, prompts: list[str]
) -> np.ndarray:
    """The shipped default predictor's predictions with the table in ``table_path`` as its embeddings."""
    monkeypatch.setattr(embeddings, "_ENCODERS", {})
    monkeypatch.setattr(static_embeddings, "_TABLES", {encoder.encoder_id: load_file(table_path)["table"]})
    return load_default().predict(prompts)


def assert_same_default_predictions(
    monkeypatch: pytest.MonkeyPatch, encoder: StaticEncoder, prompts: list[str]
) -> None:
    """Over the shipped table the default predictor predicts as over the distilled one, to 1e-3."""
    distilled = default_predictions(monkeypatch, encoder, encoder.table_path, prompts)
    shipped = default_predictions(monkeypatch, encoder, encoder.shipped_path, prompts)
    np.testing.assert_allclose(shipped, distilled, rtol=0, atol=1e-3)
    # The README's pool, scored as GPT-4 and GPT-3.5: the better of the two stays the better.
    strong, weak = (load_default().models_.index(m) for m in ("gpt-4-1106-preview", "gpt-3.5-turbo-1106"))
    np.testing.assert_array_equal(
        shipped[:, strong] > shipped[:, weak], distilled[:, strong] > distilled[:, weak]
    )


def test_the_default_predictor_predicts_the_same_over_the_shipped_table(
    monkeypatch: pytest.MonkeyPatch, encoder: StaticEncoder
) -> None:
    assert_same_default_predictions(monkeypatch, encoder, [*TEXTS, *planted_prompts(40, seed=2)[0]])


@pytest.mark.shared_data
def test_and_on_real_prompts(
    monkeypatch: pytest.MonkeyPatch, encoder: StaticEncoder, shared_data: Path
) -> None:
    from routoo.data import load_dataset

    prompts = [
        prompt
        for name in ("routellm-gsm8k", "routerbench")
        for prompt in load_dataset(name, data_dir=shared_data).prompts[::10][:100]
    ]
    assert len(prompts) == 200
    assert_same_default_predictions(monkeypatch, encoder, prompts)


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
