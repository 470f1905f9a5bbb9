"""What routing did, from the decision log: spend against always using one model, shares, fallbacks.

``summarise_log(DecisionLog(path).rows())`` is I/O-free: it reads the rows the log returns
(``routoo/decision_log.py``) and gives a frozen ``LogReport`` with a JSON form, a terminal
table and a PNG plot; ``routoo report --log FILE`` prints it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routoo.errors import DataError

# The columns a report reads from each row.
REPORT_COLUMNS = ("answered_by", "estimated_cost_usd", "cost_usd", "latency_s", "candidates", "fallbacks")


@dataclass(frozen=True)
class LogReport:
    """A summary of logged calls.

    ``baseline_cost_usd`` is what the calls would have cost had ``baseline_model`` answered
    them all. It is an estimate, not a measurement: per call, the decision's estimated cost of
    the baseline scaled by how far that call's real cost was from the estimate of the model
    that answered it (real / estimated; unscaled where the answering model had no positive
    estimate; the real cost where the baseline answered). ``estimate_ratio_*`` describe that
    real / estimated ratio over the calls with a positive estimate (None when none had one).
    ``spend_by_call`` and ``baseline_by_call`` are per call, oldest first; they feed the plot
    and are left out of ``to_dict``.
    """

    calls: int
    spend_usd: float
    baseline_model: str
    baseline_cost_usd: float
    savings_usd: float
    savings_share: float | None  # of the baseline cost; None when that is 0
    calls_by_model: dict[str, int]
    share_by_model: dict[str, float]
    spend_by_model: dict[str, float]
    calls_with_fallback: int
    fallback_rate: float
    estimate_ratio_median: float | None
    estimate_ratio_quartiles: tuple[float, float] | None  # 25th and 75th percentiles
    estimated_calls: int  # the calls with a positive estimate
    mean_latency_s: float
    spend_by_call: tuple[float, ...]
    baseline_by_call: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data (the per-call series left out)."""
        data = {name: value for name, value in vars(self).items() if not name.endswith("_by_call")}
        if self.estimate_ratio_quartiles is not None:
            data["estimate_ratio_quartiles"] = list(self.estimate_ratio_quartiles)
        return data

    def table(self) -> str:
        """The summary as terminal text: totals, then one line per answering model."""
        saved = "" if self.savings_share is None else f" ({self.savings_share:.1%})"
        if self.estimate_ratio_median is None or self.estimate_ratio_quartiles is None:
            ratio = "no call had a positive estimate"
        else:
            low, high = self.estimate_ratio_quartiles
            ratio = f"median {self.estimate_ratio_median:.3g} (IQR {low:.3g}-{high:.3g})"
        lines = [
            f"calls           {self.calls}",
            f"spent           ${self.spend_usd:.6g}",
            f"baseline        ${self.baseline_cost_usd:.6g} estimated, "
            f"had {self.baseline_model} answered all",
            f"saved           ${self.savings_usd:.6g}{saved}",
            f"fallbacks       {self.calls_with_fallback} calls ({self.fallback_rate:.1%})",
            f"real/estimated  {ratio} over {self.estimated_calls} calls",
            f"mean latency    {self.mean_latency_s:.3g} s",
            "",
        ]
        width = max(len("model"), *map(len, self.calls_by_model))
        lines.append(f"{'model':<{width}}  {'calls':>6}  {'share':>6}  spend")
        for model, count in self.calls_by_model.items():
            share, spend = self.share_by_model[model], self.spend_by_model[model]
            lines.append(f"{model:<{width}}  {count:>6}  {share:>6.1%}  ${spend:.6g}")
        return "\n".join(lines)

    def plot(self, path: str | Path) -> Path:
        """Save a PNG: spend per answering model, and cumulative spend routed against the baseline."""
        from matplotlib.figure import Figure  # slow to import: only when plotting
        from matplotlib.ticker import MaxNLocator

        path = Path(path)
        # A bare Figure renders with the Agg canvas and leaves pyplot's global state alone.
        figure = Figure(figsize=(12, 5), layout="tight")
        by_model, over_time = figure.subplots(1, 2)
        models = list(self.spend_by_model)
        by_model.bar(models, [self.spend_by_model[m] for m in models])
        by_model.set_ylabel("spend (USD)")
        by_model.set_title("spend per answering model")
        by_model.tick_params(axis="x", labelrotation=30)
        numbers = np.arange(1, self.calls + 1)
        over_time.plot(numbers, np.cumsum(self.spend_by_call), label="routed (real)")
        over_time.plot(
            numbers, np.cumsum(self.baseline_by_call), "--", label=f"always {self.baseline_model} (estimated)"
        )
        over_time.xaxis.set_major_locator(MaxNLocator(integer=True))
        over_time.set_xlabel("calls, oldest first")
        over_time.set_ylabel("cumulative spend (USD)")
        over_time.grid(alpha=0.3)
        over_time.legend(fontsize=8)
        figure.suptitle(f"{self.calls} routed calls")
        figure.savefig(path, dpi=120, format="png")
        return path


def summarise_log(rows: Iterable[Mapping[str, Any]], baseline: str | None = None) -> LogReport:
    """Summarise decision-log rows (``DecisionLog.rows()``) against ``baseline``, a model among the
    candidates of every row; by default the one with the highest average predicted quality."""
    rows = list(rows)
    if not rows:
        raise DataError("the decision log has no calls to report on")
    for number, row in enumerate(rows, 1):
        missing = [column for column in REPORT_COLUMNS if column not in row]
        if missing:
            raise DataError(f"decision-log row {number} lacks the columns {missing}")
    # Per row, each candidate's estimated cost; the baseline needs one in every row.
    estimates = [{c["model"]: c["estimated_cost"] for c in row["candidates"]} for row in rows]
    priced = [model for model in estimates[0] if all(_cost(e.get(model)) is not None for e in estimates)]
    baseline = _strongest(rows, priced) if baseline is None else baseline
    if baseline not in priced:
        unpriced = sum(_cost(e.get(baseline)) is None for e in estimates)
        raise DataError(
            f"baseline {baseline!r} has no estimated cost in {unpriced} of {len(rows)} logged calls; "
            f"models estimated in every call: {priced}"
        )

    spend = np.array([float(row["cost_usd"]) for row in rows])
    estimated = np.array([_cost(row["estimated_cost_usd"]) or math.nan for row in rows])  # 0: no ratio
    ratios = spend / estimated  # NaN where the answering model had no positive estimate
    baseline_costs = np.array([e[baseline] for e in estimates]) * np.where(np.isnan(ratios), 1.0, ratios)
    answered = [row["answered_by"] for row in rows]
    baseline_costs = np.where([model == baseline for model in answered], spend, baseline_costs)

    calls_by_model = dict(Counter(answered).most_common())
    spend_by_model = dict.fromkeys(calls_by_model, 0.0)
    for model, cost in zip(answered, spend, strict=True):
        spend_by_model[model] += float(cost)
    known = ratios[~np.isnan(ratios)]
    quartiles = np.percentile(known, [25, 50, 75]) if known.size else None
    fallbacks = sum(bool(row["fallbacks"]) for row in rows)
    total, baseline_total = float(spend.sum()), float(baseline_costs.sum())
    return LogReport(
        calls=len(rows),
        spend_usd=total,
        baseline_model=baseline,
        baseline_cost_usd=baseline_total,
        savings_usd=baseline_total - total,
        savings_share=(baseline_total - total) / baseline_total if baseline_total > 0 else None,
        calls_by_model=calls_by_model,
        share_by_model={model: count / len(rows) for model, count in calls_by_model.items()},
        spend_by_model=spend_by_model,
        calls_with_fallback=fallbacks,
        fallback_rate=fallbacks / len(rows),
        estimate_ratio_median=None if quartiles is None else float(quartiles[1]),
        estimate_ratio_quartiles=None if quartiles is None else (float(quartiles[0]), float(quartiles[2])),
        estimated_calls=int(known.size),
        mean_latency_s=float(np.mean([row["latency_s"] for row in rows])),
        spend_by_call=tuple(map(float, spend)),
        baseline_by_call=tuple(map(float, baseline_costs)),
    )


def _strongest(rows: list[Mapping[str, Any]], models: list[str]) -> str:
    """Of ``models``, the one with the highest predicted quality averaged over the rows that score it."""
    qualities: dict[str, list[float]] = {model: [] for model in models}
    for row in rows:
        for candidate in row["candidates"]:
            if candidate["model"] in qualities and candidate["predicted_quality"] is not None:
                qualities[candidate["model"]].append(candidate["predicted_quality"])
    averages = {model: float(np.mean(values)) for model, values in qualities.items() if values}
    if not averages:
        raise DataError(
            "no model has both a predicted quality and an estimated cost in every logged call: "
            "name the baseline (--baseline MODEL)"
        )
    return max(averages, key=averages.__getitem__)


def _cost(value: Any) -> float | None:
    """``value`` as a cost (a finite number >= 0), or None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    return None
