"""examples/label_loop.py runs the whole loop offline: traffic through RoutooChat into the log,
labels from a judge, onboarding, routing tomorrow's questions, and the savings report's plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_langchain_examples import load_example

from routoo import DecisionLog
from routoo.data import load_jsonl
from routoo.predictors import load_predictor
from routoo.predictors.base import CONFIG_FILE
from routoo.predictors.registry import DEFAULT_PREDICTOR_DIR


def test_the_label_loop_example_runs_end_to_end(tmp_path: Path) -> None:
    if not (DEFAULT_PREDICTOR_DIR / CONFIG_FILE).is_file():
        pytest.skip("the default predictor is not installed")
    example = load_example("label_loop")
    outcome = example.main(tmp_path)
    today, tomorrow = len(example.TODAY), len(example.TOMORROW)
    # The answers the log held were not bought again: one call per other model, one judge call each.
    assert outcome["summary"].sent == {"answer": 2 * today, "judge": 3 * today}
    labels = load_jsonl(tmp_path / "labels.jsonl")
    assert labels.models == ["scripted/small", "scripted/large", "scripted/medium"] and len(labels) == today
    assert labels.mask.all() and (labels.cost > 0).all() and labels.latency_s is not None
    # Large is right on every question, so the judge rated it 9 everywhere; small on the additions only.
    np.testing.assert_allclose(labels.quality[:, 1], 8 / 9)
    assert labels.quality[:, 0].mean() == pytest.approx((8 / 9 + 1 / 9) / 2)
    assert set(load_predictor(tmp_path / "onboarded").models) >= set(labels.models)
    for name in ("before", "after"):
        assert len(DecisionLog(tmp_path / f"tomorrow-{name}.sqlite").rows()) == tomorrow
        assert 0 <= outcome["right"][name] <= tomorrow and outcome["spent"][name] > 0
    assert (tmp_path / "savings.png").stat().st_size > 0
