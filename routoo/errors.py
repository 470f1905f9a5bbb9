"""Routoo's error hierarchy: every error the library raises on purpose is a ``RoutooError``."""

from __future__ import annotations


class RoutooError(Exception):
    """Base class of every error Routoo raises on purpose."""


class DataError(RoutooError, ValueError):
    """Input data is malformed: a bad row, an empty dataset, mismatched shapes."""


class DatasetNotFoundError(RoutooError, FileNotFoundError):
    """A named dataset is neither under the data root nor downloadable."""


class UnknownModelError(RoutooError, KeyError):
    """A model name is not known where it is needed (price map, predictor, pool)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PriceNotFoundError(UnknownModelError):
    """No per-token price is known for a model."""


class PredictorError(RoutooError):
    """A predictor was used before fitting, or asked for something it cannot do."""


class PredictorLoadError(PredictorError):
    """A saved predictor directory is missing, corrupted, or of another kind or version."""


class ConfigError(RoutooError, ValueError):
    """A setting is invalid: a negative budget, an unknown rule, an empty pool."""


class NoAdmissibleModelError(RoutooError):
    """No model in the pool satisfies the call's constraints."""


class BudgetExceededError(RoutooError):
    """A hard budget has too little left for what the cheapest admissible call could cost."""


class AllModelsFailedError(RoutooError):
    """Every attempted model failed; the last provider error is chained as ``__cause__``."""


class DeadlineExceededError(RoutooError, TimeoutError):
    """A routed call ran out of time (its ``timeout=``) before a model answered; the last
    provider error, if any, is chained as ``__cause__``."""


class RateLimitWaitError(RoutooError):
    """A routed call would have to wait longer for a provider's rate limit than it has time left
    (its ``timeout=``, else the attempt timeout); nothing was sent and nothing was booked."""
