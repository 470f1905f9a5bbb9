"""Throughput and peak memory of ``routoo label`` on both executors, with scripted models.

    python benchmarks/labelling.py [--prompts 3000] [--latency-s 0.05] [--concurrency 32] [--no-readme]

Labels ``--prompts`` prompts with three scripted models (``routoo.testing``; each answer
waits ``--latency-s`` as a provider's network would, without using the CPU) and a regular
expression grader, through ``Labeller.run``: the code ``routoo label`` runs. Each executor
runs in a fresh process: the local one (one event loop, ``--concurrency`` calls in flight)
and Ray Data on a local Ray instance (``--workers`` workers, each ``--concurrency`` calls in
flight; Ray's start-up counted). Reported: calls, wall time, calls per second, the driver's
peak RSS and, for Ray, the peak of the workers' summed RSS (sampled every 0.2 s). Written to
the README's "label-throughput" block.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

POOL = [
    {"name": "scripted/tiny", "like": "gpt-3.5-turbo-1106"},
    {"name": "scripted/small", "like": "gpt-4o-mini"},
    {"name": "scripted/large", "like": "gpt-4o"},
]


def build_router(latency_s: float) -> Any:
    """The benchmark's router: the shipped predictor over the scripted pool (module level, so
    Ray workers can build their own)."""
    from routoo.router import Router
    from routoo.testing import register_scripted_provider

    register_scripted_provider(latency_s=latency_s)
    return Router(POOL)


def run_one(
    executor_name: str, prompts: int, latency_s: float, concurrency: int, workers: int
) -> dict[str, Any]:
    """Label ``prompts`` prompts with one executor in this process; what it measured."""
    from routoo.labelling import Labeller, LabelStore, LabelTask, LocalExecutor, RegexMatch

    models = [model["name"] for model in POOL]
    tasks = [LabelTask(f"t{i}", f"Question {i}: what is {i} squared?", models[i % 3]) for i in range(prompts)]
    factory = functools.partial(build_router, latency_s)
    if executor_name == "ray":
        import ray

        from routoo.labelling.ray_executor import RayExecutor

        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        executor: Any = RayExecutor(factory, workers=workers, concurrency=concurrency, batch_size=256)
    else:
        executor = LocalExecutor(concurrency)
    sampler = WorkerMemory() if executor_name == "ray" else None
    with tempfile.TemporaryDirectory() as folder:
        labeller = Labeller(factory(), [RegexMatch()], models, executor=executor)
        store = LabelStore(Path(folder) / "run.sqlite")
        started = time.perf_counter()
        summary = labeller.run(tasks, store)
        seconds = time.perf_counter() - started
        labels = labeller.labels(tasks, store)
    calls = sum(summary.sent.values())
    return {
        "executor": executor_name,
        "calls": calls,
        "failed": sum(summary.failed.values()),
        "labels": int(labels.mask.sum()),
        "seconds": seconds,
        "calls_per_s": calls / seconds,
        "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "workers_peak_rss_mb": None if sampler is None else sampler.stop(),
    }


class WorkerMemory:
    """The peak, over time, of the summed RSS of this machine's Ray worker processes."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psutil

        while not self._stop.wait(0.2):
            total = 0
            for process in psutil.process_iter(["name", "memory_info"]):
                if (process.info["name"] or "").startswith("ray::") and process.info["memory_info"]:
                    total += process.info["memory_info"].rss
            self.peak = max(self.peak, total / 2**20)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=3000)
    parser.add_argument("--latency-s", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "labelling.json"))
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--run", choices=["local", "ray"], help=argparse.SUPPRESS)  # one executor, in-process
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_one(args.run, args.prompts, args.latency_s, args.concurrency, args.workers)))
        return
    results = []
    for name in ("local", "ray"):
        command = [sys.executable, __file__, "--run", name, "--prompts", str(args.prompts)]
        command += ["--latency-s", str(args.latency_s), "--concurrency", str(args.concurrency)]
        command += ["--workers", str(args.workers)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]))
    setup = {key: vars(args)[key] for key in ("prompts", "latency_s", "concurrency", "workers")}
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    Path(args.out).write_text(json.dumps({"setup": setup, "machine": machine, "results": results}, indent=2))
    if not args.no_readme:
        from readme_block import replace_readme_block

        replace_readme_block("label-throughput", readme_table(setup, machine, results))


def readme_table(setup: dict[str, Any], machine: str, results: list[dict[str, Any]]) -> str:
    lines = [
        f"`python benchmarks/labelling.py` ({machine}): {setup['prompts']} prompts x 3 scripted models, "
        f"each answer {setup['latency_s']} s away, {setup['concurrency']} calls in flight per process, "
        f"Ray with {setup['workers']} workers on a local instance (its start-up included).",
        "",
        "| executor | calls | failed | wall s | calls/s | driver peak RSS MB | Ray workers peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results:
        workers = "-" if row["workers_peak_rss_mb"] is None else f"{row['workers_peak_rss_mb']:.0f}"
        lines.append(
            f"| {row['executor']} | {row['calls']} | {row['failed']} | {row['seconds']:.1f} | "
            f"{row['calls_per_s']:.0f} | {row['driver_peak_rss_mb']:.0f} | {workers} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
