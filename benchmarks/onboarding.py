"""Leave-one-model-out onboarding: how well a model the predictor never saw is learned from k labels.

    python benchmarks/onboarding.py [--quick] [--no-readme]

For each held-out model (13 models over MMLU-Pro, RouterBench and LLMRouter), every label of
it is removed from the pooled training data (all six shared sets' train splits, the default
predictor's recipe), a base ``mf`` is trained on the rest, and the model is onboarded through
``OnboardedPredictor`` (the path ``routoo onboard`` runs) with k = 0, 10, 25, 50, 100, 200
labelled prompts of its set's train split, chosen at random (two draws) or by ``probe``. With
k = 0 the prior is ``like=`` the most similar other model (by agreement of their train
labels) moved by the model's aggregate score on its set's train split, standing in for a
published score. On its set's test split it reports the held-out model's AUC and Brier score,
the AIQ of the whole pool and of a three-model pool (the held-out model, the cheapest and
the best single model), each with bootstrap standard errors, against (a) the pooled ``mf``
trained with all labels, (b) ``like=`` the most similar model alone, (c) tuned kNN trained on
the set with all labels. Writes benchmarks/results/onboarding.{json,png} and README.md's
onboarding block.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np
from readme_block import replace_readme_block
from sklearn.metrics import roc_auc_score
from train_default import PARAMS, SETS

from routoo.catalog import default_catalog
from routoo.data import concat_datasets, load_dataset, train_test_split
from routoo.data.dataset import RoutingDataset
from routoo.evaluate import evaluate
from routoo.predictors import make_predictor
from routoo.predictors.onboarded import OnboardedPredictor, probe

HELD_OUT = {
    "mmlu-pro": [
        "gpt-4o",
        "gemini-1.5-pro-002",
        "Meta-Llama-3_1-70B-Instruct",
        "Qwen1.5-72B-Chat",
        "Mixtral-8x7B-Instruct-v0.1",
        "Phi-3-mini-4k-instruct",
    ],
    "routerbench": ["gpt-4-1106-preview", "claude-v2", "gpt-3.5-turbo-1106", "meta/llama-2-70b-chat"],
    "llmrouter": ["llama-3.1-nemotron-51b-instruct", "qwen2.5-7b-instruct", "gemma-2-9b-it"],
}
KS = (0, 10, 25, 50, 100, 200)
RANDOM_DRAWS = 2
N_BOOTSTRAP = 200
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two held-out models per set, for a smoke run")
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument(
        "--summarise-only", action="store_true", help="rewrite the table and plot from the saved results"
    )
    args = parser.parse_args()
    if args.summarise_only:
        report(json.loads((RESULTS / "onboarding.json").read_text()), args.no_readme)
        return
    catalog = default_catalog()
    splits = {name: train_test_split(load_dataset(name), test_fraction=0.2, seed=0) for name in SETS}
    started = time.perf_counter()
    full = make_predictor("mf", **PARAMS).fit(concat_datasets([train for train, _ in splits.values()]))
    rows = []
    for set_name, models in HELD_OUT.items():
        for model in models[:2] if args.quick else models:
            name = catalog.canonical_name(model)
            test = splits[set_name][1]
            if name not in test.models:
                print(f"skipping {model}: not in {set_name} ({test.models})")
                continue
            rows.append(held_out_model(name, set_name, splits, full))
            print(json.dumps(rows[-1]["summary"]), flush=True)
    saved = {
        "minutes": round((time.perf_counter() - started) / 60),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "onboarding.json").write_text(json.dumps(saved, indent=1) + "\n")
    report(saved, args.no_readme)


def report(saved: dict, no_readme: bool) -> None:
    """The README table and the plot of a run's results."""
    rows = saved["rows"]
    plot(rows, RESULTS / "onboarding.png")
    body = (
        f"{summarise(rows)}\n\n_Measured by `python benchmarks/onboarding.py`: {len(rows)} held-out "
        f"models, {saved['minutes']} min on {saved['machine']}; plot: `benchmarks/results/onboarding.png`._"
    )
    print(body)
    if not no_readme:
        replace_readme_block("onboarding", body)


def held_out_model(model: str, set_name: str, splits: dict, full) -> dict:
    """Every measurement for one held-out model."""
    train, test = splits[set_name]
    without = concat_datasets([_drop(tr, model) for tr, _ in splits.values()])
    base = make_predictor("mf", **PARAMS).fit(without)
    like = most_similar(train, model)
    labelled = np.flatnonzero(~np.isnan(train.quality[:, train.model_index(model)]))
    score = float(np.nanmean(train.quality[labelled, train.model_index(model)]))
    pool3 = three_model_pool(train, model)
    truth = test.quality[:, test.model_index(model)]
    measured: dict[str, dict] = {}

    def measure(label: str, scores: np.ndarray) -> None:
        measured[label] = metrics(test, train, model, scores, truth, pool3)

    measure(
        "all labels (pooled mf)", full.predict(test.prompts)[:, [full.models_.index(m) for m in test.models]]
    )
    like_scores = base.predict(test.prompts)
    measure(
        "like= alone",
        _with_column(like_scores, base.models_, test.models, model, like_scores[:, base.models_.index(like)]),
    )
    knn = make_predictor("knn", k="auto").fit(train)
    measure("tuned kNN, all labels", knn.predict(test.prompts))
    probed = [int(labelled[i]) for i in probe(base, [train.prompts[i] for i in labelled], max(KS), like=like)]
    for k in KS:
        draws = {"probe": probed[:k]} | {
            f"random{draw}": list(np.random.default_rng(draw + 1).permutation(labelled)[:k])
            for draw in range(RANDOM_DRAWS)
        }
        for how, chosen in draws.items():
            if k == 0 and how != "probe":
                continue
            labels = train.subset(chosen).select_models([model]) if chosen else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # few labels warn, as they should
                onboarded = OnboardedPredictor(
                    base, like={model: like}, scores={model: {set_name: score}}
                ).fit(labels)
            predicted = onboarded.predict(test.prompts)
            measure(f"k={k} {how}", predicted[:, [onboarded.models_.index(m) for m in test.models]])
    summary = {"model": model, "set": set_name, "like": like}
    for label, values in measured.items():
        summary[label] = {key: round(value, 4) for key, value in values.items()}
    return {"summary": summary}


def metrics(test, train, model, scores, truth, pool3) -> dict[str, float]:
    column = test.models.index(model)
    has = ~np.isnan(truth)
    y, p = (truth[has] >= 0.5).astype(float), scores[has, column]
    rng = np.random.default_rng(0)
    aucs, briers = [], []
    for _ in range(N_BOOTSTRAP):
        pick = rng.integers(0, len(y), len(y))
        if 0 < y[pick].mean() < 1:
            aucs.append(roc_auc_score(y[pick], p[pick]))
        briers.append(float(np.mean((p[pick] - truth[has][pick]) ** 2)))
    whole = evaluate(test, {"router": scores}, cost_estimate=train.mean_cost(), n_bootstrap=N_BOOTSTRAP)
    columns = [test.models.index(m) for m in pool3]
    three = evaluate(
        test.select_models(pool3),
        {"router": scores[:, columns]},
        cost_estimate=train.mean_cost()[[train.models.index(m) for m in pool3]],
        n_bootstrap=N_BOOTSTRAP,
    )
    return {
        "auc": roc_auc_score(y, p),
        "auc_se": float(np.std(aucs)),
        "brier": float(np.mean((p - truth[has]) ** 2)),
        "brier_se": float(np.std(briers)),
        "aiq_pool": whole["router"].aiq,
        "aiq_pool_se": whole["router"].aiq_stderr,
        "aiq3": three["router"].aiq,
        "aiq3_se": three["router"].aiq_stderr,
        "aiq3_random_mix": three["random mix"].aiq,
    }


def most_similar(train: RoutingDataset, model: str) -> str:
    """The other model of the set whose train labels agree most with ``model``'s (Pearson)."""
    target = train.quality[:, train.model_index(model)]
    best, best_r = "", -np.inf
    for other in train.models:
        if other == model:
            continue
        values = train.quality[:, train.model_index(other)]
        both = ~np.isnan(target) & ~np.isnan(values)
        r = np.corrcoef(target[both], values[both])[0, 1] if both.sum() > 2 else -np.inf
        if np.nan_to_num(r, nan=-np.inf) > best_r:
            best, best_r = other, r
    return best


def three_model_pool(train: RoutingDataset, model: str) -> list[str]:
    """The held-out model, the cheapest and the best single model of the rest (by train averages)."""
    others = [m for m in train.models if m != model]
    cost, quality = train.mean_cost(), np.nanmean(train.quality, axis=0)
    cheapest = min(others, key=lambda m: cost[train.model_index(m)])
    best = max((m for m in others if m != cheapest), key=lambda m: quality[train.model_index(m)])
    return [model, cheapest, best]


def summarise(rows: list[dict]) -> str:
    """Means over the held-out models (random draws averaged first); the gain share as a median."""
    lines = [
        "| held-out model predicted by | AUC | Brier | pool AIQ | 3-model AIQ | share of all-labels gain |",
        "|---|---|---|---|---|---|",
    ]
    for label in _labels(rows[0]["summary"]):
        values = [_averaged(row["summary"], label) for row in rows]
        gains = [_gain_share(row["summary"], label) for row in rows]
        cells = [
            _mean_se(values, "auc"),
            _mean_se(values, "brier"),
            _mean_se(values, "aiq_pool"),
            _mean_se(values, "aiq3"),
            f"{np.median(gains):.0%}",
        ]
        shown = "k=0: like= moved by its aggregate score" if label == "k=0 probe" else label
        lines.append(f"| {shown} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _labels(summary: dict) -> list[str]:
    """The table's rows: the baselines, then each k with its probe and its random draws as one row."""
    labels = [label for label, value in summary.items() if isinstance(value, dict)]
    return list(dict.fromkeys(label.rstrip("0123456789") if "random" in label else label for label in labels))


def _averaged(summary: dict, label: str) -> dict:
    """The label's metrics; for "k=K random", the mean over its random draws."""
    if label in summary:
        return summary[label]
    draws = [summary[f"{label}{draw}"] for draw in range(RANDOM_DRAWS)]
    return {key: float(np.mean([draw[key] for draw in draws])) for key in draws[0]}


def _gain_share(summary: dict, label: str) -> float:
    """(AIQ3 - random mix) over (AIQ3 with all labels - random mix), for one held-out model."""
    full, measured = summary["all labels (pooled mf)"], _averaged(summary, label)
    gain = full["aiq3"] - full["aiq3_random_mix"]
    return (measured["aiq3"] - measured["aiq3_random_mix"]) / gain if gain > 0 else float("nan")


def _mean_se(values: list[dict], key: str) -> str:
    means = np.array([v[key] for v in values])
    se = np.sqrt(np.mean(np.array([v[f"{key}_se"] for v in values]) ** 2) / len(values))
    return f"{means.mean():.3f} ± {se:.3f}"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    labels = _labels(rows[0]["summary"])
    for how, style in (("probe", "o-"), ("random", "s--")):
        ks = [k for k in KS if f"k={k} {how}" in labels]
        shares = [np.median([_gain_share(r["summary"], f"k={k} {how}") for r in rows]) for k in ks]
        axis.plot(ks, shares, style, label=f"onboarded, {how} labels")
    for label, color in (("like= alone", "grey"), ("tuned kNN, all labels", "black")):
        axis.axhline(
            np.median([_gain_share(r["summary"], label) for r in rows]), color=color, ls=":", label=label
        )
    axis.axhline(1.0, color="green", ls="-", lw=0.8, label="all labels (pooled mf)")
    axis.set_xlabel("labelled prompts of the held-out model (k)")
    axis.set_ylabel("share of the all-labels AIQ gain (3-model pool)")
    axis.set_xscale("symlog", linthresh=10)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def _drop(dataset: RoutingDataset, model: str) -> RoutingDataset:
    if model not in dataset.models:
        return dataset
    kept = [m for m in dataset.models if m != model]
    reduced = dataset.select_models(kept)
    has_records = reduced.mask.any(axis=1)
    return reduced.subset(np.flatnonzero(has_records)) if not has_records.all() else reduced


def _with_column(scores, models, wanted, model, column) -> np.ndarray:
    """The test pool's columns of ``scores``, with ``model``'s column given."""
    out = np.stack([column if m == model else scores[:, models.index(m)] for m in wanted], axis=1)
    return out


if __name__ == "__main__":
    main()
