"""A PNG of an ``EvaluationReport``: quality against average cost, and against strong-call share."""

from __future__ import annotations

from itertools import cycle
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from routoo.evaluate.metrics import nondecreasing_hull

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from routoo.evaluate.report import EvaluationReport, RouterResult

# Average costs spanning more than this ratio are drawn on a log axis.
_LOG_SPAN = 100.0
_BASELINE_COLORS = {"oracle": "black", "oracle_frontier": "black", "random": "grey", "model": "dimgrey"}


def plot_report(report: EvaluationReport, path: str | Path) -> Path:
    """Draw ``report`` to a PNG at ``path``: a second panel appears for two-model sets."""
    path = Path(path)
    two_models = report.strong_model is not None
    # A bare Figure renders with the Agg canvas and leaves pyplot's global state alone.
    figure = Figure(figsize=(13 if two_models else 7.5, 5.5), layout="tight")
    axes = figure.subplots(1, 2 if two_models else 1, squeeze=False)
    router_colors = cycle(colormaps["tab20"].colors)  # colours repeat only past 20 routers
    colors = {
        result.name: _BASELINE_COLORS.get(result.kind) or next(router_colors) for result in report.results
    }
    _cost_panel(axes[0, 0], report, colors)
    if two_models:
        _share_panel(axes[0, 1], report, colors)
    figure.suptitle(f"{report.dataset}: {report.n_prompts} test prompts")
    figure.savefig(path, dpi=120, format="png")
    return path


def _cost_panel(axes: Axes, report: EvaluationReport, colors: dict[str, object]) -> None:
    high = report.cost_range[1]
    costs = np.concatenate([result.costs for result in report.results])
    log_x = bool(costs.min() > 0 and costs.max() / costs.min() > _LOG_SPAN)
    for result in report.results:
        label = f"{result.name} (AIQ {result.aiq:.3f})"
        if result.costs.size == 1:
            _point(axes, result, result.costs, result.qualities, colors[result.name], label)
            continue
        # Draw the hull AIQ integrates, flat up to the dearest single model, over the raw points.
        hull_costs, hull_qualities = nondecreasing_hull(result.costs, result.qualities)
        xs = np.append(hull_costs, max(high, hull_costs[-1]))
        if log_x:  # the hull is linear in cost: sample it densely so it keeps its shape on a log axis
            xs = np.union1d(xs, np.geomspace(xs[0], xs[-1], 300))
        style = "--" if result.kind == "random" else "-"
        axes.plot(
            xs, np.interp(xs, hull_costs, hull_qualities), style, color=colors[result.name], label=label
        )
        axes.scatter(result.costs, result.qualities, s=6, color=colors[result.name], alpha=0.5)
    if log_x:
        axes.set_xscale("log")
    _finish(axes, "average cost per prompt (USD)")


def _share_panel(axes: Axes, report: EvaluationReport, colors: dict[str, object]) -> None:
    for result in report.results:
        if result.strong_shares is None or result.strong_qualities is None:
            continue
        order = np.argsort(result.strong_shares, kind="stable")
        shares, qualities = 100.0 * result.strong_shares[order], result.strong_qualities[order]
        label = result.name if result.apgr is None else f"{result.name} (APGR {result.apgr:.3f})"
        if shares.size == 1:
            _point(axes, result, shares, qualities, colors[result.name], label)
        else:
            style = "--" if result.kind == "random" else "-"
            axes.plot(shares, qualities, style, color=colors[result.name], label=label)
    _finish(axes, f"calls to the strong model {report.strong_model} (%)")


def _point(
    axes: Axes, result: RouterResult, xs: np.ndarray, ys: np.ndarray, color: object, label: str
) -> None:
    if result.kind == "model":  # single models: labelled points, kept out of the legend
        axes.scatter(xs, ys, color=color, s=18, zorder=3)
        axes.annotate(result.name, (xs[0], ys[0]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    else:
        marker = "*" if result.kind == "oracle" else "D"
        axes.scatter(xs, ys, color=color, marker=marker, s=90, zorder=4, label=label)


def _finish(axes: Axes, xlabel: str) -> None:
    axes.set_xlabel(xlabel)
    axes.set_ylabel("average quality")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
