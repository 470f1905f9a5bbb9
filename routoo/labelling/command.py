"""``routoo label``: the command line of the label loop (registered by ``routoo.cli``)."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from typing import TYPE_CHECKING, Any

from routoo.errors import ConfigError

if TYPE_CHECKING:
    from routoo.router import Router

EPILOG = """\
graders (--grader, repeatable; a task's label is the first grade that is not None):
  exact | numeric[:REL_TOL] | choice | regex[:PATTERN]   against the task's "reference"
  rubric:JUDGE | pairwise:judge=JUDGE,reference=MODEL    an LLM judge (added to the pool)
  feedback                                               the log's thumbs or score (--from-log)
"""


def add_label_command(commands: Any) -> None:
    """Register ``routoo label`` on the ``routoo`` command's subparsers."""
    label = commands.add_parser(
        "label",
        help="run models on prompts, grade the answers, write training labels",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = label.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompts", help='JSONL of {"prompt", "id"?, "reference"?, "category"?} lines')
    source.add_argument(
        "--from-log", help="a decision log kept with record_text=True: its prompts and feedback"
    )
    label.add_argument(
        "--models", required=True, help="the models to label, comma-separated; NAME=LIKE to map"
    )
    label.add_argument("--grader", action="append", required=True, help="how answers are graded (below)")
    label.add_argument("--store", required=True, help="SQLite file of answers and verdicts (resumes a run)")
    label.add_argument("--out", help="write the labels here as training JSONL (routoo train / onboard)")
    label.add_argument("--budget", type=float, help="hard USD limit: the run stops before passing it")
    label.add_argument("--max-tokens", type=int, help="cap on every answer's length (tightens the budget)")
    label.add_argument(
        "--dry-run", action="store_true", help="print the calls left and their cost; send none"
    )
    label.add_argument("--predictor", help="saved predictor directory (default: the shipped one)")
    label.add_argument("--executor", choices=["local", "ray"], default="local")
    label.add_argument("--concurrency", type=int, default=8, help="calls in flight (per Ray worker)")
    label.add_argument("--workers", type=int, default=2, help="Ray workers (--executor ray)")
    label.add_argument("--ray-address", help="the Ray cluster to join (default: a local instance)")
    label.add_argument(
        "--batch-api",
        action="store_true",
        help="send each model's calls as one batch through its provider's batch API (OpenAI, Azure): "
        "about half the price, results when the batch completes; a rerun polls the batches left open",
    )
    label.add_argument("--poll-interval", type=float, default=30.0, help="seconds between polls of a batch")
    label.add_argument(
        "--rate-limit",
        action="append",
        default=[],
        help="PROVIDER=RPM[,TPM]: requests and tokens per minute for one provider (* for any)",
    )
    label.add_argument("--scripted", action="store_true", help="register the offline scripted provider")
    label.set_defaults(handler=_label)


def build_router(
    models: list[Any], predictor: str | None, rate_limits: dict[str, Any] | None, scripted: bool
) -> Router:
    """The Router a label run calls through (module level, so Ray workers can rebuild it)."""
    from routoo.router import Router

    if scripted:
        from routoo.testing import register_scripted_provider

        register_scripted_provider()
    return Router(models, predictor=predictor, rate_limits=rate_limits)


def _label(args: argparse.Namespace) -> int:
    from routoo.budget import Budget
    from routoo.cli import pool_from_text
    from routoo.decision_log import DecisionLog
    from routoo.labelling import Labeller, LabelStore, LocalExecutor, parse_grader, read_tasks, tasks_from_log

    graders = [parse_grader(spec) for spec in args.grader]
    labelled = pool_from_text(args.models)
    names = [model if isinstance(model, str) else model["name"] for model in labelled]
    extra = [g.judge_model for g in graders] + [g.reference_model for g in graders]
    pool = labelled + [model for model in dict.fromkeys(extra) if model is not None and model not in names]
    factory = functools.partial(
        build_router, pool, args.predictor, _rate_limits(args.rate_limit), args.scripted
    )
    if args.batch_api and args.executor == "ray":
        raise ConfigError(
            "--batch-api sends the calls from this process through the providers' batch APIs; "
            "it cannot run on Ray: leave out --executor ray"
        )
    router = factory()
    store = LabelStore(args.store)
    executor: Any = LocalExecutor(args.concurrency, progress=sys.stderr.isatty())
    if args.batch_api:
        from routoo.labelling.batch_api import BatchApiExecutor

        executor = BatchApiExecutor(store, poll_interval_s=args.poll_interval, progress=sys.stderr.isatty())
    elif args.executor == "ray":
        from routoo.labelling.ray_executor import RayExecutor

        executor = RayExecutor(
            factory, workers=args.workers, concurrency=args.concurrency, address=args.ray_address
        )
    labeller = Labeller(router, graders, names, max_tokens=args.max_tokens, executor=executor)
    tasks = read_tasks(args.prompts) if args.prompts else tasks_from_log(DecisionLog(args.from_log), store)
    estimate = labeller.estimate(tasks, store)
    if args.dry_run:
        print(json.dumps({"calls_left": estimate.calls, "estimated_cost_usd": estimate.cost_usd}, indent=2))
        return 0
    print(
        f"routoo label: {sum(estimate.calls.values())} calls, estimated ${estimate.total_usd:.6g}",
        file=sys.stderr,
    )
    budget = None if args.budget is None else Budget(args.budget, mode="hard", name="routoo label --budget")
    summary = labeller.run(tasks, store, budget)
    report = {
        "sent": dict(summary.sent),
        "failed": dict(summary.failed),
        "cost_usd": summary.cost_usd,
        "judge_cost_usd": store.judge_cost(),
        "calls_left": summary.left,
        "stopped": summary.stopped,
        "first_errors": summary.errors,
    }
    if args.out:
        from routoo.data import save_jsonl

        dataset = labeller.labels(tasks, store)
        save_jsonl(dataset, args.out)
        report["labelled_prompts"] = len(dataset)
        report["labels"] = int(dataset.mask.sum())
    print(json.dumps(report, indent=2))
    if summary.stopped == "budget":
        print("routoo: the budget stopped the run; rerun with the same --store to go on", file=sys.stderr)
        return 3
    return 0


def _rate_limits(items: list[str]) -> dict[str, Any] | None:
    """``["openai=500,200000", "*=60"]`` as ``RateLimits`` fields."""
    providers: dict[str, dict[str, float]] = {}
    for item in items:
        provider, _, numbers = item.partition("=")
        parts = numbers.split(",")
        try:
            values = [float(part) for part in parts]
        except ValueError:
            values = []
        if not provider or not 1 <= len(values) <= 2:
            raise ConfigError(f"--rate-limit {item!r}: use PROVIDER=REQUESTS_PER_MINUTE[,TOKENS_PER_MINUTE]")
        limit = {"requests_per_minute": values[0]}
        if len(values) == 2:
            limit["tokens_per_minute"] = values[1]
        providers[provider] = limit
    return {"providers": providers} if providers else None
