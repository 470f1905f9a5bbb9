"""Non-finite predictions and prices are refused with errors that name what is wrong, never routed
silently, and ``routoo predict`` never writes NaN (JSON has none)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import MATH_PROMPT, POOL
from reliability_support import fitted

from routoo import predictors
from routoo.cli import main
from routoo.decision import decide
from routoo.errors import ConfigError, DataError, PredictorError
from routoo.policy import RoutingPolicy
from routoo.router import Router
from routoo.testing import ScriptedLLM, register_scripted_provider


@pytest.fixture
def llm() -> ScriptedLLM:
    return register_scripted_provider()


def test_a_predictor_answering_nan_names_itself_and_the_models(llm: ScriptedLLM) -> None:
    router = Router(POOL, fitted((0.9, math.nan, 0.8)))
    for call in (router.route, router.completion, lambda prompt: router.estimate([prompt])):
        with pytest.raises(
            PredictorError, match=r"'table' predictor \(TablePredictor\).*\['scripted/tiny'\]"
        ):
            call(MATH_PROMPT)
    assert llm.calls == []


@pytest.mark.parametrize(
    ("quality", "cost", "error", "message"),
    [
        ([0.5, math.nan], [1.0, 2.0], DataError, r"quality is not a finite number for b: nan"),
        ([0.5, 0.6], [math.inf, 2.0], ConfigError, r"estimated cost .* for a: inf.*prices"),
        ([0.5, 0.6], [1.0, -1.0], ConfigError, r"for b: -1\.0"),
    ],
)
def test_decide_refuses_non_finite_quality_and_cost_naming_the_models(
    quality: list[float], cost: list[float], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        decide(
            ["a", "b"],
            np.array(quality),
            np.array(cost),
            [None, None],
            RoutingPolicy(),
            budgets=(),
            prompt_tokens=1,
        )


def test_an_infinite_price_is_refused(llm: ScriptedLLM) -> None:
    with pytest.raises(ConfigError, match="scripted/small"):
        Router([{**POOL[0], "input_cost_per_token": math.inf, "output_cost_per_token": 1e-6}], fitted())


def test_routoo_predict_never_writes_nan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps({"prompt": p}) for p in ["one", "two"]) + "\n")
    out = tmp_path / "out.jsonl"
    monkeypatch.setattr(predictors, "load_predictor", lambda path: fitted((0.9, math.nan, 0.8)))
    assert main(["predict", "--model", "broken", "--prompts", str(prompts), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "'broken'" in error and "non-finite" in error and "prompt lines [1, 2]" in error
    assert not out.exists()
    monkeypatch.setattr(predictors, "load_predictor", lambda path: fitted())
    assert main(["predict", "--model", "fine", "--prompts", str(prompts), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [{"math-model": 0.9, "poet-model": 0.5, "big-model": 0.95}] * 2
