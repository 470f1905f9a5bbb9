"""How much a predictor's AIQ moves with its training seed alone, on one shared set.

    python benchmarks/seed_spread.py --set mmlu-pro --kind mf --params loss=listwise --seeds 4

Same split as ``benchmarks/quality.py`` (80/20 by prompt hash), one fit per seed, scored
together by ``routoo.evaluate``; prints one line per seed. The spread says how far two
tables may differ without anything having changed but the seed.
"""

from __future__ import annotations

import argparse
import os

# torch's OpenMP workers otherwise spin waiting on each other on a small shared CPU.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from routoo.data import load_dataset, train_test_split
from routoo.evaluate import evaluate
from routoo.predictors import make_predictor


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set", default="mmlu-pro")
    parser.add_argument("--kind", default="mf")
    parser.add_argument("--params", default="", help="comma-separated name=value constructor settings")
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    params = dict(item.split("=", 1) for item in args.params.split(",") if item)
    train, test = train_test_split(load_dataset(args.set))
    routers = {
        f"seed {seed}": make_predictor(args.kind, **params, seed=seed).fit(train)
        for seed in range(args.seeds)
    }
    report = evaluate(test, routers)
    for name in routers:
        result = report[name]
        setting = f"{args.set} {args.kind} {args.params or '-'} {name}"
        print(f"{setting}: AIQ {result.aiq:.4f} ± {result.aiq_stderr:.4f}")


if __name__ == "__main__":
    main()
