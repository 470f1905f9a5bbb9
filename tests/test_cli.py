"""The `routoo` command line, end to end on planted data written as generic JSONL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from routoo.cli import main
from routoo.data import save_jsonl


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

    code = main(
        ["calibrate", "--models", models, "--model", str(model_dir), "--prompts", str(planted_jsonl),
         "--target", "strong_share", "--value", "0.5", "--strong-model", "scripted/large"]
    )  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out)["tradeoff"] >= 0


def test_datasets_lists_every_named_set(tmp_path: Path, capsys) -> None:
    assert main(["datasets", "--data-dir", str(tmp_path), "--no-counts", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == [
        "routellm-mmlu", "routellm-gsm8k", "routellm-mt-bench", "routerbench", "llmrouter", "mmlu-pro",
    ]  # fmt: skip
    assert all(row["found"] is None for row in rows)
