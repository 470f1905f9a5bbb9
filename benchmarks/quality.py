"""The quality table: every predictor against the baselines and the oracle on every shared set.

    python benchmarks/quality.py                    # all sets, all predictors, README table
    python benchmarks/quality.py --sets routerbench --predictors mf,knn-tuned --no-readme

Each set is split 80/20 by prompt hash; every predictor trains on the train split and is
scored on the test split by ``routoo.evaluate`` (AIQ with bootstrap standard errors, the
best single model's quality and cost, RouteLLM's APGR/CPT on two-model sets). The shipped
default predictor (``routoo-default``, trained by ``benchmarks/train_default.py`` on the
union of the train splits) is scored on the same test splits. Out-of-domain rows train on
some categories and test on the others. Writes ``benchmarks/results/quality.json``, one
JSON report and one PNG plot per experiment, and the tables in README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# torch's OpenMP workers otherwise spin waiting on each other on a small shared CPU.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from baselines import LogisticProbe
from readme_block import replace_readme_block

from routoo.data import RoutingDataset, category_split, load_dataset, train_test_split
from routoo.evaluate import EvaluationReport, evaluate
from routoo.evaluate.metrics import cost_to_reach, nondecreasing_hull
from routoo.predictors import Predictor, load_default, make_predictor

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SETS = ("routellm-mmlu", "routellm-gsm8k", "routellm-mt-bench", "routerbench", "llmrouter", "mmlu-pro")
BASELINES = ("knn-tuned", "logistic-probe")
PREDICTORS: dict[str, Callable[[], Predictor]] = {
    "knn-tuned": lambda: make_predictor("knn", k="auto"),
    "logistic-probe": LogisticProbe,
    "knn": lambda: make_predictor("knn"),
    "mf": lambda: make_predictor("mf"),
    "mf-pairwise": lambda: make_predictor("mf", loss="pairwise"),
    "mf-listwise": lambda: make_predictor("mf", loss="listwise"),
    "mf-static": lambda: make_predictor("mf", encoder="static"),
    "ensemble": lambda: make_predictor("ensemble"),  # tuned knn + mf, averaged
    "encoder": lambda: make_predictor("encoder"),
    "causal-lm": lambda: make_predictor("causal-lm"),
}
# Transformer predictors are slow on a 2-core CPU: they run only on --heavy-sets, training
# on at most --max-train prompts of the train split.
CAPPED = {"encoder", "causal-lm"}
OUT_OF_DOMAIN = {
    "mmlu-pro": ["law", "history", "philosophy", "psychology", "economics", "health", "other"],
    "routerbench": ["mbpp"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--predictors", default=",".join(PREDICTORS))
    parser.add_argument("--ood-predictors", default="knn-tuned,logistic-probe,mf,mf-static,ensemble")
    parser.add_argument("--max-train", type=int, default=1500, help="cap for encoder and causal-lm")
    parser.add_argument(
        "--heavy-sets",
        default="routellm-gsm8k,routellm-mt-bench,routerbench",
        help="the sets on which encoder and causal-lm run",
    )
    parser.add_argument("--no-default", action="store_true", help="do not score the shipped default")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()

    RESULTS.mkdir(parents=True, exist_ok=True)
    names = [n for n in args.predictors.split(",") if n]
    unknown = [n for n in names if n not in PREDICTORS]
    if unknown:
        raise SystemExit(f"unknown predictors {unknown}; known: {list(PREDICTORS)}")
    default = None if args.no_default else load_default()
    rows: list[dict[str, Any]] = []
    for set_name in [s for s in args.sets.split(",") if s]:
        dataset = load_dataset(set_name)
        train, test = train_test_split(dataset, test_fraction=0.2, seed=0)
        heavy = set_name in args.heavy_sets.split(",")
        chosen = [n for n in names if heavy or n not in CAPPED]
        rows += run(set_name, train, test, chosen, args.max_train, default)
        if set_name in OUT_OF_DOMAIN:
            train, test = category_split(dataset, OUT_OF_DOMAIN[set_name])
            ood = [n for n in args.ood_predictors.split(",") if n]
            rows += run(f"{set_name} (out-of-domain)", train, test, ood, args.max_train, None)
    summary = {"machine": machine(), "max_train": args.max_train, "heavy_sets": args.heavy_sets, "rows": rows}
    (RESULTS / "quality.json").write_text(json.dumps(summary, indent=2) + "\n")
    table = markdown(rows)
    print(table)
    if not args.no_readme:
        write_readme(table, summary["machine"], args.heavy_sets, args.max_train)


def run(
    experiment: str,
    train: RoutingDataset,
    test: RoutingDataset,
    names: list[str],
    max_train: int,
    default: Predictor | None,
) -> list[dict[str, Any]]:
    """Train each predictor on ``train``, evaluate all on ``test``; one summary row per router."""
    print(f"== {experiment}: {len(train)} train / {len(test)} test, {len(test.models)} models", flush=True)
    routers: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for name in names:
        subset = train
        if name in CAPPED and len(train) > max_train:
            keep = np.random.default_rng(0).choice(len(train), max_train, replace=False)
            subset = train.subset(np.sort(keep))
        started = time.perf_counter()
        predictor = PREDICTORS[name]().fit(subset)
        seconds[name] = time.perf_counter() - started
        routers[name] = predictor.predict(test.prompts)
        print(f"  {name}: trained on {len(subset)} prompts in {seconds[name]:.0f} s", flush=True)
    if default is not None and all(m in default.models_ for m in test.models):
        columns = [default.models_.index(m) for m in test.models]
        routers["routoo-default"] = default.predict(test.prompts)[:, columns]
    report = evaluate(test, routers, cost_estimate=train.mean_cost())
    slug = re.sub(r"[^a-z0-9]+", "-", experiment.lower()).strip("-")
    report.to_json(RESULTS / f"{slug}.json")
    report.plot(RESULTS / f"{slug}.png")
    print(report.table(), flush=True)
    return summarise(experiment, report, seconds, len(train))


def summarise(
    experiment: str, report: EvaluationReport, seconds: dict[str, float], n_train: int
) -> list[dict[str, Any]]:
    baseline_aiq = max(
        (report[b].aiq for b in BASELINES if any(r.name == b for r in report.results)), default=None
    )
    oracle_aiq = report["oracle frontier"].aiq
    rows = []
    for result in report.results:
        if result.kind == "model":
            continue
        row = {
            "experiment": experiment,
            "router": result.name,
            "kind": result.kind,
            "aiq": result.aiq,
            "aiq_stderr": result.aiq_stderr,
            "max_quality": result.max_quality,
            "max_quality_cost": result.max_quality_cost,
            "quality_at_best_model_cost": result.quality_at_best_model_cost,
            "cost_to_match_best_model": result.cost_to_match_best_model,
            "best_model": report.best_model,
            "best_model_quality": float(report[report.best_model].max_quality),
            "train_seconds": seconds.get(result.name),
            "n_train": n_train,
            "n_test": report.n_prompts,
            "apgr": result.apgr,
            "cpt50": result.cpt50,
            "cpt80": result.cpt80,
        }
        if baseline_aiq is not None and oracle_aiq > baseline_aiq:
            row["gap_closed"] = (result.aiq - baseline_aiq) / (oracle_aiq - baseline_aiq)
        if report.strong_model is not None:
            strong = report[report.strong_model]
            target = 0.95 * strong.max_quality
            reach = cost_to_reach(nondecreasing_hull(result.costs, result.qualities), target)
            row["saving_at_95pct_strong"] = None if reach is None else 1 - reach / strong.max_quality_cost
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    def number(value: Any, spec: str = ".3f") -> str:
        return "-" if value is None else format(value, spec)

    lines = [
        "| set | router | AIQ ± s.e. | gap closed | max quality | quality at best single's cost "
        "| cost to match best single | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['experiment']} | {r['router']} | {r['aiq']:.3f} ± {r['aiq_stderr']:.3f} "
            f"| {number(r.get('gap_closed'), '.0%')} | {r['max_quality']:.3f} "
            f"| {number(r['quality_at_best_model_cost'])} | {number(r['cost_to_match_best_model'], '.0%')} "
            f"| {number(r['train_seconds'], '.0f')} |"
        )
    two_model = [r for r in rows if "saving_at_95pct_strong" in r]
    if two_model:
        lines += [
            "",
            "| set | router | APGR | CPT(50%) | CPT(80%) | cost saving at 95% of strong quality |",
            "|---|---|---|---|---|---|",
        ]
        for r in two_model:
            lines.append(
                f"| {r['experiment']} | {r['router']} | {number(r['apgr'])} | {number(r['cpt50'], '.0%')} "
                f"| {number(r['cpt80'], '.0%')} | {number(r['saving_at_95pct_strong'], '.0%')} |"
            )
    return "\n".join(lines)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}"


def write_readme(table: str, where: str, heavy_sets: str, max_train: int) -> None:
    body = (
        f"Measured by `python benchmarks/quality.py` on {where}. `encoder` and `causal-lm` run on "
        f"{heavy_sets} only, trained on at most {max_train} prompts (CPU time); single models' "
        "numbers and plots per experiment are in `benchmarks/results/`.\n\n"
        f"{table}"
    )
    replace_readme_block("quality", body)


if __name__ == "__main__":
    main()
