"""Evaluation harness: cost-quality curves, AIQ, RouteLLM's APGR/CPT, baselines and plots."""

from routoo.evaluate.curves import choose_models, strong_share_curve, trade_off_grid
from routoo.evaluate.harness import evaluate
from routoo.evaluate.metrics import (
    aiq,
    apgr,
    call_performance_threshold,
    cost_to_reach,
    nondecreasing_hull,
    performance_gap_recovered,
    quality_at_cost,
)
from routoo.evaluate.report import EvaluationReport, RouterResult

__all__ = [
    "EvaluationReport",
    "RouterResult",
    "aiq",
    "apgr",
    "call_performance_threshold",
    "choose_models",
    "cost_to_reach",
    "evaluate",
    "nondecreasing_hull",
    "performance_gap_recovered",
    "quality_at_cost",
    "strong_share_curve",
    "trade_off_grid",
]
