"""Per-provider rate limits: requests and tokens per minute, booked before each attempt is sent.

``RateLimits`` is a frozen value object: a ``ProviderLimit`` per litellm provider name
(``"openai"``, ``"anthropic"``, ...), ``"*"`` for every provider not named. ``RateLimiter``
is the I/O-free core: a GCRA schedule (the "virtual scheduling" form of a token bucket) per
provider and per dimension, behind one lock, with an injectable clock. ``reserve`` books a
request at once and answers how long its caller must wait before sending it, so concurrent
callers get staggered waits; it neither sleeps nor calls anything, so the same object can be
shared by several routers, or run inside one actor that processes ask (anything with its
``reserve`` method will do for the Router, ``SupportsReserve``).

A bucket holds one minute's worth (``requests_per_minute`` requests, ``tokens_per_minute``
tokens, at least one request), as the providers' own limits do: an idle provider takes a
burst of that much at once, then the rate. A request bigger than a whole bucket of tokens
waits until the bucket is full, empties it, and logs a warning: it is not refused, nor kept
waiting forever.

The Router's side: ``rate_limiter`` turns its ``rate_limits=`` into a limiter and
``routoo.model_info.provider_of`` asks litellm which provider an attempt goes to; the Router waits.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Protocol, runtime_checkable

from pydantic import Field

from routoo.errors import ConfigError
from routoo.policy import NonNegativeNumber, Settings, check_non_negative

log = logging.getLogger(__name__)

# A bucket holds this many seconds of its rate (at least one request).
BURST_S = 60.0
# The RateLimits key of the limit of every provider not named.
ANY_PROVIDER = "*"

PerMinute = Annotated[NonNegativeNumber, Field(gt=0)]
ProviderName = Annotated[str, Field(min_length=1)]


class ProviderLimit(Settings):
    """One provider's limits; None leaves a dimension unlimited (both None: the provider is)."""

    requests_per_minute: PerMinute | None = None
    tokens_per_minute: PerMinute | None = None


class RateLimits(Settings):
    """The ``ProviderLimit`` of each litellm provider name; ``"*"`` limits every provider not named,
    each on its own. ``coerce`` also takes the providers' mapping alone:
    ``{"openai": {"requests_per_minute": 500, "tokens_per_minute": 200_000}}``."""

    providers: dict[ProviderName, ProviderLimit] = Field(default_factory=dict)

    @classmethod
    def coerce(cls, value: RateLimits | Mapping[str, Any] | None) -> RateLimits:
        """``value`` as limits: as is, from a mapping of fields or of providers, or None for none."""
        if isinstance(value, Mapping) and "providers" not in value:
            value = {"providers": value}
        return super().coerce(value)

    def limit(self, provider: str) -> ProviderLimit | None:
        """``provider``'s limit: its own, else the ``"*"`` one, else None (unlimited)."""
        return self.providers.get(provider, self.providers.get(ANY_PROVIDER))


@runtime_checkable
class SupportsReserve(Protocol):
    """What a Router needs of a rate limiter (a ``RateLimiter``, or a client of one shared by processes)."""

    def reserve(self, provider: str, tokens: int, *, max_wait_s: float | None = None) -> float: ...


class _Bucket:
    """One limited dimension of one provider: GCRA's theoretical arrival time, as ``full_at``.

    Each unit (a request, a token) adds ``interval`` seconds to the schedule; the bucket
    holds ``capacity`` seconds of them, ``size`` units. ``full_at`` is when everything
    booked has drained.
    """

    def __init__(self, per_minute: float) -> None:
        self.interval = 60.0 / per_minute
        self.capacity = max(BURST_S, self.interval)
        self.size = self.capacity / self.interval
        self.full_at = -math.inf

    def cost(self, units: float) -> float:
        """Seconds of schedule ``units`` take; more than the bucket holds take all of it."""
        return min(units * self.interval, self.capacity)

    def wait(self, cost: float, now: float) -> float:
        """Seconds until ``cost`` fits in the bucket."""
        return max(0.0, self.full_at + cost - self.capacity - now)

    def book(self, cost: float, at: float) -> None:
        self.full_at = max(self.full_at, at) + cost


class RateLimiter:
    """Books requests against per-provider limits; thread-safe; ``clock`` (seconds, monotonic)
    is ``time.monotonic`` unless a test gives its own.

    ``limits`` is a ``RateLimits`` or a mapping it is built from.
    """

    def __init__(
        self, limits: RateLimits | Mapping[str, Any], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = RateLimits.coerce(limits)
        self._clock = clock
        self._lock = threading.Lock()
        # Per provider, a bucket per limited dimension: "requests", "tokens".
        self._buckets: dict[str, dict[str, _Bucket]] = {}

    def __repr__(self) -> str:
        return f"RateLimiter({self.limits.providers!r})"

    def reserve(self, provider: str, tokens: int, *, max_wait_s: float | None = None) -> float:
        """Book one request of ``tokens`` tokens now; the seconds the caller must wait before sending
        it (0: at once). A wait of ``max_wait_s`` or more books nothing: the caller will not send."""
        if not isinstance(provider, str):
            raise ConfigError(f"provider must be a litellm provider name, not {provider!r}")
        units = {"requests": 1.0, "tokens": check_non_negative(tokens, "tokens", optional=False)}
        limit = self.limits.limit(provider)
        if limit is None or (limit.requests_per_minute is None and limit.tokens_per_minute is None):
            return 0.0
        with self._lock:
            buckets = self._buckets.get(provider)
            if buckets is None:
                buckets = self._buckets[provider] = _buckets(limit)
            now = self._clock()
            costs = {name: bucket.cost(units[name]) for name, bucket in buckets.items()}
            wait = max(buckets[name].wait(cost, now) for name, cost in costs.items())
            if max_wait_s is not None and wait >= max_wait_s:
                return wait
            for name, cost in costs.items():
                buckets[name].book(cost, now + wait)  # the request takes its slots when it is sent
        if "tokens" in buckets and units["tokens"] > buckets["tokens"].size:
            log.warning(
                "routoo: a request of %d tokens is more than %s's whole tokens_per_minute (%g): "
                "it waits for a full bucket and empties it",
                units["tokens"],
                provider,
                limit.tokens_per_minute,
            )
        return wait


def _buckets(limit: ProviderLimit) -> dict[str, _Bucket]:
    """A limited provider's buckets, one per limited dimension."""
    per_minute = {"requests": limit.requests_per_minute, "tokens": limit.tokens_per_minute}
    return {name: _Bucket(rate) for name, rate in per_minute.items() if rate is not None}


def rate_limiter(value: SupportsReserve | RateLimits | Mapping[str, Any] | None) -> SupportsReserve | None:
    """A Router's ``rate_limits=`` as a limiter: as is when it has ``reserve``, else a ``RateLimiter``
    of the limits given; None: no limits."""
    if value is None or isinstance(value, SupportsReserve):
        return value
    if isinstance(value, RateLimits | Mapping):
        return RateLimiter(value)
    raise ConfigError(
        "rate_limits must be a RateLimits, a mapping of its fields or an object with a "
        f"reserve(provider, tokens) method, not {type(value).__name__}"
    )
