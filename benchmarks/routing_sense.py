"""Does routing make sense on easy and hard prompts? The share sent to the stronger model, by difficulty.

    python benchmarks/routing_sense.py [--no-readme]

Held-out prompts (the test splits of MMLU-Pro, RouterBench and LLMRouter, which the default
predictor never saw) are binned by the share of the set's models that answered them
correctly: the easiest bin is the prompts nearly every model got right, the hardest those
nearly none did. Each prompt is routed by ``Router.route`` (the path every call takes)
with the shipped default predictor and the default policy, for two pools of real model
names resolved through the catalog: the README's pool (gpt-4o and gpt-4o-mini) and a pool
of today's models. The table gives, per bin, the share of prompts routed to the pool's
strongest model (the highest average predicted quality). Writes README.md's
routing-sense block and benchmarks/results/routing_sense.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import warnings
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from readme_block import replace_readme_block

from routoo import Router
from routoo.data import load_dataset, train_test_split

SETS = ("mmlu-pro", "routerbench", "llmrouter")
POOLS = {
    "README pool": ["gpt-4o", "gpt-4o-mini"],
    "today's models": ["gpt-4.1", "claude-sonnet-4-5", "gemini-2.5-flash", "llama-3.1-70b-instruct"],
}
BINS = 5
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    prompts, solved = [], []
    for name in SETS:
        test = train_test_split(load_dataset(name), test_fraction=0.2, seed=0)[1]
        prompts += test.prompts
        solved.append(np.nanmean(test.quality >= 0.5, axis=1))
    share_solved = np.concatenate(solved)
    # Bin 0 holds the easiest prompts (most models right), the last bin the hardest.
    edges = np.quantile(-share_solved, np.linspace(0, 1, BINS + 1))
    bins = np.clip(np.searchsorted(edges, -share_solved, side="right") - 1, 0, BINS - 1)
    results = {}
    for pool_name, models in POOLS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # models known only by their prior warn once, as they should
            router = Router(models)
        quality, _ = router.estimate(prompts)
        strongest = router.models[int(np.argmax(quality.mean(axis=0)))]
        chosen = np.array([router.route(prompt).model for prompt in prompts])
        results[pool_name] = {
            "models": router.models,
            "strongest": strongest,
            "share_to_strongest": [float(np.mean(chosen[bins == b] == strongest)) for b in range(BINS)],
            "share_by_model": {m: float(np.mean(chosen == m)) for m in router.models},
        }
    results["bins"] = {
        "prompts": [int(np.sum(bins == b)) for b in range(BINS)],
        "share_of_models_right": [float(share_solved[bins == b].mean()) for b in range(BINS)],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "routing_sense.json").write_text(json.dumps(results, indent=1) + "\n")
    body = table(results)
    print(body)
    if not args.no_readme:
        replace_readme_block("routing-sense", body)


def table(results: dict) -> str:
    bins = results["bins"]
    header = " | ".join(f"{share:.0%} right" for share in bins["share_of_models_right"])
    lines = [f"| pool (strongest model) | {header} |", "|---" * (BINS + 1) + "|"]
    for pool_name in POOLS:
        row = results[pool_name]
        cells = " | ".join(f"{share:.0%}" for share in row["share_to_strongest"])
        lines.append(f"| {pool_name}: {', '.join(row['models'])} ({row['strongest']}) | {cells} |")
    lines.append("")
    lines.append(
        f"Share of prompts routed to the strongest model, by difficulty bin (easiest first; "
        f"{', '.join(map(str, bins['prompts']))} held-out prompts); "
        f"machine: {platform.machine()}, {os.cpu_count()} CPU cores."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
