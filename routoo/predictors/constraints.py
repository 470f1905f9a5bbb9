"""Declared constraints on predictor settings, checked by ``fit`` (scikit-learn's ``_parameter_constraints``).

A predictor class maps each of its settings to a ``Constraint`` in ``_parameter_constraints``;
the constructor only stores the settings, and ``fit`` raises ``ConfigError`` naming the first
setting whose value breaks its constraint, and what the value must be::

    _parameter_constraints = {
        **Predictor._parameter_constraints,
        "k": integer(minimum=1) | one_of("auto"),
        "temperature": number(above=0),
    }
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from numbers import Integral, Real


@dataclass(frozen=True)
class Constraint:
    """What a setting's value must be: ``description`` says it, ``accepts`` tests it."""

    description: str
    accepts: Callable[[object], bool]

    def __or__(self, other: Constraint) -> Constraint:
        """A constraint that either one satisfies."""
        return Constraint(
            f"{self.description} or {other.description}",
            lambda value: self.accepts(value) or other.accepts(value),
        )


def integer(minimum: int) -> Constraint:
    """An integer (not a bool) of at least ``minimum``."""
    return Constraint(
        f"an integer >= {minimum}",
        lambda value: isinstance(value, Integral) and not isinstance(value, bool) and value >= minimum,
    )


def number(*, above: float | None = None, at_least: float | None = None) -> Constraint:
    """A finite real number (not a bool), greater than ``above`` and at least ``at_least`` where given."""
    bounds = ([] if above is None else [f"> {above}"]) + ([] if at_least is None else [f">= {at_least}"])

    def accepts(value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            return False
        return (above is None or value > above) and (at_least is None or value >= at_least)

    return Constraint(" ".join(["a finite number", " and ".join(bounds)]).rstrip(), accepts)


def one_of(*options: object) -> Constraint:
    """One of ``options``."""
    description = repr(options[0]) if len(options) == 1 else f"one of {options}"
    return Constraint(description, lambda value: isinstance(value, Hashable) and value in options)
