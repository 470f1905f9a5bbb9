"""The outcome of an evaluation: one ``RouterResult`` per router and baseline, as JSON, text or a plot."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np

from routoo.errors import DataError

ResultKind = Literal["router", "oracle", "oracle_frontier", "random", "model"]
CostEstimateSource = Literal["given", "test_mean"]


@dataclass(frozen=True, eq=False)
class RouterResult:
    """A router's (or baseline's) curve on the test split and the metrics drawn from it.

    ``costs``/``qualities`` are its distinct operating points (average USD per prompt,
    average quality), sorted by cost. Metrics that can be undefined are ``None``:
    ``quality_at_best_model_cost`` when the router cannot run that cheaply,
    ``cost_to_match_best_model`` (a fraction of the best single model's cost) when it never
    reaches that model's quality (or that model is free), and the two-model fields outside
    two-model sets.
    """

    name: str
    kind: ResultKind
    costs: np.ndarray
    qualities: np.ndarray
    aiq: float
    aiq_stderr: float
    max_quality: float
    max_quality_cost: float
    quality_at_best_model_cost: float | None
    cost_to_match_best_model: float | None
    strong_shares: np.ndarray | None = None
    strong_qualities: np.ndarray | None = None
    apgr: float | None = None
    cpt50: float | None = None
    cpt80: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values: arrays as lists, NaN and infinities as ``None``."""
        return {key: _plain(value) for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RouterResult:
        """Rebuild a result written by ``to_dict``."""
        values = dict(data)
        for key in ("costs", "qualities", "strong_shares", "strong_qualities"):
            if values.get(key) is not None:
                values[key] = np.asarray(values[key], dtype=np.float64)
        return cls(**values)


@dataclass(frozen=True, eq=False)
class EvaluationReport:
    """Every router's and baseline's ``RouterResult`` on one test split, with the split's facts.

    ``n_prompts`` prompts were evaluated; ``n_dropped`` lacked a quality or cost record for
    some model and were left out. ``cost_range`` is ``(c_min, c_max)``, the cheapest and
    dearest single model's average cost (AIQ's range). ``cost_estimate`` is the per-model
    cost the routers traded quality against. ``weak_model``/``strong_model`` are set only
    for two-model sets.
    """

    dataset: str
    models: list[str]
    n_prompts: int
    n_dropped: int
    cost_range: tuple[float, float]
    best_model: str
    cost_estimate: np.ndarray
    cost_estimate_source: CostEstimateSource
    n_bootstrap: int
    seed: int
    results: list[RouterResult]
    weak_model: str | None = None
    strong_model: str | None = None

    def __getitem__(self, name: str) -> RouterResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"no result named {name!r}; there are {[r.name for r in self.results]}")

    def to_dict(self) -> dict[str, Any]:
        """The whole report as JSON-ready values (NaN and infinities as ``None``)."""
        data = {
            field.name: _plain(getattr(self, field.name)) for field in fields(self) if field.name != "results"
        }
        data["results"] = [result.to_dict() for result in self.results]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationReport:
        """Rebuild a report written by ``to_dict``."""
        values = dict(data)
        try:
            values["cost_range"] = tuple(values["cost_range"])
            values["cost_estimate"] = np.asarray(values["cost_estimate"], dtype=np.float64)
            values["results"] = [RouterResult.from_dict(result) for result in values["results"]]
            return cls(**values)
        except (KeyError, TypeError) as error:
            raise DataError(f"not an evaluation report: {error}") from error

    def to_json(self, path: str | Path) -> Path:
        """Write the report as JSON to ``path``."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return path

    @classmethod
    def from_json(cls, path: str | Path) -> EvaluationReport:
        """Read a report written by ``to_json``."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    def table(self) -> str:
        """A fixed-width text table of every result, for the terminal."""
        two_models = self.strong_model is not None
        header = ["name", "kind", "AIQ", "±se", "max Q", "at cost", "Q@best$", "$ to match"]
        if two_models:
            header += ["APGR", "CPT50", "CPT80"]
        rows = [header]
        for result in self.results:
            row = [
                result.name,
                result.kind,
                f"{result.aiq:.4f}",
                f"{result.aiq_stderr:.4f}",
                f"{result.max_quality:.4f}",
                f"{result.max_quality_cost:.3g}",
                _or_dash(result.quality_at_best_model_cost, ".4f"),
                "never"
                if result.cost_to_match_best_model is None
                else f"{result.cost_to_match_best_model:.1%}",
            ]
            if two_models:
                row += [
                    _or_dash(result.apgr, ".4f"),
                    _or_dash(result.cpt50, ".1%"),
                    _or_dash(result.cpt80, ".1%"),
                ]
            rows.append(row)
        widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
        lines = [
            f"{self.dataset}: {self.n_prompts} prompts ({self.n_dropped} dropped for missing records), "
            f"{len(self.models)} models, single-model cost range "
            f"${self.cost_range[0]:.3g}-${self.cost_range[1]:.3g}, "
            f"best single model {self.best_model}"
        ]
        for index, row in enumerate(rows):
            cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
            cells += [cell.rjust(width) for cell, width in zip(row[2:], widths[2:], strict=True)]
            lines.append("  ".join(cells))
            if index == 0:
                lines.append("  ".join("-" * width for width in widths))
        return "\n".join(lines)

    def plot(self, path: str | Path) -> Path:
        """Save a PNG of quality against average cost (and against strong-call share for two models)."""
        from routoo.evaluate.plot import plot_report  # matplotlib is slow to import

        return plot_report(self, path)


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_plain(item) for item in value.tolist()]
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _or_dash(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
