"""``routoo serve`` under load: hundreds of concurrent streams on loopback; errors, ledger, overhead.

    python benchmarks/server_load.py [--streams 500] [--sequential 200] [--synchronous full] [--no-readme]

Starts the server (``routoo.server.BackgroundServer``) on 127.0.0.1 with ``routoo.testing``'s
scripted models (answering at once: what is measured is the server, not a model), the shipped
predictor, a durable ledger (``--synchronous full``: every write synced to disk) and the decision log,
and one key with a hard budget. Then:

- overhead: ``--sequential`` streams one at a time through the server with the official
  ``openai`` client, and as many straight to the scripted provider (``litellm.acompletion``,
  the same model, messages and stream), interleaved; the server's own cost per request is
  the difference of their percentiles (routing, HTTP, server-sent events, the ledger's writes);
- load: ``--streams`` streams at once, each with its own session; errors (none expected),
  the latency spread, and whether the money adds up: the sum of every stream's cost (its
  last chunk) against the key's spend in the server, in the ledger file after the server
  stopped, and in the decision log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from readme_block import replace_readme_block

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS = Path(__file__).resolve().parent / "results"
KEY = "sk-benchmark-0123456789"
POOL = [
    {"name": "scripted/small", "like": "gpt-3.5-turbo-1106"},
    {"name": "scripted/large", "like": "gpt-4-1106-preview"},
]
QUESTIONS = [
    "What is 2+2?",
    "Prove that there are infinitely many primes.",
    "Write a haiku about the moon.",
    "Summarise the causes of the French revolution in three sentences.",
]


def config(folder: Path, synchronous: str):  # -> ServerConfig
    from routoo.server import ServerConfig

    return ServerConfig(
        models=POOL,
        scripted=True,
        keys=[{"name": "load", "secret": KEY, "budget_usd": 100.0}],
        ledger={"path": folder / "ledger.sqlite", "synchronous": synchronous},
        log=folder / "decisions.sqlite",
    )


def messages(index: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"{QUESTIONS[index % len(QUESTIONS)]} (request {index})"}]


async def through_server(client: Any, index: int) -> tuple[float, float, str]:
    """Seconds to the end of one stream through the server, its cost and its model."""
    started = time.perf_counter()
    stream = await client.chat.completions.create(
        model="routoo",
        messages=messages(index),
        stream=True,
        extra_headers={"x-routoo-session": f"load-{index}"},
    )
    last = None
    async for chunk in stream:
        last = chunk
    assert last is not None
    routed = last.model_extra["routoo"]
    return time.perf_counter() - started, routed["cost_usd"], routed["model"]


async def direct(model: str, index: int) -> float:
    """Seconds to the end of the same stream straight from the scripted provider."""
    from routoo._litellm import litellm

    started = time.perf_counter()
    stream = await litellm.acompletion(
        model=model, messages=messages(index), stream=True, stream_options={"include_usage": True}
    )
    async for _ in stream:
        pass
    return time.perf_counter() - started


def percentiles(seconds: list[float]) -> dict[str, float]:
    millis = sorted(1000 * s for s in seconds)
    return {
        "p50_ms": statistics.median(millis),
        "p99_ms": millis[min(len(millis) - 1, int(0.99 * len(millis)))],
    }


async def overhead(client: Any, count: int) -> dict[str, Any]:
    served, straight = [], []
    for index in range(count):
        seconds, _, model = await through_server(client, index)
        served.append(seconds)
        straight.append(await direct(model, index))
    server, provider = percentiles(served), percentiles(straight)
    return {
        "requests": count,
        "server": server,
        "direct": provider,
        "overhead_p50_ms": server["p50_ms"] - provider["p50_ms"],
        "overhead_p99_ms": server["p99_ms"] - provider["p99_ms"],
    }


async def load(client: Any, count: int) -> dict[str, Any]:
    started = time.perf_counter()
    outcomes = await asyncio.gather(
        *(through_server(client, 10_000 + i) for i in range(count)), return_exceptions=True
    )
    wall = time.perf_counter() - started
    answered = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
    errors = [f"{type(o).__name__}: {o}" for o in outcomes if isinstance(o, BaseException)]
    return {
        "streams": count,
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:5],
        "seconds": wall,
        "streams_per_s": count / wall,
        "latency": percentiles([seconds for seconds, _, _ in answered]) if answered else None,
        "costs": [cost for _, cost, _ in answered],
        "models": {model: sum(m == model for _, _, m in answered) for model in {m for _, _, m in answered}},
    }


async def drive(server: Any, sequential: int, streams: int) -> tuple[dict[str, Any], dict[str, Any], float]:
    import httpx
    from openai import AsyncOpenAI

    limits = httpx.Limits(max_connections=streams, max_keepalive_connections=streams)
    async with httpx.AsyncClient(limits=limits, timeout=120) as http:
        client = AsyncOpenAI(base_url=server.base_url, api_key=KEY, max_retries=0, http_client=http)
        await through_server(client, -1)  # warm: the first call loads what is lazy
        measured = await overhead(client, sequential)
        loaded = await load(client, streams)
        budget = await http.get(
            f"{server.base_url}/routoo/budget", headers={"Authorization": f"Bearer {KEY}"}
        )
        return measured, loaded, budget.json()["spent_usd"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=500, help="concurrent streams under load")
    parser.add_argument("--sequential", type=int, default=200, help="streams one at a time, for the overhead")
    parser.add_argument("--synchronous", choices=["full", "normal"], default="full", help="the ledger's")
    parser.add_argument("--out", type=Path, default=RESULTS / "server_load.json")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    import logging

    from routoo.decision_log import DecisionLog
    from routoo.server import BackgroundServer
    from routoo.server.keys import SpendLedger

    logging.getLogger("routoo").setLevel(logging.ERROR)  # scripted models scored from priors warn
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        with BackgroundServer(config(Path(folder), args.synchronous)) as server:
            measured, loaded, served_spend = asyncio.run(drive(server, args.sequential, args.streams))
        ledger = SpendLedger(Path(folder) / "ledger.sqlite")
        on_disk = ledger.open()["load"]
        ledger.close()
        logged = sum(row["cost_usd"] for row in DecisionLog(Path(folder) / "decisions.sqlite").rows())
    costs = loaded.pop("costs")
    # Every call of the run: the warm-up and the sequential ones were charged to the same key.
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}, "
        f"Python {platform.python_version()}, litellm {version('litellm')}, uvicorn {version('uvicorn')}",
        "ledger_synchronous": args.synchronous,
        "overhead": measured,
        "load": loaded,
        "ledger": {
            "load_streams_cost_usd": sum(costs),
            "spent_in_server_usd": served_spend,
            "spent_on_disk_usd": on_disk,
            "spent_in_decision_log_usd": logged,
            "exact": math.isclose(served_spend, on_disk, rel_tol=1e-12)
            and math.isclose(on_disk, logged, rel_tol=1e-9),
        },
        "seconds": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    block = readme_block(result)
    print(block)
    if not args.no_readme:
        replace_readme_block("server-load", block)
    if loaded["errors"] or not result["ledger"]["exact"]:
        sys.exit(1)


def readme_block(result: dict[str, Any]) -> str:
    overhead, loaded, ledger = result["overhead"], result["load"], result["ledger"]
    latency = loaded["latency"] or {"p50_ms": math.nan, "p99_ms": math.nan}
    return "\n".join(
        [
            f"Measured by `python benchmarks/server_load.py --streams {loaded['streams']} --sequential "
            f"{overhead['requests']} --synchronous {result['ledger_synchronous']}` on {result['machine']}, "
            f"in {result['seconds']:.0f} s: `routoo serve` on 127.0.0.1 with the scripted models (answering "
            "at once), the shipped predictor, the durable ledger "
            + (
                "(every write synced to disk)"
                if result["ledger_synchronous"] == "full"
                else "(written through, synced at checkpoints)"
            )
            + " and the decision log; streams through the official `openai` client, which runs in the "
            "server's process (one GIL on these 2 cores), so the overhead below counts the client's "
            "HTTP and event parsing too.",
            "",
            "| measure | p50 | p99 |",
            "|---|---|---|",
            f"| one stream at a time, through the server | {overhead['server']['p50_ms']:.1f} ms | "
            f"{overhead['server']['p99_ms']:.1f} ms |",
            f"| the same streams straight from the provider | {overhead['direct']['p50_ms']:.1f} ms | "
            f"{overhead['direct']['p99_ms']:.1f} ms |",
            f"| overhead per request (server, HTTP, client) | {overhead['overhead_p50_ms']:.1f} ms | "
            f"{overhead['overhead_p99_ms']:.1f} ms |",
            f"| {loaded['streams']} streams at once, each to its end | {latency['p50_ms']:.0f} ms | "
            f"{latency['p99_ms']:.0f} ms |",
            "",
            f"- Under load: {loaded['errors']} errors in {loaded['streams']} concurrent streams "
            f"({loaded['streams_per_s']:.0f} streams/s; models {loaded['models']}).",
            f"- Ledger: ${ledger['spent_in_server_usd']:.6f} spent in the server, "
            f"${ledger['spent_on_disk_usd']:.6f} in the ledger file after it stopped, "
            f"${ledger['spent_in_decision_log_usd']:.6f} in the decision log: "
            + ("exact." if ledger["exact"] else "MISMATCH."),
        ]
    )


if __name__ == "__main__":
    main()
