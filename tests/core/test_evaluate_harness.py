"""``evaluate`` end to end: a hand-worked toy, baselines, bootstrap, JSON, plots and bad input."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from routoo.data.dataset import RoutingDataset
from routoo.errors import DataError
from routoo.evaluate import EvaluationReport, evaluate
from routoo.predictors.base import Predictor


def toy_dataset() -> RoutingDataset:
    """Three prompts, a weak model at $1 and a strong one at $3 a call.

    prompt  weak  strong
      a      1     1
      b      0     1
      c      0     0
    Single models: weak (1, 1/3), strong (3, 2/3); so c_min = 1, c_max = 3, the strong
    model is the best single model and the weak one the cheapest.
    """
    return RoutingDataset(
        name="toy",
        prompts=["a", "b", "c"],
        models=["weak", "strong"],
        quality=np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]),
        cost=np.tile([1.0, 3.0], (3, 1)),
    )


# Predicted strong - weak gaps: 0.1 on a, 0.2 on b, 0.7 on c (it ranks the useless c first).
TOY_PREDICTION = np.array([[0.5, 0.6], [0.4, 0.6], [0.2, 0.9]])


def test_toy_metrics_match_the_hand_computation():
    report = evaluate(toy_dataset(), {"router": TOY_PREDICTION}, n_bootstrap=20)
    router = report["router"]
    # λ sweep: the router leaves weak for strong where gap > 2λ. λ = 0: all strong (3, 2/3);
    # λ in (0.05, 0.1): b, c strong (7/3, 2/3); λ in (0.1, 0.35): c strong (5/3, 1/3);
    # beyond: all weak (1, 1/3).
    assert router.costs.tolist() == pytest.approx([1.0, 5 / 3, 7 / 3, 3.0])
    assert router.qualities.tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3])
    # Hull: (1, 1/3) to (7/3, 2/3), as (5/3, 1/3) lies under that chord (it passes 1/2),
    # then flat at 2/3. Area over [1, 3]: (1/3 + 2/3) / 2 * 4/3 + 2/3 * 2/3 = 2/3 + 4/9 = 10/9;
    # AIQ = (10/9) / 2 = 5/9.
    assert router.aiq == pytest.approx(5 / 9)
    assert router.max_quality == pytest.approx(2 / 3)
    assert router.max_quality_cost == pytest.approx(7 / 3)
    assert router.quality_at_best_model_cost == pytest.approx(2 / 3)
    # It reaches the strong model's 2/3 at cost 7/3, which is 7/9 of the strong model's $3.
    assert router.cost_to_match_best_model == pytest.approx(7 / 9)
    # Threshold sweep, strong calls in score order c, b, a: shares 0, 1/3, 2/3, 1 give quality
    # 1/3, 1/3, 2/3, 2/3, so PGR = (q - 1/3) / (1/3) = 0, 0, 1, 1.
    assert router.strong_shares.tolist() == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    # APGR = 0 + (0 + 1) / 2 * 1/3 + 1 * 1/3 = 1/2.
    assert router.apgr == pytest.approx(0.5)
    # PGR rises from 0 to 1 between shares 1/3 and 2/3: 0.5 at 1/2, 0.8 at 1/3 + 0.8/3 = 0.6.
    assert router.cpt50 == pytest.approx(0.5)
    assert router.cpt80 == pytest.approx(0.6)


def test_toy_baselines_match_the_hand_computation():
    report = evaluate(toy_dataset(), {"router": TOY_PREDICTION}, n_bootstrap=20)
    assert (report.weak_model, report.strong_model, report.best_model) == ("weak", "strong", "strong")
    assert report.cost_range == (1.0, 3.0)
    # Oracle: a -> weak (tie, cheaper), b -> strong, c -> weak (tie): one point (5/3, 2/3).
    # AIQ: zero on [1, 5/3], 2/3 on [5/3, 3]: 2/3 * 4/3 / 2 = 4/9.
    oracle = report["oracle"]
    assert oracle.costs.tolist() == pytest.approx([5 / 3])
    assert oracle.qualities.tolist() == pytest.approx([2 / 3])
    assert oracle.aiq == pytest.approx(4 / 9)
    assert oracle.cost_to_match_best_model == pytest.approx(5 / 9)
    # Oracle frontier: (1, 1/3) and (5/3, 2/3). Area (1/3 + 2/3) / 2 * 2/3 + 2/3 * 4/3 = 11/9,
    # AIQ 11/18. Sorting by the true gap (b first, then a and c tied): PGR 0, 1, 1 at shares
    # 0, 1/3, 1, so APGR = 1/6 + 2/3 = 5/6.
    frontier = report["oracle frontier"]
    assert frontier.aiq == pytest.approx(11 / 18)
    assert frontier.apgr == pytest.approx(5 / 6)
    # Random mix: the segment (1, 1/3) to (3, 2/3): area (1/3 + 2/3) / 2 * 2 = 1, AIQ 1/2;
    # PGR equals the strong share, so APGR 1/2, CPT(50%) 0.5, CPT(80%) 0.8.
    random_mix = report["random mix"]
    assert random_mix.aiq == pytest.approx(0.5)
    assert (random_mix.apgr, random_mix.cpt50, random_mix.cpt80) == pytest.approx((0.5, 0.5, 0.8))
    # Single models: q * (c_max - c) / (c_max - c_min): weak 1/3 * 2/2, strong 2/3 * 0/2.
    assert report["weak"].aiq == pytest.approx(1 / 3)
    assert report["strong"].aiq == 0.0
    assert report["weak"].cost_to_match_best_model is None  # never reaches 2/3
    assert report["strong"].cost_to_match_best_model == pytest.approx(1.0)


def test_a_choice_array_is_one_operating_point():
    report = evaluate(toy_dataset(), {"picks": np.array([0, 1, 1])}, n_bootstrap=20)
    picks = report["picks"]
    # weak on a (1, $1), strong on b (1, $3) and c (0, $3): quality 2/3 at cost 7/3.
    assert picks.costs.tolist() == pytest.approx([7 / 3])
    assert picks.qualities.tolist() == pytest.approx([2 / 3])
    assert picks.strong_shares.tolist() == pytest.approx([2 / 3])
    assert picks.apgr is None  # a point does not span the strong-share axis


def test_single_model_aiq_is_its_quality_over_the_range_it_can_afford():
    # Three models at $1, $2, $5 a call; AIQ of a model at cost c with quality q is
    # q * (c_max - c) / (c_max - c_min): b gives 0.5 * (5 - 2) / (5 - 1) = 0.375.
    quality = np.array([[0.2, 0.5, 0.9]] * 4) + np.array([[0.0], [0.1], [-0.1], [0.0]])
    dataset = RoutingDataset(
        name="three",
        prompts=list("abcd"),
        models=["a", "b", "c"],
        quality=quality,
        cost=np.tile([1.0, 2.0, 5.0], (4, 1)),
    )
    report = evaluate(dataset, {"router": quality}, n_bootstrap=20)
    assert report["b"].aiq == pytest.approx(0.375)
    for model, cost in zip("abc", (1.0, 2.0, 5.0), strict=True):
        assert report[model].aiq == pytest.approx(quality[:, "abc".index(model)].mean() * (5.0 - cost) / 4.0)
    assert report.weak_model is None and report["router"].apgr is None


def test_perfect_predictor_reaches_the_oracle(planted_dataset):
    test = planted_dataset(n=60, seed=1, noise=0.1)
    report = evaluate(test, {"perfect": test.quality}, n_bootstrap=20)
    assert report["perfect"].max_quality == report["oracle"].max_quality
    assert report["perfect"].aiq >= report["oracle"].aiq
    assert report["perfect"].aiq > max(report[model].aiq for model in test.models)


def test_constant_predictor_only_reaches_single_model_points(planted_dataset):
    train, planted = planted_dataset(n=80, seed=0, noise=0.1), planted_dataset(n=60, seed=1, noise=0.1)
    # Per-call costs that vary, as real ones do: the router's points must still equal the
    # single models' points exactly, not up to rounding.
    jitter = np.random.default_rng(4).uniform(0.5, 1.5, planted.cost.shape)
    test = replace(planted, cost=planted.cost * jitter)
    constant = np.tile(np.nanmean(train.quality, axis=0), (len(test), 1))
    report = evaluate(test, {"constant": constant}, cost_estimate=train.mean_cost(), n_bootstrap=20)
    singles = {(report[m].costs[0], report[m].qualities[0]) for m in test.models}
    points = set(zip(report["constant"].costs, report["constant"].qualities, strict=True))
    assert points <= singles and len(points) >= 2
    assert report.cost_estimate_source == "given"
    best = report[report.best_model]
    assert best.quality_at_best_model_cost == best.max_quality
    assert best.cost_to_match_best_model == 1.0


class MeanQualityPredictor(Predictor):
    """Predicts each model's training mean quality whatever the prompt."""

    kind = "test-mean"

    def _fit(self, dataset: RoutingDataset) -> None:
        self.means_ = np.nanmean(dataset.quality, axis=0)

    def _predict_texts(self, texts: list[str]) -> np.ndarray:
        return np.tile(self.means_, (len(texts), 1))

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"means": self.means_}, {}

    def _set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.means_ = tensors["means"]


def test_a_predictor_is_asked_in_its_own_model_order(planted_dataset):
    train, test = planted_dataset(n=80, seed=0, noise=0.1), planted_dataset(n=40, seed=1)
    predictor = MeanQualityPredictor().fit(train.select_models(list(reversed(train.models))))
    as_matrix = np.tile(np.nanmean(train.quality, axis=0), (len(test), 1))
    report = evaluate(test, {"predictor": predictor, "matrix": as_matrix}, n_bootstrap=20)
    assert report["predictor"].costs.tolist() == report["matrix"].costs.tolist()
    assert report["predictor"].qualities.tolist() == report["matrix"].qualities.tolist()
    with pytest.raises(DataError, match="poet-model"):
        evaluate(test, {"p": MeanQualityPredictor().fit(train.select_models(["math-model", "big-model"]))})


def test_prompts_missing_a_record_are_dropped(planted_dataset):
    test = planted_dataset(n=40, seed=2, noise=0.2)
    quality = test.quality.copy()
    quality[[3, 7], 1] = np.nan
    holed = RoutingDataset(
        name="holed", prompts=test.prompts, models=test.models, quality=quality, cost=test.cost
    )
    report = evaluate(holed, {"r": test.quality}, n_bootstrap=20)
    kept = [i for i in range(len(test)) if i not in (3, 7)]
    reference = evaluate(test.subset(kept), {"r": test.quality[kept]}, n_bootstrap=20)
    assert (report.n_prompts, report.n_dropped) == (38, 2)
    assert report["r"].aiq == reference["r"].aiq
    assert report["oracle"].qualities.tolist() == reference["oracle"].qualities.tolist()


def test_bootstrap_error_matches_the_binomial_error_of_a_mean():
    # The cheapest model's AIQ is its mean quality (c = c_min, costs fixed), so its bootstrap
    # error estimates sqrt(p (1 - p) / n) = sqrt(0.25 / 400) = 0.025.
    rng = np.random.default_rng(3)
    quality = np.stack([np.arange(400) % 2, rng.random(400) < 0.7], axis=1).astype(float)
    dataset = RoutingDataset(
        name="coin",
        prompts=[f"p{i}" for i in range(400)],
        models=["cheap", "dear"],
        quality=quality,
        cost=np.tile([1.0, 2.0], (400, 1)),
    )
    report = evaluate(dataset, {"r": quality}, seed=5)
    assert report["cheap"].aiq_stderr == pytest.approx(0.025, rel=0.2)
    again = evaluate(dataset, {"r": quality}, seed=5)
    assert again["r"].aiq_stderr == report["r"].aiq_stderr > 0


def test_json_round_trip(tmp_path):
    report = evaluate(toy_dataset(), {"router": TOY_PREDICTION}, n_bootstrap=20)
    path = report.to_json(tmp_path / "report.json")
    data = json.loads(path.read_text())
    assert data["results"][-2]["cost_to_match_best_model"] is None  # the weak model never matches
    assert EvaluationReport.from_json(path).to_dict() == report.to_dict()
    assert "router" in report.table() and "APGR" in report.table()


@pytest.mark.parametrize("n_models", [2, 3])
def test_plot_writes_a_png(tmp_path, planted_dataset, n_models):
    test = planted_dataset(n=40, seed=1, noise=0.1).select_models(
        ["math-model", "big-model", "poet-model"][:n_models]
    )
    report = evaluate(test, {"perfect": test.quality}, n_bootstrap=20)
    path = report.plot(tmp_path / "curve.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_plot_draws_more_routers_than_a_palette_has_colours(tmp_path, planted_dataset):
    test = planted_dataset(n=40, seed=1, noise=0.1)
    routers = {f"router-{i}": test.quality + 0.01 * i for i in range(25)}
    path = evaluate(test, routers, n_bootstrap=5).plot(tmp_path / "many.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_input_is_named():
    toy = toy_dataset()
    with pytest.raises(DataError, match=r"shape \(3, 3\)"):
        evaluate(toy, {"wide": np.zeros((3, 3))})
    with pytest.raises(DataError, match="2 choices for 3"):
        evaluate(toy, {"short": np.array([0, 1])})
    with pytest.raises(DataError, match="integer model indices"):
        evaluate(toy, {"floats": np.array([0.0, 1.0, 0.5])})
    with pytest.raises(DataError, match=r"\[0, 2\)"):
        evaluate(toy, {"far": np.array([0, 1, 2])})
    with pytest.raises(DataError, match="NaN"):
        evaluate(toy, {"nan": np.full((3, 2), np.nan)})
    with pytest.raises(DataError, match="no routers"):
        evaluate(toy, {})
    with pytest.raises(DataError, match="clashes"):
        evaluate(toy, {"oracle": TOY_PREDICTION})
    with pytest.raises(DataError, match="cost_estimate"):
        evaluate(toy, {"r": TOY_PREDICTION}, cost_estimate=np.array([1.0, 2.0, 3.0]))
    no_cost = RoutingDataset(name="no-cost", prompts=toy.prompts, models=toy.models, quality=toy.quality)
    with pytest.raises(DataError, match="no costs"):
        evaluate(no_cost, {"r": TOY_PREDICTION})
    holes = RoutingDataset(
        name="holes", prompts=toy.prompts, models=toy.models, quality=np.full((3, 2), np.nan), cost=toy.cost
    )
    with pytest.raises(DataError, match="no prompt with quality and cost records"):
        evaluate(holes, {"r": TOY_PREDICTION})
