"""Onboarding a model from a prior and few labels, probe selection, learned output lengths, warnings."""

from __future__ import annotations

import itertools
import json
import warnings
from dataclasses import replace

import numpy as np
import pytest
from conftest import MATH_PROMPT, POEM_PROMPT, planted_prompts

from routoo.cli import main
from routoo.data import save_jsonl
from routoo.errors import ConfigError, DataError, PredictorLoadError
from routoo.output_lengths import MAX_CORRECTION, ObservedLengths, OutputLengths
from routoo.predictors import KNNPredictor, MFPredictor, load_predictor
from routoo.predictors.onboarded import OnboardedPredictor, probe


@pytest.fixture
def base(planted_dataset):
    return KNNPredictor(k=5).fit(planted_dataset(n=120))


def _labels(planted_dataset, n: int, seed: int = 1, model: str = "new-model", like_column: int = 0):
    """``n`` labelled prompts of a new model that is right exactly where column ``like_column`` is."""
    dataset = planted_dataset(n=n, seed=seed) if n else None
    if dataset is None:
        return None
    column = dataset.select_models([dataset.models[like_column]])
    return replace(column, models=[model])


def _column(predictor, name: str, prompts) -> np.ndarray:
    return predictor.predict(prompts)[:, predictor.models_.index(name)]


def test_with_no_labels_the_predictions_are_the_prior(base):
    onboarded = OnboardedPredictor(base, like={"new-model": "poet-model"}).fit()
    prompts, _ = planted_prompts(20, seed=5)
    assert onboarded.models_ == [*base.models_, "new-model"]
    np.testing.assert_allclose(
        _column(onboarded, "new-model", prompts),
        np.clip(_column(base, "poet-model", prompts), 1e-3, 1 - 1e-3),
    )
    # The known models are untouched.
    np.testing.assert_allclose(onboarded.predict(prompts)[:, :3], base.predict(prompts))


def test_without_like_the_prior_is_the_mean_of_the_known_models(base):
    onboarded = OnboardedPredictor(base, new_models=["new-model"]).fit(None)
    row = onboarded.summary()[0]
    assert row["prior"] == "mean of all known models" and row["labels"] == 0
    np.testing.assert_allclose(onboarded.prior_means_[0][:-1], 1 / 3)


def test_a_planted_new_model_is_learned_from_few_labels(base, planted_dataset):
    # Its prior says it is like the poet; its labels say it is right on arithmetic.
    labels = _labels(planted_dataset, 30, like_column=0)
    onboarded = OnboardedPredictor(base, like={"new-model": "poet-model"}).fit(labels)
    prompts, is_math = planted_prompts(40, seed=9)
    scores = _column(onboarded, "new-model", prompts)
    assert scores[is_math].mean() > 0.7 > 0.3 > scores[~is_math].mean()
    assert np.ptp(scores) > 0.4  # it never collapses to a constant


def test_more_labels_shrink_the_uncertainty(base, planted_dataset):
    prompts, _ = planted_prompts(20, seed=11)
    spreads = []
    for n in (0, 10, 40, 120):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            onboarded = OnboardedPredictor(base, like={"new-model": "big-model"}, prior_std=0.3).fit(
                _labels(planted_dataset, n, like_column=0)
            )
        std = onboarded.quality_std(prompts)
        assert np.isnan(std[:, :3]).all()  # the base's own models are not onboarded
        spreads.append(float(np.mean(onboarded.covariances_[0].diagonal())))
    assert all(later < earlier for earlier, later in itertools.pairwise(spreads))


def test_the_labels_choose_how_far_a_model_may_stray_from_its_prior(base, planted_dataset):
    labels = _labels(planted_dataset, 40, like_column=0)  # right on arithmetic, like math-model
    wrong = OnboardedPredictor(base, like={"new-model": "poet-model"}).fit(labels)
    right = OnboardedPredictor(base, like={"new-model": "math-model"}).fit(labels)
    assert wrong.prior_stds_[0] > right.prior_stds_[0]
    assert wrong.summary()[0]["prior_std"] == wrong.prior_stds_[0]


def test_labels_that_never_differ_warn_and_still_vary_by_prompt(base, planted_dataset):
    labels = _labels(planted_dataset, 20, like_column=0)
    labels = replace(labels, quality=np.ones_like(labels.quality))
    with pytest.warns(UserWarning, match="never differ"):
        onboarded = OnboardedPredictor(base, like={"new-model": "math-model"}).fit(labels)
    prompts, _ = planted_prompts(20, seed=3)
    assert np.ptp(_column(onboarded, "new-model", prompts)) > 0.01


def test_too_few_labels_warn(base, planted_dataset):
    with pytest.warns(UserWarning, match="too few to tell prompts apart"):
        OnboardedPredictor(base).fit(_labels(planted_dataset, 4))


def test_known_models_with_labels_are_refined(base, planted_dataset):
    dataset = planted_dataset(n=40, seed=2)
    flipped = replace(
        dataset.select_models(["math-model"]), quality=1 - dataset.select_models(["math-model"]).quality
    )
    onboarded = OnboardedPredictor(base).fit(flipped)
    assert onboarded.onboarded_ == ["math-model"] and onboarded.models_ == base.models_
    prompts, is_math = planted_prompts(40, seed=4)
    scores = _column(onboarded, "math-model", prompts)
    assert scores[~is_math].mean() > scores[is_math].mean()
    with pytest.raises(DataError, match="nothing to onboard"):
        OnboardedPredictor(base, refine_known=False).fit(flipped)


def test_onboarded_predictor_saves_and_loads(base, planted_dataset, tmp_path):
    onboarded = OnboardedPredictor(base, like={"new-model": "poet-model"}).fit(_labels(planted_dataset, 30))
    onboarded.save(tmp_path / "onboarded")
    assert (tmp_path / "onboarded" / "base" / "config.json").is_file()
    loaded = load_predictor(tmp_path / "onboarded")
    np.testing.assert_allclose(
        loaded.predict([MATH_PROMPT, POEM_PROMPT]), onboarded.predict([MATH_PROMPT, POEM_PROMPT])
    )
    # A base retrained on other data no longer matches the read-outs.
    KNNPredictor(k=3).fit(planted_dataset(n=50, seed=7)).save(tmp_path / "onboarded" / "base")
    with pytest.raises(PredictorLoadError, match=r"onboard again|changed or swapped"):
        load_predictor(tmp_path / "onboarded")


def test_bad_settings_are_clear_errors(base):
    with pytest.raises(ConfigError, match="does not know"):
        OnboardedPredictor(base, like={"new-model": "no-such-model"}).fit()
    with pytest.raises(ConfigError, match="prior_std"):
        OnboardedPredictor(base, prior_std=0).fit()
    with pytest.raises(ConfigError, match="no reference prompts"):
        OnboardedPredictor(base, scores={"new-model": {"no-such-benchmark": 0.5}}).fit()
    with pytest.raises(ConfigError, match="between 0 and 1"):
        OnboardedPredictor(base, scores={"new-model": {"gsm8k": 1.5}}).fit()


def test_a_public_score_moves_the_prior(base, shared_data, monkeypatch):
    monkeypatch.setenv("ROUTOO_DATA_DIR", str(shared_data))
    low = OnboardedPredictor(base, scores={"new-model": {"gsm8k": 0.2}}).fit()
    high = OnboardedPredictor(base, scores={"new-model": {"gsm8k": 0.9}}).fit()
    assert high.prior_means_[0][-1] > low.prior_means_[0][-1]
    assert "moved to gsm8k 0.900" in high.summary()[0]["prior"]


def test_probe_picks_informative_and_diverse_prompts(base):
    prompts = [MATH_PROMPT] * 30 + planted_prompts(30, seed=8)[0]
    chosen = probe(base, prompts, 10)
    assert len(set(chosen)) == 10
    # The base sees two kinds of prompt (arithmetic, poems): the first two picks cover both.
    kinds = {"math" if "Sam has" in prompts[index] else "poem" for index in chosen[:2]}
    assert kinds == {"math", "poem"}
    with pytest.raises(ConfigError, match="positive integer"):
        probe(base, prompts, 0)
    with pytest.raises(ConfigError, match="not a model the predictor knows"):
        probe(base, prompts, 3, like="nobody")


def test_onboard_and_probe_commands(base, planted_dataset, tmp_path, capsys):
    base.save(tmp_path / "base")
    save_jsonl(_labels(planted_dataset, 30), tmp_path / "labels.jsonl")
    code = main(
        [
            "onboard",
            "--predictor",
            str(tmp_path / "base"),
            "--data",
            str(tmp_path / "labels.jsonl"),
            "--like",
            "new-model=poet-model",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0 and "new-model: 30 labels, prior like poet-model" in capsys.readouterr().out
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in planted_prompts(12, seed=6)[0]))
    assert main(["predict", "--model", str(tmp_path / "out"), "--prompts", str(prompts)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 12 and set(rows[0]) == {"math-model", "poet-model", "big-model", "new-model"}
    assert main(["probe", "--predictor", str(tmp_path / "out"), "--prompts", str(prompts), "--n", "4"]) == 0
    picked = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(picked) == 4 and len({row["line"] for row in picked}) == 4
    assert main(["onboard", "--score", "bad", "--out", str(tmp_path / "x")]) == 2


def test_output_lengths_follow_the_prompt_and_the_model(planted_dataset):
    dataset = planted_dataset(n=120)
    prompts, is_math = planted_prompts(120)
    tokens = np.where(is_math[:, None], 4.0, 120.0) * np.array([1.0, 1.0, 2.0])[None, :]
    tokens[::7, 0] = np.nan  # missing records are skipped
    lengths = OutputLengths.fit(replace(dataset, output_tokens=tokens), prompts)
    estimate = lengths.predict([MATH_PROMPT, POEM_PROMPT], ["math-model", "big-model", "unknown-model"])
    assert estimate[0, 0] < 10 < 60 < estimate[1, 0] < 200
    assert estimate[1, 1] > 1.5 * estimate[1, 0]  # the verbose model
    assert estimate[0, 0] <= estimate[0, 2] <= estimate[0, 1]  # an unknown model: the mean verbosity
    assert OutputLengths.from_json(lengths.to_json()).predict([POEM_PROMPT], ["math-model"]) == pytest.approx(
        estimate[1:, :1]
    )
    assert OutputLengths.fit(replace(dataset, output_tokens=None), prompts) is None


def test_observed_lengths_correct_estimates_within_bounds():
    observed = ObservedLengths()
    assert observed.factor("m") == 1.0
    for _ in range(200):
        observed.observe("m", estimated=100, actual=300)
    assert observed.factor("m") == pytest.approx(301 / 101, rel=0.01)
    for _ in range(200):
        observed.observe("x", estimated=1, actual=10**9)
    assert observed.factor("x") == MAX_CORRECTION
    observed.observe("m", estimated=float("nan"), actual=5)  # ignored
    assert observed.calls("m") == 200


def test_mf_models_each_source_apart_and_predicts_on_one_scale(planted_dataset, tmp_path):
    first, second = planted_dataset(n=80, seed=0), planted_dataset(n=80, seed=1)
    # The second source grades harshly: a right answer there scores 0.5.
    second = replace(second, name="harsh", quality=second.quality * 0.5)
    from routoo.data import concat_datasets

    pooled = concat_datasets([replace(first, name="kind"), second])
    assert pooled.row_sources()[:1] == ["kind"] and pooled.row_sources()[-1] == "harsh"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        predictor = MFPredictor(hidden=0, dim=8, epochs=60, seed=0).fit(pooled)
    assert predictor.sources_ == ["harsh", "kind"]
    harsh_offset, kind_offset = predictor.source_map("harsh")[1], predictor.source_map("kind")[1]
    assert harsh_offset < kind_offset
    assert predictor.source_map("elsewhere") == (1.0, 0.0)
    predictor.save(tmp_path / "mf")
    loaded = load_predictor(tmp_path / "mf")
    assert loaded.sources_ == predictor.sources_
    np.testing.assert_allclose(loaded.predict([MATH_PROMPT]), predictor.predict([MATH_PROMPT]), rtol=1e-5)


def test_mf_on_few_labels_warns(planted_dataset):
    with pytest.warns(UserWarning, match="learns little from fewer than 200"):
        MFPredictor(hidden=0, dim=4, epochs=2).fit(planted_dataset(n=40))


def test_mf_tells_a_prompt_far_from_its_training_prompts(planted_dataset, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        predictor = MFPredictor(hidden=0, dim=8, epochs=30, encoder="static").fit(planted_dataset(n=200))
    unfamiliar = predictor.unfamiliar(
        [MATH_PROMPT, POEM_PROMPT, "Traduisez en allemand : le contrat de bail expire fin juin."]
    )
    assert unfamiliar.tolist() == [False, False, True]
    predictor.save(tmp_path / "mf")
    assert load_predictor(tmp_path / "mf").unfamiliar([MATH_PROMPT]).tolist() == [False]
    assert KNNPredictor(k=3).fit(planted_dataset(n=30)).unfamiliar([MATH_PROMPT]) is None


def test_a_router_scores_a_model_its_predictor_does_not_know_from_a_prior(base, caplog, scripted):
    from routoo import Router

    models = [
        {"name": "scripted/small", "like": "math-model"},
        {"name": "my-finetune", "input_cost_per_token": 1e-7, "output_cost_per_token": 2e-7},
    ]
    with caplog.at_level("WARNING", logger="routoo"):
        router = Router(models, predictor=base)
    assert "my-finetune is not among the models the predictor learned from" in caplog.text
    assert "mean of all known models" in caplog.text
    assert isinstance(router.predictor, OnboardedPredictor) and router.predictor.base_ is base
    decision = router.route(POEM_PROMPT)
    prior = np.clip(base.predict([POEM_PROMPT])[0], 1e-3, 1 - 1e-3)
    expected = 1 / (1 + np.exp(-np.mean(np.log(prior / (1 - prior)))))  # the mean of the known logits
    assert decision.candidate("my-finetune").predicted_quality == pytest.approx(expected)
    # A pool the predictor knows keeps the predictor itself.
    assert Router([models[0]], predictor=base).predictor is base


def test_a_split_keeps_the_source_of_its_prompts(planted_dataset):
    from routoo.data import concat_datasets, train_test_split

    one = planted_dataset(n=40)
    train, test = train_test_split(one, test_fraction=0.25)
    assert set(train.row_sources()) == set(test.row_sources()) == {one.name}
    pooled = concat_datasets([train, replace(planted_dataset(n=20, seed=3), name="other")])
    assert set(pooled.row_sources()) == {one.name, "other"}


def test_the_readme_pool_routes_by_real_names_with_a_prior_for_the_unknown_one(scripted, caplog):
    from routoo import Router

    with caplog.at_level("WARNING", logger="routoo"):
        router = Router(
            [{"name": "scripted/large", "like": "gpt-4o"}, {"name": "scripted/small", "like": "gpt-4o-mini"}]
        )
    assert "gpt-4o-mini is not among the models the predictor learned from" in caplog.text
    assert "mean of its family ['gpt-4o'], moved to mmlu-pro 0.631" in caplog.text
    assert router.prior_only == ["scripted/small"]
    for prompt in (MATH_PROMPT, POEM_PROMPT, "Prove that the square root of 2 is irrational."):
        decision = router.route(prompt)
        large, small = decision.candidate("scripted/large"), decision.candidate("scripted/small")
        # gpt-4o-mini's published MMLU-Pro score is lower than gpt-4o's: so is every prediction.
        assert small.predicted_quality < large.predicted_quality
        assert small.expected_output_tokens == pytest.approx(large.expected_output_tokens, rel=0.5)
        assert "scored from a prior only" in decision.warnings[-1]
