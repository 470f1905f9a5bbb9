"""``RoutingPolicy``: the routing settings, declared and validated in one place.

A policy says which pool models a call may use (``allow``, ``deny``, ``max_latency_s``,
``model``) and how ``routoo.selector`` trades predicted quality against estimated cost
(``tradeoff``, ``quality_floor``, ``max_cost``). It is a frozen value object: a per-call
override is a new policy, ``policy.merged(override)``.

Numbers must be real numbers (not ``True``, not ``"0.5"``); every invalid value raises
``ConfigError`` naming the field and the value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

from routoo.errors import ConfigError


def _finite_number(value: object) -> float:
    """A finite real number as a float; pydantic alone would also read ``True`` or ``"0.5"`` as one."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise PydanticCustomError("real_number", "Input should be a real number")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float's range
        number = math.inf
    if not math.isfinite(number):
        raise PydanticCustomError("finite_number", "Input should be a finite number")
    return number


NonNegativeNumber = Annotated[float, BeforeValidator(_finite_number), Field(ge=0)]
PredictedQuality = Annotated[float, BeforeValidator(_finite_number), Field(ge=0, le=1)]
ModelName = Annotated[str, Field(min_length=1)]

_NON_NEGATIVE = TypeAdapter(NonNegativeNumber)


def check_non_negative(value: object, field_name: str, *, optional: bool = True) -> float | None:
    """``value`` as a float, or ``ConfigError`` naming ``field_name`` unless it is a finite number >= 0."""
    if value is None and optional:
        return None
    try:
        return _NON_NEGATIVE.validate_python(value)
    except ValidationError:
        raise ConfigError(f"{field_name} must be a finite number >= 0, not {value!r}") from None


def describe_validation_error(error: ValidationError, owner: str) -> str:
    """One line naming every invalid field of ``owner``, the value given and what is wrong with it."""
    problems = []
    for issue in error.errors():
        field = ".".join(str(part) for part in issue["loc"]) or "value"
        given = "" if issue["type"] == "missing" else f"={issue['input']!r}"
        problems.append(f"{field}{given}: {issue['msg']}")
    return f"{owner}: {'; '.join(problems)}"


S = TypeVar("S", bound="Settings")


class Settings(BaseModel):
    """A frozen value object of validated settings; an invalid one is a ``ConfigError`` naming its owner."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, **fields: Any) -> None:
        try:
            super().__init__(**fields)
        except ValidationError as error:
            raise ConfigError(describe_validation_error(error, self._owner(fields))) from None

    @classmethod
    def _owner(cls, fields: Mapping[str, Any]) -> str:
        """How errors name the object being built from ``fields``."""
        return cls.__name__

    @classmethod
    def coerce(cls: type[S], value: S | Mapping[str, Any] | None) -> S:
        """``value`` as these settings: as is, from a mapping of fields, or None for the defaults."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            return cls(**value)
        raise ConfigError(
            f"{cls.__name__} takes a {cls.__name__} or a mapping of its fields, not {type(value).__name__}"
        )


class RoutingPolicy(Settings):
    """The routing settings of a ``Selector`` or of one call; None leaves a setting off.

    - ``tradeoff``: lambda, predicted quality per estimated USD; None is the selector's
      scale-free default (see ``routoo.selector``).
    - ``quality_floor``: choose the cheapest model predicted to reach this quality.
    - ``max_cost``: never choose a model estimated to cost more (USD per call).
    - ``allow`` / ``deny``: model names the call may / may not use.
    - ``max_latency_s``: exclude models whose spec gives a higher latency.
    - ``model``: pin the call to this pool model (rule ``"pinned"``) while it is admissible.
    """

    tradeoff: NonNegativeNumber | None = None
    quality_floor: PredictedQuality | None = None
    max_cost: NonNegativeNumber | None = None
    allow: tuple[ModelName, ...] | None = None
    deny: tuple[ModelName, ...] | None = None
    max_latency_s: NonNegativeNumber | None = None
    model: ModelName | None = None

    def merged(self, override: RoutingPolicy | Mapping[str, Any] | None) -> RoutingPolicy:
        """This policy with every field that ``override`` sets (given and not None) replaced."""
        given = RoutingPolicy.coerce(override)
        changes = {name: getattr(given, name) for name in given.model_fields_set}
        changes = {name: value for name, value in changes.items() if value is not None}
        return self.model_copy(update=changes) if changes else self

    def filter_reason(self, model: str, latency_s: float | None) -> str | None:
        """Why the allow/deny lists or the latency limit exclude ``model``, or None."""
        if self.allow is not None and model not in self.allow:
            return "not in the allow list"
        if self.deny is not None and model in self.deny:
            return "in the deny list"
        if self.max_latency_s is not None and latency_s is not None and latency_s > self.max_latency_s:
            return f"latency {latency_s:g} s exceeds max_latency_s={self.max_latency_s:g}"
        return None
