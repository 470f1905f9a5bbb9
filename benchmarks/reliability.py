"""Reliability under attack: hard budgets, faults and bad input, through the public Router.

    python benchmarks/reliability.py [--out benchmarks/results/reliability.json] [--no-readme]

Every attack goes through ``Router.completion`` / ``acompletion`` / ``stream`` / ``astream``,
the code users call, with the shipped default predictor. Models answer from
``routoo.testing``'s scripted provider (answers longer than estimated, no usage, random
latency and failures) and, for faults, from ``routoo.testing.ScriptedServer``, an
OpenAI-compatible HTTP server on 127.0.0.1, so litellm's real HTTP path runs (statuses,
Retry-After, dropped streams). Nothing reaches the network.

Reported: calls tried; per budget attack, the worst hard spend over its limit and what was
left reserved; per fault, what the router did and how many requests the failing model got;
per bad input, how the call ended. Written to the README's Reliability block.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from readme_block import replace_readme_block

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from routoo._scripted_server import CONTEXT_WINDOW_ERROR
from routoo.budget import Budget, budget_scope, carry_budgets
from routoo.predictors import load_default
from routoo.router import Router
from routoo.testing import ScriptedServer, register_scripted_provider

RESULTS = Path(__file__).resolve().parent / "results"
# The scripted models, scored as models the shipped default predictor knows.
POOL = [
    {"name": "scripted/small", "like": "gpt-3.5-turbo-1106"},
    {"name": "scripted/tiny", "like": "claude-instant-v1"},
    {"name": "scripted/large", "like": "gpt-4-1106-preview"},
]
PROMPTS = [
    "Sam has 12 marbles and buys 30 more. How many marbles does Sam have now?",
    "Write a haiku about the moon, full of vivid imagery.",
    "Explain why the sky is blue to a ten-year-old.",
    "Prove that there are infinitely many primes.",
]
# Over HTTP: one status per fault class, and what the default policy should make of it.
HTTP_FAULTS: list[tuple[str, dict[str, Any], str]] = [
    ("402 no credit", {"status": 402}, "fallback"),
    ("403 no access", {"status": 403}, "fallback"),
    ("404 retired model", {"status": 404}, "fallback"),
    ("429 rate limit, Retry-After 7 s", {"status": 429, "retry_after": 7}, "fallback"),
    ("500 server error", {"status": 500}, "fallback"),
    ("502 bad gateway", {"status": 502}, "fallback"),
    ("503 overloaded", {"status": 503}, "fallback"),
    ("400 unsupported parameter", {"status": 400}, "fallback"),
    ("400 context window exceeded", {"status": 400, "message": CONTEXT_WINDOW_ERROR}, "fallback"),
    ("answer without usage", {"usage": False}, "answered"),
    ("401 bad key", {"status": 401}, "raise"),
]


def http_pool(base_url: str, smallest_window: str | None = None) -> list[dict[str, Any]]:
    """Three models of the HTTP server, priced in their specs; ``smallest_window`` names the one
    with an 8,000-token context (the others have 32,000)."""
    scored_as = ["gpt-3.5-turbo-1106", "claude-instant-v1", "gpt-4-1106-preview"]
    return [
        {
            "name": f"openai/{name}",
            "like": like,
            "input_cost_per_token": 1e-6 * (i + 1),
            "output_cost_per_token": 3e-6 * (i + 1),
            "max_output_tokens": 1000,
            "max_input_tokens": 8000 if f"openai/{name}" == smallest_window else 32_000,
            "litellm_params": {"api_base": base_url, "api_key": "sk-benchmark"},
        }
        for i, (name, like) in enumerate(zip(["alpha", "beta", "gamma"], scored_as, strict=True))
    ]


class Tally:
    """What the attacks did: calls tried, and the worst state each budget attack left its budgets in."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.calls = 0

    def add(self, attack: str, calls: int, budgets: list[Budget], outcome: str) -> None:
        hard = [b for b in budgets if b.mode == "hard"]
        self.calls += calls
        self.rows.append(
            {
                "attack": attack,
                "calls": calls,
                "worst_spend_over_limit": max((b.spent / b.limit_usd for b in hard), default=None),
                "left_reserved_usd": sum(b.reserved for b in budgets),
                "outcome": outcome,
            }
        )


def counts(results: list[object]) -> str:
    kinds: dict[str, int] = {}
    for result in results:
        name = "answered" if not isinstance(result, BaseException) else type(result).__name__
        kinds[name] = kinds.get(name, 0) + 1
    return ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items(), key=lambda item: -item[1]))


# -------------------------------------------------------------------------- budgets
async def concurrent_long_answers(router: Router, llm: Any, tally: Tally) -> None:
    for model in router.models:
        llm.behave(model, answer_words=3000, latency_s=(0.0, 0.01))
        llm.fail(model, "server_error", times=None, rate=0.1)
    decision = router.route(PROMPTS[0], max_tokens=400)
    per_call = decision.candidate(decision.model).cost_bound
    chains = [Budget(5 * per_call, name=f"chain {i}") for i in range(10)]

    async def chain(budget: Budget, calls: int) -> list[object]:
        with budget_scope(budget):
            return await asyncio.gather(
                *(router.acompletion(PROMPTS[i % 4], max_tokens=400) for i in range(calls)),
                return_exceptions=True,
            )

    with budget_scope(30 * per_call, name="global") as total:
        results = [r for rs in await asyncio.gather(*(chain(b, 30) for b in chains)) for r in rs]
    answered = [r for r in results if not isinstance(r, BaseException)]
    overran = sum(r.cost_usd > r.decision.candidate(r.model).estimated_cost for r in answered)
    tally.add(
        "300 concurrent async calls, answers longer than estimated (10 chain budgets inside a global one, "
        "random latency, 10% random 5xx)",
        len(results),
        [total, *chains],
        f"{counts(results)}; {overran} answers cost more than their estimate",
    )
    llm.clear()


def thread_pool(router: Router, llm: Any, tally: Tally) -> None:
    llm.behave("scripted/small", answer_words=3000, latency_s=(0.0, 0.005))
    with budget_scope(0.05, name="threads") as budget, ThreadPoolExecutor(max_workers=16) as pool:
        call = carry_budgets(lambda prompt: router.completion(prompt, max_tokens=400))
        futures = [pool.submit(call, PROMPTS[i % 4]) for i in range(200)]
        results = [f.exception() or f.result() for f in futures]
    tally.add("200 calls from 16 threads (carry_budgets)", len(results), [budget], counts(results))
    llm.clear()


def missing_usage(router: Router, llm: Any, tally: Tally) -> None:
    for model in router.models:
        llm.behave(model, usage=False)
    results: list[object] = []
    with budget_scope(0.001, name="no usage") as budget:
        for i in range(200):
            try:
                results.append(router.completion(PROMPTS[i % 4], max_tokens=60))
            except Exception as error:
                results.append(error)
    free = sum(not isinstance(r, BaseException) and r.cost_usd == 0 for r in results)
    tally.add(
        "200 answers without usage under a $0.001 cap",
        len(results),
        [budget],
        f"{counts(results)}; {free} charged $0; usage counted locally",
    )
    llm.clear()


async def cancellations(router: Router, llm: Any, tally: Tally) -> None:
    for model in router.models:
        llm.behave(model, latency_s=30.0)
    with budget_scope(1.0, name="wait_for") as budget:
        results = await asyncio.gather(
            *(asyncio.wait_for(router.acompletion(PROMPTS[i % 4]), 1.0) for i in range(50)),
            return_exceptions=True,
        )
    charged = sum(record.basis == "reserved" for record in budget.records)
    tally.add(
        "50 calls cancelled by asyncio.wait_for",
        len(results),
        [budget],
        f"{counts(results)}; {charged} charged their reservation",
    )
    llm.clear()


async def dropped_streams(router: Router, tally: Tally) -> None:
    with budget_scope(10.0, name="dropped") as budget:
        for i in range(25):
            stream = router.stream(PROMPTS[i % 4], max_tokens=200)
            next(stream)
            del stream
            astream = await router.astream(PROMPTS[i % 4], max_tokens=200)
            await anext(astream)
            del astream
        gc.collect()
    tally.add(
        "50 streams read one chunk, then dropped unclosed",
        50,
        [budget],
        f"{len(budget.records)} settled when collected",
    )


def soft_steering(router: Router, tally: Tally) -> list[dict[str, Any]]:
    """40 calls whose rule alone picks the best predicted model, under a soft budget worth 10 of them."""
    candidates = router.route(PROMPTS[3]).candidates
    best = max(candidates, key=lambda candidate: candidate.predicted_quality)
    rows = []
    for rule in (
        {"quality_floor": best.predicted_quality},
        {"max_cost": max(c.estimated_cost for c in candidates)},
    ):
        probe = router.completion(PROMPTS[3], **rule)  # unsteered: what one call really costs
        limit = 10 * probe.cost_usd
        with budget_scope(Budget(limit, mode="soft", expected_calls=40)) as budget:
            decisions = [router.completion(PROMPTS[3], **rule).decision for _ in range(40)]
        rows.append(
            {
                "rule": next(iter(rule)),
                "unsteered_model": probe.model,
                "soft_spend_over_limit": budget.spent / limit,
                "unsteered_spend_over_limit": 40 * probe.cost_usd / limit,
                "steered_calls": sum(d.rule == "budget" for d in decisions),
            }
        )
        tally.calls += 41
    return rows


# --------------------------------------------------------------------------- faults
def http_faults(server: ScriptedServer, predictor: Any, tally: Tally) -> list[dict[str, Any]]:
    rows = []
    for label, answer, expected in HTTP_FAULTS:
        server.clear()
        first = Router(http_pool(server.base_url), predictor).route(PROMPTS[3]).model
        # Each fault meets healthy models; the first has the smallest window (for the context error).
        router = Router(http_pool(server.base_url, smallest_window=first), predictor)
        server.script(first.removeprefix("openai/"), **answer)
        try:
            routed = router.completion(PROMPTS[3])
            did = (
                "answered"
                if routed.model == first
                else f"fell back to {routed.model.removeprefix('openai/')}"
            )
        except Exception as error:
            did = f"raised {type(error).__name__}"
        survived = did.startswith(("answered", "fell back"))
        tally.calls += 1
        rows.append(
            {
                "fault": label,
                "did": did,
                "requests_to_failing_model": server.requests_for(first.removeprefix("openai/")),
                "survived": survived,
                "as_expected": (expected == "raise") != survived,
            }
        )
    return rows


def http_cooldown_retry_and_streams(
    server: ScriptedServer, predictor: Any, tally: Tally
) -> list[dict[str, Any]]:
    router = Router(http_pool(server.base_url), predictor)
    server.clear()
    first = router.route(PROMPTS[3]).model.removeprefix("openai/")
    server.script(first, status=429, times=None)
    answered = sum(router.completion(PROMPTS[3]).model != f"openai/{first}" for _ in range(20))
    rows = [
        {
            "fault": "a model rate-limiting every call, 20 calls",
            "did": f"{answered} of 20 answered by others; it cooled down",
            "requests_to_failing_model": server.requests_for(first),
            "survived": answered == 20,
            "as_expected": answered == 20,
        }
    ]
    server.clear()
    retrying = Router(http_pool(server.base_url), predictor, faults={"rate_limit": "retry"})
    server.script(first, status=429, retry_after=0.05)
    routed = retrying.completion(PROMPTS[3])
    rows.append(
        {
            "fault": "429 with Retry-After 0.05 s, policy rate_limit=retry",
            "did": "answered after waiting" if routed.model == f"openai/{first}" else "fell back",
            "requests_to_failing_model": server.requests_for(first),
            "survived": True,
            "as_expected": routed.model == f"openai/{first}",
        }
    )
    server.clear()
    fresh = Router(http_pool(server.base_url), predictor)
    server.script(first, drop_after_chunks=3, answer_words=200)
    with budget_scope(1.0) as budget:
        stream = fresh.stream(PROMPTS[3])
        try:
            list(stream)
            did = "ended without error"
        except Exception as error:
            did = f"raised {type(error).__name__} mid-stream; charged its reservation"
    rows.append(
        {
            "fault": "stream dropped after 3 chunks",
            "did": did,
            "requests_to_failing_model": server.requests_for(first),
            "survived": False,
            "as_expected": budget.reserved == 0 and budget.records[-1].basis == "reserved",
        }
    )
    tally.calls += 22
    return rows


def deadline(router: Router, llm: Any, tally: Tally) -> dict[str, Any]:
    for model in router.models:
        llm.behave(model, latency_s=0.3)
    llm.fail(router.route(PROMPTS[3]).model, "server_error")
    started = time.perf_counter()
    try:
        router.completion(PROMPTS[3], timeout=0.5)
        did = "answered"
    except Exception as error:
        did = f"raised {type(error).__name__}"
    elapsed = time.perf_counter() - started
    llm.clear()
    tally.calls += 1
    return {
        "fault": "every model 0.3 s slow, the first fails, timeout=0.5 s for the whole call",
        "did": f"{did} after {elapsed:.2f} s",
        "requests_to_failing_model": 1,
        "survived": False,
        "as_expected": did == "raised DeadlineExceededError",
    }


# ----------------------------------------------------------------------- bad inputs
def bad_inputs(router: Router, llm: Any, tally: Tally) -> list[dict[str, str]]:
    nan_predictor_router = Router(POOL, router.predictor)
    nan_predictor_router.predictor = _NaNPredictor(router.predictor)  # as NaN weights would answer
    mystery = {"name": "scripted/mystery", "like": "gpt-4-1106-preview", "input_cost_per_token": 1e-6}
    mystery |= {"output_cost_per_token": 1e-6}
    cases: list[tuple[str, Callable[[], object]]] = [
        ("a predictor answering NaN", lambda: nan_predictor_router.completion(PROMPTS[0])),
        (
            "an infinite price",
            lambda: Router([{**POOL[0], "input_cost_per_token": math.inf}], router.predictor),
        ),
        ("a prompt with a lone surrogate (cannot be encoded)", lambda: router.completion("bad \ud83d half")),
        ("an empty prompt", lambda: router.completion("   ")),
        ("no messages", lambda: router.completion([])),
        ("content: null", lambda: router.completion([{"role": "user", "content": None}])),
        ("an unknown role", lambda: router.completion([{"role": "wizard", "content": "hi"}])),
        ("max_tokens=-5", lambda: router.completion(PROMPTS[0], max_tokens=-5)),
        ("timeout=0", lambda: router.completion(PROMPTS[0], timeout=0)),
        (
            "faults={'rate_limit': 'ignore'}",
            lambda: router.completion(PROMPTS[0], faults={"rate_limit": "ignore"}),
        ),
        ("a hard budget over a model with no output limit", lambda: _unbounded(router, mystery)),
    ]
    rows = []
    for label, call in cases:
        sent = len(llm.calls)
        try:
            call()
            ended = "answered"
        except Exception as error:
            ended = f"{type(error).__name__}: {_short(str(error))}"
        rows.append({"input": label, "ended": ended, "requests_sent": len(llm.calls) - sent})
    tally.calls += len(cases)
    return rows


class _NaNPredictor:
    """The default predictor answering NaN for every model."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.models = inner.models

    def predict(self, prompts: Any) -> Any:
        scores = self.inner.predict(prompts)
        scores[:, :] = math.nan
        return scores


def _unbounded(router: Router, mystery: dict[str, Any]) -> object:
    with budget_scope(1.0):
        return Router([mystery], router.predictor).completion(PROMPTS[0])


def _short(text: str, length: int = 110) -> str:
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1] + "…"


# ---------------------------------------------------------------------------- report
def readme_block(result: dict[str, Any]) -> str:
    budgets, faults, inputs = result["budget_attacks"], result["faults"], result["bad_inputs"]
    worst = max(row["worst_spend_over_limit"] or 0 for row in budgets)
    survived = sum(row["survived"] for row in faults)
    as_said = sum(row["as_expected"] for row in faults)
    lines = [
        f"Measured by `python benchmarks/reliability.py` on {result['machine']}, "
        f"in {result['seconds']:.0f} s: {result['calls_tried']} calls through the public `Router`, against "
        "`routoo.testing`'s scripted provider and, for faults, an OpenAI-compatible HTTP server on 127.0.0.1 "
        "(litellm's real HTTP path).",
        "",
        f"- Hard budgets: worst spend {worst:.4f}x the limit (never over it); "
        f"${sum(row['left_reserved_usd'] for row in budgets):.2g} left reserved after every attack.",
        f"- Faults: {len(faults)} kinds; {survived} survived (answered after a fallback or a retry), "
        "the rest "
        f"raised as they must (a bad key, a stream cut mid-way, a spent deadline); {as_said} of "
        f"{len(faults)} ended as the `FaultPolicy` says.",
        f"- Bad inputs: {len(inputs)} tried, each ended in a named error "
        f"({sum(row['requests_sent'] for row in inputs)} requests sent).",
        "",
        "| budget attack | calls | hard spend / limit (worst) | left reserved | outcome |",
        "|---|---|---|---|---|",
    ]
    for row in budgets:
        ratio = "-" if row["worst_spend_over_limit"] is None else f"{row['worst_spend_over_limit']:.4f}"
        left = f"${row['left_reserved_usd']:.2g}"
        lines.append(f"| {row['attack']} | {row['calls']} | {ratio} | {left} | {row['outcome']} |")
    lines += [
        "",
        "| soft budget rule | spend / limit | unsteered: spend / limit | calls steered |",
        "|---|---|---|---|",
    ]
    for row in result["soft_budgets"]:
        spend, unsteered = row["soft_spend_over_limit"], row["unsteered_spend_over_limit"]
        lines.append(f"| `{row['rule']}` | {spend:.2f} | {unsteered:.2f} | {row['steered_calls']} of 40 |")
    lines += ["", "| fault | what the router did | requests to the failing model |", "|---|---|---|"]
    for row in faults:
        lines.append(f"| {row['fault']} | {row['did']} | {row['requests_to_failing_model']} |")
    lines += ["", "| bad input | how the call ended | requests sent |", "|---|---|---|"]
    for row in inputs:
        lines.append(f"| {row['input']} | {row['ended']} | {row['requests_sent']} |")
    return "\n".join(lines)


async def run_attacks(router: Router, llm: Any, tally: Tally) -> None:
    await concurrent_long_answers(router, llm, tally)
    await cancellations(router, llm, tally)
    await dropped_streams(router, tally)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "reliability.json")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    for logger in ("routoo", "LiteLLM"):  # the attacks make them log thousands of warnings
        logging.getLogger(logger).setLevel(logging.ERROR)
    import litellm

    litellm.suppress_debug_info = True
    started = time.perf_counter()
    llm = register_scripted_provider(seed=7)
    predictor = load_default()
    router = Router(POOL, predictor)
    tally = Tally()
    asyncio.run(run_attacks(router, llm, tally))
    thread_pool(router, llm, tally)
    missing_usage(router, llm, tally)
    soft = soft_steering(Router(POOL, predictor), tally)
    with ScriptedServer() as server:
        faults = http_faults(server, predictor, tally)
        faults += http_cooldown_retry_and_streams(server, predictor, tally)
    faults.append(deadline(Router(POOL, predictor), llm, tally))
    inputs = bad_inputs(router, llm, tally)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}, "
        f"Python {platform.python_version()}, litellm {_version('litellm')}",
        "calls_tried": tally.calls,
        "budget_attacks": tally.rows,
        "soft_budgets": soft,
        "faults": faults,
        "bad_inputs": inputs,
    }
    result["seconds"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    block = readme_block(result)
    print(block)
    if not args.no_readme:
        replace_readme_block("reliability", block)


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    main()
