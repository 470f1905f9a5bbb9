"""The ``routoo`` command: datasets, models, eval, train, onboard, probe, predict, route, calibrate,
report, label, serve.

Each command imports what it needs when it runs, so that ``routoo --help`` starts at once
and no command loads torch or litellm before it needs them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from routoo.errors import ConfigError, RoutooError
from routoo.predictors.registry import PREDICTOR_KINDS

if TYPE_CHECKING:
    import numpy as np


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except RoutooError as error:
        print(f"routoo: error: {error}", file=sys.stderr)
        return 2


# ----------------------------------------------------------------------------- commands
def _datasets(args: argparse.Namespace) -> int:
    from routoo.data import list_datasets, load_dataset

    rows = []
    for info in list_datasets(args.data_dir):
        row: dict[str, Any] = {"name": info.name, "found": str(info.path) if info.path else None}
        if info.path and not args.no_counts:
            row.update(load_dataset(info.name, data_dir=args.data_dir).describe())
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<18} {'prompts':>8} {'models':>6} {'records':>9} {'costs':>5}  where")
    for row in rows:
        where = row["found"] or "not found (set ROUTOO_DATA_DIR or --data-dir)"
        print(
            f"{row['name']:<18} {row.get('prompts', '-'):>8} {row.get('models', '-'):>6} "
            f"{row.get('records', '-'):>9} {'yes' if row.get('has_cost') else '-':>5}  {where}"
        )
    return 0


def _list_models(args: argparse.Namespace) -> int:
    from routoo.catalog import default_catalog
    from routoo.errors import PriceNotFoundError
    from routoo.pricing import PriceBook

    catalog, book = default_catalog(), PriceBook()
    predictor_names: dict[str, list[str]] | None = None
    if args.predictor:
        from routoo.predictors import load_default, load_predictor

        predictor = load_default() if args.predictor == "default" else load_predictor(args.predictor)
        predictor_names = {}
        for name in predictor.models:
            entry = catalog.resolve(name)
            if entry is not None:
                predictor_names.setdefault(entry.name, []).append(name)
    rows = []
    for entry in catalog:
        row: dict[str, Any] = entry.model_dump(mode="json")
        for side in ("input", "output"):
            row[f"{side}_usd_per_million_tokens"] = None
        if entry.litellm_name is not None:
            try:
                price = book.price(entry.litellm_name)
            except PriceNotFoundError:
                pass
            else:
                row["input_usd_per_million_tokens"] = price.input_cost_per_token * 1e6
                row["output_usd_per_million_tokens"] = price.output_cost_per_token * 1e6
        if predictor_names is not None:
            row["predictor_names"] = predictor_names.get(entry.name, [])
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(_models_table(rows))
    return 0


def _models_table(rows: list[dict[str, Any]]) -> str:
    """The catalog as a terminal table: one model per line, prices in USD per million tokens."""

    def number(value: float | None, digits: int = 2) -> str:
        return "-" if value is None else f"{value:,.{digits}f}".rstrip("0").rstrip(".")

    header = ["name", "provider", "family", "params B", "released", "in $/M", "out $/M"]
    with_predictor = bool(rows) and "predictor_names" in rows[0]
    header += ["predictor"] if with_predictor else []
    table = [header]
    for row in rows:
        cells = [
            row["name"],
            row["provider"],
            row["family"] or "-",
            number(row["parameters_b"], 1),
            row["release_date"] or "-",
            number(row["input_usd_per_million_tokens"], 3),
            number(row["output_usd_per_million_tokens"], 3),
        ]
        if with_predictor:
            known = row["predictor_names"]
            cells.append("-" if not known else "yes" if len(known) == 1 else f"yes ({len(known)} names)")
        table.append(cells)
    widths = [max(len(cells[column]) for cells in table) for column in range(len(header))]
    right = {3, 5, 6}  # numbers
    lines = []
    for cells, row in zip(table, [None, *rows], strict=True):
        text = "  ".join(
            cell.rjust(width) if column in right else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )
        sets = "data sets" if row is None else ", ".join(row["datasets"]) or "-"
        lines.append(f"{text}  {sets}")
    return "\n".join(lines)


def _eval(args: argparse.Namespace) -> int:
    from routoo.evaluate import evaluate

    dataset = _load(args)
    train, test = _split(dataset, args)
    print(f"{dataset.name}: {len(train)} train / {len(test)} test prompts, {len(dataset.models)} models")
    routers: dict[str, np.ndarray] = {}
    for spec in args.predictor or ["default"]:
        started = time.perf_counter()
        predictor, label = _predictor_for_eval(spec, train)
        routers[label] = predictor.predict(test.prompts)[:, _columns(predictor, test.models, label)]
        print(f"  {label}: ready in {time.perf_counter() - started:.1f} s")
    report = evaluate(test, routers, cost_estimate=train.mean_cost())
    print(report.table())
    if args.json:
        report.to_json(args.json)
        print(f"wrote {args.json}")
    if args.plot:
        report.plot(args.plot)
        print(f"wrote {args.plot}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from routoo.predictors import make_predictor

    dataset = _load(args)
    train = _split(dataset, args)[0] if args.split != "none" else dataset
    predictor = make_predictor(args.predictor, **_params(args.param))
    started = time.perf_counter()
    predictor.fit(train)
    predictor.save(args.out)
    print(
        f"trained {args.predictor} on {len(train)} prompts x {len(train.models)} models "
        f"in {time.perf_counter() - started:.1f} s; saved to {args.out}"
    )
    return 0


def _onboard(args: argparse.Namespace) -> int:
    from routoo.data import load_dataset
    from routoo.predictors.onboarded import OnboardedPredictor

    labels = load_dataset(args.data) if args.data else None
    scores: dict[str, dict[str, float]] = {}
    for model, benchmark, value in (_score(text) for text in args.score):
        scores.setdefault(model, {})[benchmark] = value
    predictor = OnboardedPredictor(
        base=args.predictor, like=_pairs(args.like, "--like"), scores=scores or None
    ).fit(labels)
    predictor.save(args.out)
    for row in predictor.summary():
        print(
            f"{row['model']}: {row['labels']} labels, prior {row['prior']}; "
            f"read-out moved {row['weights_moved']:.2f} from the prior "
            f"(posterior s.d. {row['weights_std']:.2f})"
        )
    print(f"saved to {args.out}; route with it: Router(models, predictor=load_predictor('{args.out}'))")
    return 0


def _probe(args: argparse.Namespace) -> int:
    from routoo.data import read_prompts_jsonl
    from routoo.predictors import load_default, load_predictor
    from routoo.predictors.onboarded import probe

    predictor = load_default() if args.predictor == "default" else load_predictor(args.predictor)
    prompts = read_prompts_jsonl(args.prompts)
    chosen = probe(predictor, prompts, args.n, like=args.like)
    with _output(args.out) as out:
        for index in chosen:
            out.write(json.dumps({"prompt": prompts[index], "line": index + 1}) + "\n")
    print(
        f"picked {len(chosen)} of {len(prompts)} prompts to label first, most useful first", file=sys.stderr
    )
    return 0


def _score(text: str) -> tuple[str, str, float]:
    """``MODEL:BENCHMARK=VALUE`` (``--score``) as its three parts."""
    head, _, value = text.rpartition("=")
    model, _, benchmark = head.rpartition(":")
    try:
        return model, benchmark, float(value)
    except ValueError:
        raise ConfigError(
            f"--score takes MODEL:BENCHMARK=VALUE (e.g. gpt-4.1:mmlu-pro=0.80), not {text!r}"
        ) from None


def _pairs(items: list[str], flag: str) -> dict[str, str] | None:
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ConfigError(f"{flag} takes NAME=VALUE, not {item!r}")
        pairs[name] = value
    return pairs or None


def _predict(args: argparse.Namespace) -> int:
    import math

    from routoo.data import read_prompts_jsonl
    from routoo.errors import PredictorError
    from routoo.predictors import load_default, load_predictor

    predictor = load_predictor(args.model) if args.model else load_default()
    prompts = read_prompts_jsonl(args.prompts)
    scores = predictor.predict(prompts)
    broken = [row for row, values in enumerate(scores) if not all(map(math.isfinite, values))]
    if broken:  # JSON has no NaN: a broken predictor is an error, never a line of NaN
        raise PredictorError(
            f"predictor {args.model or 'default'!r} predicted a non-finite quality (NaN or infinity) for "
            f"{len(broken)} of {len(scores)} prompts (prompt lines {[row + 1 for row in broken[:10]]}); "
            "nothing was written: check its weights"
        )
    lines = [
        json.dumps(dict(zip(predictor.models_, map(float, row), strict=True)), allow_nan=False)
        for row in scores
    ]
    with _output(args.out) as out:
        out.write("\n".join(lines) + "\n")
    if args.out != "-":
        print(f"wrote {len(lines)} predictions to {args.out}", file=sys.stderr)
    return 0


def _route(args: argparse.Namespace) -> int:
    import functools

    from routoo.router import Router

    if (args.prompt is None) == (args.prompts is None):
        raise ConfigError("give one prompt, or a file of them with --prompts")
    policy = {"tradeoff": args.tradeoff, "quality_floor": args.quality_floor, "max_cost": args.max_cost}
    build = functools.partial(Router, pool_from_text(args.models), predictor=args.model, policy=policy)
    if args.prompt is not None:
        print(json.dumps(build().route(args.prompt).to_dict(), indent=2))
        return 0
    from routoo.batch_routing import route_batch, route_batch_on_ray
    from routoo.data import read_prompts_jsonl

    prompts = read_prompts_jsonl(args.prompts)
    if args.executor == "ray":
        decisions = route_batch_on_ray(build, prompts, workers=args.workers, address=args.ray_address)
    else:
        decisions = route_batch(build(), prompts)
    with _output(args.out) as out:
        for decision in decisions:
            out.write(json.dumps(decision) + "\n")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from routoo.data import read_prompts_jsonl
    from routoo.router import Router
    from routoo.selector import calibrate

    router = Router(pool_from_text(args.models), predictor=args.model)
    prompts = read_prompts_jsonl(args.prompts)
    quality, cost = router.estimate(prompts)
    if args.strong_model and args.strong_model not in router.models:
        raise ConfigError(f"--strong-model {args.strong_model!r} is not one of --models {router.models}")
    strong = router.models.index(args.strong_model) if args.strong_model else None
    tradeoff = calibrate(quality, cost, args.target, args.value, strong_model_index=strong)
    # achieved: what the tradeoff gives on these prompts; it steps prompt by prompt, so it
    # rarely equals the value asked for.
    result = {"tradeoff": tradeoff, "target": args.target, "value": args.value, "achieved": tradeoff.achieved}
    print(json.dumps(result))
    return 0


def _report(args: argparse.Namespace) -> int:
    from routoo.decision_log import DecisionLog
    from routoo.log_report import summarise_log

    report = summarise_log(DecisionLog(args.log).rows(), baseline=args.baseline)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.table())
    if args.plot:
        report.plot(args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- helpers
def _load(args: argparse.Namespace):  # -> RoutingDataset
    from routoo.data import concat_datasets, load_dataset

    names = [name for name in args.data.split(",") if name]
    datasets = [load_dataset(name, data_dir=args.data_dir, prices=args.prices) for name in names]
    return datasets[0] if len(datasets) == 1 else concat_datasets(datasets)


def _split(dataset, args: argparse.Namespace):  # -> (train, test)
    from routoo.data import category_split, train_test_split

    if args.split == "hash":
        return train_test_split(dataset, test_fraction=args.test_fraction, seed=args.seed)
    if args.split.startswith("category:"):
        return category_split(dataset, [c for c in args.split.removeprefix("category:").split(",") if c])
    if args.split == "none":
        return dataset, dataset
    raise ConfigError(f"unknown --split {args.split!r}; use hash, none or category:CAT1,CAT2")


def _predictor_for_eval(spec: str, train):  # -> (Predictor, label)
    from routoo.predictors import load_default, load_predictor, make_predictor

    if spec == "default":
        return load_default(), "routoo-default"
    if spec in PREDICTOR_KINDS:
        return make_predictor(spec).fit(train), spec
    if Path(spec).is_dir():
        return load_predictor(spec), spec
    raise ConfigError(f"--predictor {spec!r} is neither a kind {PREDICTOR_KINDS}, 'default', nor a directory")


def _columns(predictor, models: list[str], label: str) -> list[int]:
    """The predictor's output columns of ``models``, in that order."""
    missing = [m for m in models if m not in predictor.models_]
    if missing:
        raise ConfigError(f"predictor {label!r} does not know the dataset's models {missing}")
    return [predictor.models_.index(m) for m in models]


def _params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"--param {pair!r} must look like name=value")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


@contextlib.contextmanager
def _output(path: str) -> Iterator[TextIO]:
    """The text file ``path`` opened for writing, or stdout for ``-``."""
    if path == "-":
        yield sys.stdout
        return
    with Path(path).open("w", encoding="utf-8") as out:
        yield out


def pool_from_text(text: str) -> list[Any]:
    """``a,b`` or ``gpt-4o=gpt-4-1106-preview,b``: NAME=LIKE maps a model to one the predictor knows."""
    models: list[Any] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, like = item.partition("=")
        models.append({"name": name, "like": like} if like else name)
    return models


def _serve(args: argparse.Namespace) -> int:
    from routoo.server import load_config, serve

    serve(load_config(args.config), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="routoo", description="Learned, cost-aware LLM routing.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def data_args(command: argparse.ArgumentParser) -> None:
        command.add_argument("--data", required=True, help="dataset name or .jsonl; a,b for their union")
        command.add_argument("--data-dir", help="data root (default: $ROUTOO_DATA_DIR)")
        command.add_argument("--prices", help="JSON file of per-token prices overriding litellm's map")
        command.add_argument("--split", default="hash", help="hash (80/20), none, category:A,B")
        command.add_argument("--test-fraction", type=float, default=0.2)
        command.add_argument("--seed", type=int, default=0)

    datasets = commands.add_parser("datasets", help="list the known datasets and where they are")
    datasets.add_argument("--data-dir")
    datasets.add_argument("--no-counts", action="store_true", help="do not load the sets to count them")
    datasets.add_argument("--json", action="store_true")
    datasets.set_defaults(handler=_datasets)

    models = commands.add_parser("models", help="list the model catalog: identities, facts, prices, data")
    models.add_argument(
        "--predictor", help="a saved predictor directory or 'default': say which models it knows"
    )
    models.add_argument("--json", action="store_true", help="print JSON: names, aliases, facts, prices")
    models.set_defaults(handler=_list_models)

    evaluate = commands.add_parser("eval", help="score predictors against baselines and the oracle")
    data_args(evaluate)
    evaluate.add_argument(
        "--predictor",
        action="append",
        default=[],
        help=f"a kind to train on the train split ({', '.join(PREDICTOR_KINDS)}), 'default', "
        "or a saved directory; repeatable (default: the shipped default predictor).",
    )
    evaluate.add_argument("--json", help="write the full report as JSON")
    evaluate.add_argument("--plot", help="write the cost-quality plot as PNG")
    evaluate.set_defaults(handler=_eval)

    train = commands.add_parser("train", help="train a predictor and save it")
    data_args(train)
    train.set_defaults(split="none")
    train.add_argument("--predictor", required=True, help=f"a kind: {', '.join(PREDICTOR_KINDS)}")
    train.add_argument("--param", action="append", default=[], help="constructor setting name=value")
    train.add_argument("--out", required=True, help="directory to save into")
    train.set_defaults(handler=_train)

    predict = commands.add_parser("predict", help="predict every model's quality for prompts")
    predict.add_argument("--model", help="saved predictor directory (default: the shipped one)")
    predict.add_argument("--prompts", required=True, help="JSONL in the generic format, scores absent")
    predict.add_argument("--out", default="-", help="output JSONL (default: stdout)")
    predict.set_defaults(handler=_predict)

    onboard = commands.add_parser("onboard", help="add models to a predictor from a prior and a few labels")
    onboard.add_argument("--predictor", default="default", help="saved predictor directory or 'default'")
    onboard.add_argument("--data", help="labels: generic JSONL with scores for the new models (optional)")
    onboard.add_argument(
        "--like", action="append", default=[], help="NEW=KNOWN: start NEW's prior from KNOWN"
    )
    onboard.add_argument(
        "--score", action="append", default=[], help="MODEL:BENCHMARK=VALUE, a public score in [0, 1]"
    )
    onboard.add_argument("--out", required=True, help="directory to save the onboarded predictor into")
    onboard.set_defaults(handler=_onboard)

    probe = commands.add_parser("probe", help="pick the prompts whose labels teach most about a new model")
    probe.add_argument("--predictor", default="default", help="saved predictor directory or 'default'")
    probe.add_argument("--prompts", required=True, help="candidate prompts, JSONL in the generic format")
    probe.add_argument("--n", required=True, type=int, help="how many prompts to pick")
    probe.add_argument("--like", help="a known model the new one is expected to resemble")
    probe.add_argument("--out", default="-", help="output JSONL (default: stdout)")
    probe.set_defaults(handler=_probe)

    route = commands.add_parser("route", help="show which model a prompt (or a file of them) would go to")
    route.add_argument("prompt", nargs="?")
    route.add_argument("--prompts", help="route each prompt of this JSONL file instead (a decision a line)")
    route.add_argument("--out", default="-", help="with --prompts: output JSONL (default: stdout)")
    route.add_argument("--executor", choices=["local", "ray"], default="local", help="with --prompts")
    route.add_argument("--workers", type=int, default=2, help="Ray workers (--executor ray)")
    route.add_argument("--ray-address", help="the Ray cluster to join (default: a local instance)")
    route.add_argument("--models", required=True, help="comma-separated litellm names; NAME=LIKE to map")
    route.add_argument("--model", help="saved predictor directory (default: the shipped one)")
    route.add_argument("--tradeoff", type=float)
    route.add_argument("--quality-floor", type=float)
    route.add_argument("--max-cost", type=float)
    route.set_defaults(handler=_route)

    calibrate = commands.add_parser("calibrate", help="pick the trade-off that meets a target on prompts")
    calibrate.add_argument("--models", required=True, help="comma-separated litellm names; NAME=LIKE to map")
    calibrate.add_argument("--model", help="saved predictor directory (default: the shipped one)")
    calibrate.add_argument("--prompts", required=True, help="sample prompts, JSONL in the generic format")
    calibrate.add_argument("--target", required=True, choices=["avg_cost", "strong_share", "avg_quality"])
    calibrate.add_argument("--value", required=True, type=float)
    calibrate.add_argument("--strong-model", help="for strong_share: the model whose share is targeted")
    calibrate.set_defaults(handler=_calibrate)

    report = commands.add_parser("report", help="what routing spent, from a decision log, against one model")
    report.add_argument("--log", required=True, help="the decision log (SQLite) to read")
    report.add_argument("--baseline", help="the model to compare with (default: the strongest predicted)")
    report.add_argument("--json", action="store_true", help="print the summary as JSON")
    report.add_argument("--plot", help="write spend per model and cumulative spend as PNG")
    report.set_defaults(handler=_report)

    serve = commands.add_parser("serve", help="serve the router behind an OpenAI-compatible HTTP API")
    serve.add_argument("--config", help="the server config, TOML or .json (default: every default)")
    serve.add_argument("--host", help="the address to listen on (default: the config's, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="the port to listen on (default: the config's, 8000)")
    serve.add_argument("--log-level", default="info", help="uvicorn's log level (default: info)")
    serve.set_defaults(handler=_serve)

    from routoo.labelling.command import add_label_command

    add_label_command(commands)
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
