"""``routoo report`` and ``summarise_log``, offline: a real decision log written by routing calls
through the scripted provider, its numbers checked against the rows by hand, the JSON and the PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import MATH_PROMPT, POEM_PROMPT, POOL
from reliability_support import fitted

from routoo import DecisionLog
from routoo.cli import main
from routoo.errors import DataError
from routoo.log_report import summarise_log
from routoo.router import Router
from routoo.testing import ScriptedLLM


@pytest.fixture
def log_path(scripted: ScriptedLLM, tmp_path: Path) -> Path:
    """A log of six calls: three routed, two pinned to scripted/large, one that fell back."""
    path = tmp_path / "calls.sqlite"
    router = Router(POOL, fitted(), log=path)
    for prompt in [MATH_PROMPT, POEM_PROMPT, MATH_PROMPT]:
        router.completion(prompt)
    for _ in range(2):
        router.completion(POEM_PROMPT, policy={"model": "scripted/large"})
    scripted.fail("scripted/small", "rate_limit")
    router.completion(MATH_PROMPT)
    return path


@pytest.fixture
def rows(log_path: Path) -> list[dict[str, Any]]:
    return DecisionLog(log_path).rows()


def estimate(row: dict[str, Any], model: str) -> float:
    return next(c["estimated_cost"] for c in row["candidates"] if c["model"] == model)


def test_the_numbers_match_the_rows(rows: list[dict[str, Any]]) -> None:
    report = summarise_log(rows)
    answered = [row["answered_by"] for row in rows]
    assert len(set(answered)) >= 2 and "scripted/large" in answered  # the log is not trivial
    assert report.calls == 6 and report.spend_usd == pytest.approx(sum(row["cost_usd"] for row in rows))
    assert report.baseline_model == "scripted/large"  # the predictor scores big-model highest
    by_hand = [
        row["cost_usd"]
        if row["answered_by"] == "scripted/large"
        else estimate(row, "scripted/large") * row["cost_usd"] / row["estimated_cost_usd"]
        for row in rows
    ]
    assert report.baseline_by_call == pytest.approx(by_hand)
    assert report.baseline_cost_usd == pytest.approx(sum(by_hand))
    assert report.savings_usd == pytest.approx(sum(by_hand) - report.spend_usd) and report.savings_usd > 0
    assert report.savings_share == pytest.approx(report.savings_usd / report.baseline_cost_usd)
    assert sum(report.share_by_model.values()) == pytest.approx(1.0)
    assert report.calls_by_model == {model: answered.count(model) for model in set(answered)}
    assert sum(report.spend_by_model.values()) == pytest.approx(report.spend_usd)
    assert (report.calls_with_fallback, report.fallback_rate) == (1, pytest.approx(1 / 6))
    ratios = [row["cost_usd"] / row["estimated_cost_usd"] for row in rows]
    assert report.estimate_ratio_median == pytest.approx(np.median(ratios)) and report.estimated_calls == 6
    assert report.estimate_ratio_quartiles == pytest.approx(tuple(np.percentile(ratios, [25, 75])))
    assert report.mean_latency_s == pytest.approx(np.mean([row["latency_s"] for row in rows]))


def test_a_named_baseline_and_bad_ones(rows: list[dict[str, Any]]) -> None:
    report = summarise_log(rows, baseline="scripted/tiny")
    assert report.baseline_model == "scripted/tiny"
    tiny = [
        row["cost_usd"]
        if row["answered_by"] == "scripted/tiny"
        else estimate(row, "scripted/tiny") * row["cost_usd"] / row["estimated_cost_usd"]
        for row in rows
    ]
    assert report.baseline_cost_usd == pytest.approx(sum(tiny)) and report.savings_usd < 0  # the cheapest
    with pytest.raises(DataError, match=r"baseline 'nope' has no estimated cost in 6 of 6"):
        summarise_log(rows, baseline="nope")
    missing = [{**row, "candidates": row["candidates"][:1]} if i == 0 else row for i, row in enumerate(rows)]
    dropped = rows[0]["candidates"][1]["model"]
    with pytest.raises(DataError, match=rf"{dropped!r} has no estimated cost in 1 of 6"):
        summarise_log(missing, baseline=dropped)


def test_rows_without_an_estimate_are_left_out_of_the_ratio(rows: list[dict[str, Any]]) -> None:
    unestimated = [{**row, "estimated_cost_usd": None} for row in rows]
    report = summarise_log(unestimated)
    assert report.estimated_calls == 0 and report.estimate_ratio_median is None
    assert report.estimate_ratio_quartiles is None and "no call had a positive estimate" in report.table()
    # Unscaled: the baseline's own estimate, or the real cost where the baseline answered.
    unscaled = [
        row["cost_usd"] if row["answered_by"] == "scripted/large" else estimate(row, "scripted/large")
        for row in rows
    ]
    assert report.baseline_cost_usd == pytest.approx(sum(unscaled))


def test_an_empty_log_and_a_row_without_columns_are_clear_errors(rows: list[dict[str, Any]]) -> None:
    with pytest.raises(DataError, match="no calls"):
        summarise_log([])
    with pytest.raises(DataError, match=r"row 2 lacks the columns \['cost_usd'\]"):
        summarise_log([rows[0], {k: v for k, v in rows[1].items() if k != "cost_usd"}])


def test_to_dict_and_table(rows: list[dict[str, Any]]) -> None:
    report = summarise_log(rows)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["spend_usd"] == pytest.approx(report.spend_usd) and "spend_by_call" not in data
    assert data["estimate_ratio_quartiles"] == pytest.approx(list(report.estimate_ratio_quartiles or ()))
    table = report.table()
    assert "had scripted/large answered all" in table and all(
        model in table for model in report.calls_by_model
    )


def test_the_command_prints_json_and_writes_the_plot(
    log_path: Path, rows: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "report.png"
    argv = ["report", "--log", str(log_path), "--baseline", "scripted/small", "--json", "--plot", str(plot)]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(summarise_log(rows, baseline="scripted/small").to_dict()))
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["report", "--log", str(log_path)]) == 0
    assert "had scripted/large answered all" in capsys.readouterr().out


def test_the_command_names_a_missing_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--log", str(tmp_path / "missing.sqlite")]) == 2
    assert "no decision log" in capsys.readouterr().err
