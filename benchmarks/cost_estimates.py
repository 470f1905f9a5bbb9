"""Estimated against real cost per call, on held-out prompts, for every model with recorded answers.

    python benchmarks/cost_estimates.py [--no-readme]

Each shared set that records its answers (RouteLLM GSM8K and MT-Bench, RouterBench with its
real per-call costs, MMLU-Pro with gpt-4o's and DeepSeek's API runs) is split 80/20 by
prompt hash as the default predictor was trained; on the test split, a ``Router`` over the
set's models (priced as the set's costs were) estimates every call's cost through
``Router.estimate``, the path every routed call takes. The ratio estimated / real is
summarised per model as its median and interquartile range over all its held-out calls,
beside the ratio the old estimate gave (a model's mean output tokens in the training data,
whatever the prompt). Writes README.md's cost-estimates block and
benchmarks/results/cost_estimates.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from readme_block import replace_readme_block

from routoo import Router
from routoo.data import load_dataset, train_test_split
from routoo.data.dataset import RoutingDataset
from routoo.pool import ModelSpec
from routoo.predictors import load_default

SETS = ("routellm-gsm8k", "routellm-mt-bench", "routerbench", "mmlu-pro")
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    predictor = load_default()
    ratios: dict[str, dict[str, list[np.ndarray]]] = {}
    for name in SETS:
        train, test = train_test_split(load_dataset(name), test_fraction=0.2, seed=0)
        for how, router in routers(test, train, predictor).items():
            estimated = router.estimate(test.prompts)[1]
            recorded = ~np.isnan(test.output_tokens) & (test.cost > 0)
            for column, model in enumerate(test.models):
                has = recorded[:, column]
                if has.any():
                    ratio = estimated[has, column] / test.cost[has, column]
                    ratios.setdefault(model, {}).setdefault(how, []).append(ratio)
    rows = {
        model: {how: _summary(np.concatenate(parts)) for how, parts in by_how.items()}
        for model, by_how in ratios.items()
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cost_estimates.json").write_text(json.dumps(rows, indent=1) + "\n")
    body = table(rows)
    print(body)
    if not args.no_readme:
        replace_readme_block("cost-estimates", body)


def routers(test: RoutingDataset, train: RoutingDataset, predictor) -> dict[str, Router]:
    """The Router as shipped, and one with the old estimate: each model's mean output tokens."""
    prices = _prices(test)
    mean_tokens = np.nanmean(train.output_tokens, axis=0)
    learned = [ModelSpec(name=m, **prices[m]) for m in test.models]
    constant = [
        ModelSpec(name=m, expected_output_tokens=max(float(t), 1.0), **prices[m])
        for m, t in zip(test.models, mean_tokens, strict=True)
    ]
    return {"learned": Router(learned, predictor), "mean tokens": Router(constant, predictor)}


def _prices(dataset: RoutingDataset) -> dict[str, dict[str, float]]:
    """Per-token prices that reproduce the set's recorded costs, fitted per model by least squares.

    Sets priced from token counts give back their list prices exactly; RouterBench's real
    costs give the prices it was billed at.
    """
    prices = {}
    for column, model in enumerate(dataset.models):
        has = ~np.isnan(dataset.cost[:, column]) & ~np.isnan(dataset.output_tokens[:, column])
        design = np.stack([dataset.input_tokens[has], dataset.output_tokens[has, column]], axis=1)
        (per_input, per_output), *_ = np.linalg.lstsq(design, dataset.cost[has, column], rcond=None)
        prices[model] = {
            "input_cost_per_token": max(float(per_input), 0.0),
            "output_cost_per_token": max(float(per_output), 0.0),
        }
    return prices


def _summary(ratio: np.ndarray) -> dict[str, float]:
    q1, median, q3 = np.quantile(ratio, [0.25, 0.5, 0.75])
    return {"calls": len(ratio), "median": float(median), "q1": float(q1), "q3": float(q3)}


def table(rows: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [
        "| model | held-out calls | estimated / real cost: median (IQR) | with mean output tokens (before) |",
        "|---|---|---|---|",
    ]
    for model, by_how in sorted(rows.items()):
        new, old = by_how["learned"], by_how["mean tokens"]
        lines.append(
            f"| {model} | {new['calls']} | {new['median']:.2f} ({new['q1']:.2f}-{new['q3']:.2f}) "
            f"| {old['median']:.2f} ({old['q1']:.2f}-{old['q3']:.2f}) |"
        )
    within = sum(0.8 <= by_how["learned"]["median"] <= 1.25 for by_how in rows.values())
    lines.append("")
    lines.append(
        f"{within} of {len(rows)} models have a median ratio within 0.8-1.25; "
        f"machine: {platform.machine()}, {os.cpu_count()} CPU cores."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
