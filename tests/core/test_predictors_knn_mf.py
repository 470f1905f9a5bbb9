"""What the knn and mf predictors do beyond the shared contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import planted_prompts

from routoo.data.dataset import Battle, RoutingDataset
from routoo.errors import ConfigError, DataError, PredictorLoadError
from routoo.predictors import KNNPredictor, MFPredictor, load_predictor
from routoo.predictors.base import CONFIG_FILE
from routoo.predictors.knn import K_GRID, TEMPERATURE_GRID

MODELS = ["math-model", "poet-model", "big-model"]
HELD_OUT, IS_MATH = planted_prompts(60, seed=1)


def specialist_accuracy(scores: np.ndarray) -> float:
    """How often the cheap specialist predicted better is the right one for the held-out prompt."""
    return float(np.mean((scores[:, 0] > scores[:, 1]) == IS_MATH))


def battles_dataset(n: int = 120) -> RoutingDataset:
    """The planted pattern as preferences only: the specialist for the prompt wins; big-model
    beats the wrong specialist and ties with the right one."""
    prompts, is_math = planted_prompts(n, seed=0)
    battles = []
    for index, math in enumerate(is_math):
        right, wrong = ("math-model", "poet-model") if math else ("poet-model", "math-model")
        battles += [
            Battle(index, right, wrong, "model_a"),
            Battle(index, wrong, "big-model", "model_b"),
            Battle(index, "big-model", right, "tie"),
        ]
    return RoutingDataset(
        name="planted-battles",
        prompts=prompts,
        models=MODELS,
        quality=np.full((n, 3), np.nan),
        battles=battles,
    )


# ------------------------------------------------------------------------------- knn
def test_knn_auto_picks_k_and_temperature_from_the_grid(planted_dataset, tmp_path: Path) -> None:
    predictor = KNNPredictor(k="auto").fit(planted_dataset(noise=0.1))
    assert predictor.k_ in K_GRID and predictor.temperature_ in TEMPERATURE_GRID
    assert specialist_accuracy(predictor.predict(HELD_OUT)) >= 0.9
    loaded = load_predictor(predictor.save(tmp_path))
    assert (loaded.k_, loaded.temperature_, loaded.k) == (predictor.k_, predictor.temperature_, "auto")


def test_knn_averages_recorded_neighbours_and_falls_back_to_the_model_mean(planted_dataset) -> None:
    base = planted_dataset(n=120)
    rng = np.random.default_rng(0)
    is_math = np.array([category == "math" for category in base.categories])
    quality = base.quality.copy()
    # big-model has records on math prompts only, of varying value.
    quality[:, 2] = np.where(is_math, rng.random(len(base)), np.nan)
    dataset = RoutingDataset(name="partial", prompts=base.prompts, models=MODELS, quality=quality)
    predictor = KNNPredictor(k=5, weighting="uniform").fit(dataset)
    scores = predictor.predict(HELD_OUT)
    overall = np.nanmean(quality[:, 2])
    # Poems: no neighbour has a big-model record, so its overall mean stands in.
    np.testing.assert_allclose(scores[~IS_MATH, 2], overall, rtol=1e-6)
    # Arithmetic: the uniform mean of the 5 nearest records, which differs from prompt to prompt.
    assert np.ptp(scores[IS_MATH, 2]) > 0.05
    assert specialist_accuracy(scores) >= 0.9


def test_knn_bradley_terry_from_battles_ranks_the_planted_winner(tmp_path: Path) -> None:
    predictor = KNNPredictor().fit(battles_dataset())
    scores = predictor.predict(HELD_OUT)
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    assert specialist_accuracy(scores) >= 0.9
    # big-model beats the wrong specialist and ties the right one: second to none, first to the wrong one.
    right = np.where(IS_MATH, scores[:, 0], scores[:, 1])
    wrong = np.where(IS_MATH, scores[:, 1], scores[:, 0])
    assert np.all(scores[:, 2] > wrong) and np.mean(np.abs(scores[:, 2] - right) < 0.1) >= 0.9
    np.testing.assert_array_equal(load_predictor(predictor.save(tmp_path)).predict(HELD_OUT), scores)


@pytest.mark.parametrize(
    "settings",
    [{"k": 0}, {"k": "many"}, {"k": 2.5}, {"weighting": "linear"}, {"temperature": 0.0}],
    ids=str,
)
def test_knn_rejects_bad_settings_at_fit(planted_dataset, settings: dict) -> None:
    predictor = KNNPredictor(**settings)  # stored as given
    with pytest.raises(ConfigError, match=next(iter(settings))):
        predictor.fit(planted_dataset(n=20))


# -------------------------------------------------------------------------------- mf
@pytest.mark.parametrize("loss", ["pairwise", "listwise"])
def test_mf_ranking_losses_learn_the_pattern(planted_dataset, loss: str) -> None:
    predictor = MFPredictor(loss=loss, epochs=40, batch_size=32).fit(planted_dataset(noise=0.05))
    assert specialist_accuracy(predictor.predict(HELD_OUT)) >= 0.9


def test_mf_learns_from_battles_alone(tmp_path: Path) -> None:
    predictor = MFPredictor(epochs=40, batch_size=32).fit(battles_dataset())
    scores = predictor.predict(HELD_OUT)
    assert predictor.mode_ == "battles"
    assert specialist_accuracy(scores) >= 0.9
    np.testing.assert_array_equal(load_predictor(predictor.save(tmp_path)).predict(HELD_OUT), scores)


def test_mf_ignores_missing_records(planted_dataset) -> None:
    dataset = planted_dataset(n=160)
    quality = dataset.quality.copy()
    quality[np.random.default_rng(1).random(quality.shape) < 0.3] = np.nan
    sparse = RoutingDataset(name="sparse", prompts=dataset.prompts, models=MODELS, quality=quality)
    scores = MFPredictor(epochs=40, batch_size=32).fit(sparse).predict(HELD_OUT)
    assert np.all(np.isfinite(scores))
    assert specialist_accuracy(scores) >= 0.9


def test_mf_is_deterministic_for_a_seed_and_leaves_the_global_rng_alone(planted_dataset) -> None:
    dataset = planted_dataset(n=60)
    rng_state = torch.random.get_rng_state()
    first = MFPredictor(epochs=5, seed=3).fit(dataset).predict(HELD_OUT)
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    np.testing.assert_array_equal(MFPredictor(epochs=5, seed=3).fit(dataset).predict(HELD_OUT), first)
    assert not np.array_equal(MFPredictor(epochs=5, seed=4).fit(dataset).predict(HELD_OUT), first)


def test_mf_stops_early_on_the_validation_slice(planted_dataset) -> None:
    predictor = MFPredictor(epochs=500, patience=3, batch_size=32).fit(planted_dataset(noise=0.2))
    assert predictor.epochs_trained_ < 500


def test_mf_linear_projection(planted_dataset, tmp_path: Path) -> None:
    predictor = MFPredictor(hidden=0, dim=16, epochs=40, batch_size=32).fit(planted_dataset())
    assert specialist_accuracy(predictor.predict(HELD_OUT)) >= 0.9
    loaded = load_predictor(predictor.save(tmp_path))
    np.testing.assert_array_equal(loaded.predict(HELD_OUT), predictor.predict(HELD_OUT))


@pytest.mark.parametrize(
    "settings",
    [{"loss": "hinge"}, {"dim": 0}, {"epochs": 1.5}, {"hidden": -1}, {"lr": 0.0}, {"batch_size": True}],
    ids=str,
)
def test_mf_rejects_bad_settings_at_fit(planted_dataset, settings: dict) -> None:
    with pytest.raises(ConfigError, match=next(iter(settings))):
        MFPredictor(**settings).fit(planted_dataset(n=20))


# ---------------------------------------------------------------------- both kinds
QUICK = [
    pytest.param(lambda: KNNPredictor(k=3), id="knn"),
    pytest.param(lambda: MFPredictor(epochs=2), id="mf"),
]


@pytest.mark.parametrize("quick", QUICK)
def test_data_that_teaches_nothing_is_refused(quick, planted_dataset) -> None:
    dataset = planted_dataset(n=20)
    empty = RoutingDataset(
        name="empty", prompts=dataset.prompts, models=MODELS, quality=np.full((20, 3), np.nan)
    )
    with pytest.raises(DataError, match="neither quality records nor battles"):
        quick().fit(empty)
    quality = dataset.quality.copy()
    quality[:, 2] = np.nan
    unrecorded = RoutingDataset(name="unrecorded", prompts=dataset.prompts, models=MODELS, quality=quality)
    with pytest.raises(DataError, match=r"no quality records for \['big-model'\]"):
        quick().fit(unrecorded)


@pytest.mark.parametrize("quick", QUICK)
def test_battles_beside_quality_records_are_reported_unused(quick, planted_dataset) -> None:
    dataset = planted_dataset(n=20)
    with_battles = RoutingDataset(
        name="both",
        prompts=dataset.prompts,
        models=MODELS,
        quality=dataset.quality,
        battles=[Battle(0, "math-model", "poet-model", "model_a")],
    )
    with pytest.warns(UserWarning, match="ignores the battles"):
        quick().fit(with_battles)


@pytest.mark.parametrize("quick", QUICK)
def test_loading_with_another_encoder_than_trained_fails(quick, planted_dataset, tmp_path: Path) -> None:
    predictor = quick().fit(planted_dataset(n=20))
    predictor.save(tmp_path)
    config = json.loads((tmp_path / CONFIG_FILE).read_text())
    config["state"]["encoder_id"] = "some-other-encoder-000000000000"
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(PredictorLoadError, match="trained on embeddings of encoder 'some-other-encoder"):
        load_predictor(tmp_path)
