"""The `routoo` command line, end to end on planted data written as generic JSONL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_public_api import loaded_after

from routoo.cli import main
from routoo.data import read_prompts_jsonl, save_jsonl
from routoo.router import Router
from routoo.selector import Selector, calibrate


@pytest.fixture
def planted_jsonl(planted_dataset, tmp_path: Path) -> Path:
    path = tmp_path / "planted.jsonl"
    save_jsonl(planted_dataset(n=80), path)
    return path


@pytest.fixture
def trained_knn(planted_jsonl: Path, tmp_path: Path, capsys) -> Path:
    """A knn predictor trained and saved by `routoo train`."""
    model_dir = tmp_path / "knn"
    args = [
        "train",
        "--data",
        str(planted_jsonl),
        "--predictor",
        "knn",
        "--param",
        "k=5",
        "--out",
        str(model_dir),
    ]
    assert main(args) == 0
    capsys.readouterr()
    return model_dir


def test_train_predict_and_eval_round_trip(
    trained_knn: Path, planted_jsonl: Path, tmp_path: Path, capsys
) -> None:
    model_dir = trained_knn
    assert json.loads((model_dir / "config.json").read_text())["params"]["k"] == 5

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        json.dumps({"prompt": "Sam has 3 coins and buys 4 more. How many coins does Sam have now?"})
        + "\n"
        + json.dumps({"prompt": [{"role": "user", "content": "Write a haiku about the moon."}]})
        + "\n"
    )
    out = tmp_path / "predictions.jsonl"
    assert main(["predict", "--model", str(model_dir), "--prompts", str(prompts), "--out", str(out)]) == 0
    math, poem = [json.loads(line) for line in out.read_text().splitlines()]
    assert set(math) == {"math-model", "poet-model", "big-model"}
    assert math["math-model"] > math["poet-model"] and poem["poet-model"] > poem["math-model"]

    report_path, plot_path = tmp_path / "report.json", tmp_path / "plot.png"
    code = main(
        ["eval", "--data", str(planted_jsonl), "--predictor", "knn", "--predictor", str(model_dir),
         "--json", str(report_path), "--plot", str(plot_path)]
    )  # fmt: skip
    assert code == 0
    report = json.loads(report_path.read_text())
    names = {result["name"] for result in report["results"]}
    assert {"knn", str(model_dir), "oracle", "random mix", "math-model"} <= names
    assert plot_path.stat().st_size > 0
    assert "AIQ" in capsys.readouterr().out


def test_bad_input_is_a_clear_error_not_a_traceback(planted_jsonl: Path, tmp_path: Path, capsys) -> None:
    assert main(["eval", "--data", str(planted_jsonl), "--predictor", "no-such-kind"]) == 2
    assert "no-such-kind" in capsys.readouterr().err

    assert main(["train", "--data", str(tmp_path / "missing.jsonl"), "--predictor", "knn", "--out", "x"]) == 2
    assert "missing.jsonl" in capsys.readouterr().err

    assert (
        main(["train", "--data", str(planted_jsonl), "--predictor", "knn", "--param", "k", "--out", "x"]) == 2
    )
    assert "name=value" in capsys.readouterr().err


def test_route_and_calibrate_with_a_saved_predictor(trained_knn: Path, planted_jsonl: Path, capsys) -> None:
    from routoo.testing import register_scripted_provider

    register_scripted_provider()
    model_dir = trained_knn
    models = "scripted/small=math-model,scripted/medium=poet-model,scripted/large=big-model"

    assert (
        main(["route", "Write a sonnet about winter snow.", "--models", models, "--model", str(model_dir)])
        == 0
    )
    decision = json.loads(capsys.readouterr().out)
    assert decision["model"] == "scripted/medium"
    assert decision["candidates"][0]["model"] == "scripted/medium"

    # Two models, as in RouteLLM: the poems the math model fails go to the strong one until the
    # tradeoff prices it out, prompt by prompt (their lengths, so their costs, differ).
    pair = "scripted/small=math-model,scripted/large=big-model"
    router = Router(
        [{"name": "scripted/small", "like": "math-model"}, {"name": "scripted/large", "like": "big-model"}],
        predictor=str(model_dir),
    )
    quality, cost = router.estimate(read_prompts_jsonl(planted_jsonl))
    cheapest, priciest = cost.min(axis=1).mean(), cost.max(axis=1).mean()

    def achieved_at(tradeoff: float, target: str) -> float:
        """The strong share or mean cost when every prompt is routed by the tradeoff rule."""
        choice = Selector(tradeoff=tradeoff).select_many(quality, cost)
        if target == "strong_share":
            return float(np.mean(choice == 1))
        return float(cost[np.arange(len(cost)), choice].mean())

    for target, value, strong in [
        ("strong_share", 0.45, ["--strong-model", "scripted/large"]),  # below the 0.5 share at lambda 0
        ("avg_cost", float(cheapest + (priciest - cheapest) / 4), []),
    ]:
        code = main(
            ["calibrate", "--models", pair, "--model", str(model_dir), "--prompts", str(planted_jsonl),
             "--target", target, "--value", str(value), *strong]
        )  # fmt: skip
        assert code == 0
        printed = json.loads(capsys.readouterr().out)
        expected = calibrate(quality, cost, target, value, strong_model_index=1 if strong else None)
        assert printed == {
            "tradeoff": expected, "target": target, "value": value, "achieved": expected.achieved
        }  # fmt: skip
        # It meets the target, says truly what it reaches there, and is the smallest lambda that
        # does: any less and the target is missed (so it gives up no quality the target allows).
        tradeoff, achieved = printed["tradeoff"], printed["achieved"]
        assert achieved == pytest.approx(achieved_at(tradeoff, target)) and achieved <= value
        assert tradeoff > 0 and achieved_at(tradeoff * (1 - 1e-6), target) > value

    wrong_strong = ["--target", "strong_share", "--value", "0.5", "--strong-model", "scripted/other"]
    code = main(["calibrate", "--models", pair, "--model", str(model_dir), "--prompts", str(planted_jsonl),
                 *wrong_strong])  # fmt: skip
    assert code == 2 and "scripted/other" in capsys.readouterr().err


def test_datasets_lists_every_named_set(tmp_path: Path, capsys) -> None:
    assert main(["datasets", "--data-dir", str(tmp_path), "--no-counts", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == [
        "routellm-mmlu", "routellm-gsm8k", "routellm-mt-bench", "routerbench", "llmrouter", "mmlu-pro",
    ]  # fmt: skip
    assert all(row["found"] is None for row in rows)


@pytest.mark.parametrize("argv", [["--help"], ["datasets", "--no-counts"]])
def test_a_command_that_calls_no_model_loads_neither_torch_nor_litellm(argv: list[str]) -> None:
    command = f"from routoo.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:  # --help\n    pass"
    assert loaded_after(command) == []
