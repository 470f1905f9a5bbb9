"""What a routed call does when a provider fails: the fault policy, the error classes, cooldowns.

``FaultPolicy`` is a frozen value object, set on the ``Router`` and overridable per call
(``faults=``). It says, per class of provider error, whether to fall back to the next
admissible model, retry the same model (waiting what ``Retry-After`` asks, else an
exponential backoff, never past ``max_retry_wait_s`` nor the call's deadline) or raise;
how long one attempt and one routed call may take; and when a failing model cools down.

``classify`` maps litellm's exceptions (and the HTTP status they carry) to the classes.
``Cooldowns`` is the per-model circuit breaker: after ``allowed_fails`` failures in a row
of the classes that say something about the model (rate limits, timeouts, 5xx, 404, 402,
403), a model is skipped for ``cooldown_s`` while another can serve, then tried again.
Like litellm's Router, a parameter or context-window error says nothing about the model's
health and does not count. litellm is imported only by ``classify``.
"""

from __future__ import annotations

import email.utils
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import Field

from routoo.policy import NonNegativeNumber, Settings

log = logging.getLogger(__name__)

FaultAction = Literal["fallback", "retry", "raise"]
FaultKind = Literal[
    "rate_limit",
    "timeout",
    "server_error",
    "not_found",
    "payment_required",
    "permission_denied",
    "unsupported_params",
    "context_window",
    "authentication",
    "bad_request",
    "content_policy",
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
# The classes that say a model is unwell (rather than that this call does not suit it).
COOLDOWN_KINDS = frozenset(
    {"rate_limit", "timeout", "server_error", "not_found", "payment_required", "permission_denied"}
)
# A BadRequest about a parameter, in the words providers use (OpenAI's codes, litellm's messages).
_PARAMETER_ERROR = re.compile(
    r"unsupported[_ ](parameter|value|param)|(unrecognized|unknown) (request )?(parameter|argument)"
    r"|(parameter|param|argument)s?\b[^.]{0,80}\b(is|are) not supported|does not support (the )?param",
    re.IGNORECASE,
)
Seconds = Annotated[NonNegativeNumber, Field(gt=0)]
Count = Annotated[int, Field(ge=0, strict=True)]


class FaultPolicy(Settings):
    """Per class of provider error, what a routed call does; timeouts; when a model cools down.

    Actions: ``"fallback"`` (the next admissible model), ``"retry"`` (the same model again,
    up to ``max_retries`` times, then fall back) or ``"raise"``.

    - ``rate_limit`` (429), ``timeout``, ``server_error`` (5xx, dropped connections),
      ``not_found`` (404: a retired model), ``payment_required`` (402),
      ``permission_denied`` (403) and ``unsupported_params`` (a parameter the model does
      not take) fall back by default; ``context_window`` falls back toward models with a
      larger window.
    - ``authentication`` (401: a bad key must not hide behind a fallback), ``bad_request``
      (400/422 about the request itself) and ``content_policy`` raise.
    - ``max_retries``, ``retry_backoff_s`` (the first wait without ``Retry-After``, doubled
      per retry) and ``max_retry_wait_s`` (a longer wait is not waited for: the model is
      left) bound retries.
    - ``attempt_timeout_s``: seconds one attempt may take (litellm's default is 6,000).
      ``call_timeout_s``: seconds a whole routed call may take, all attempts and waits
      included (None: no limit); a call's ``timeout=`` replaces it.
    - ``allowed_fails`` failures in a row make a model cool down for ``cooldown_s``.
    """

    rate_limit: FaultAction = "fallback"
    timeout: FaultAction = "fallback"
    server_error: FaultAction = "fallback"
    not_found: FaultAction = "fallback"
    payment_required: FaultAction = "fallback"
    permission_denied: FaultAction = "fallback"
    unsupported_params: FaultAction = "fallback"
    context_window: FaultAction = "fallback"
    authentication: FaultAction = "raise"
    bad_request: FaultAction = "raise"
    content_policy: FaultAction = "raise"
    max_retries: Count = 2
    retry_backoff_s: NonNegativeNumber = 0.5
    max_retry_wait_s: NonNegativeNumber = 8.0
    attempt_timeout_s: Seconds = 600.0
    call_timeout_s: Seconds | None = None
    allowed_fails: Annotated[Count, Field(ge=1)] = 3
    cooldown_s: NonNegativeNumber = 30.0

    def merged(self, override: FaultPolicy | Mapping[str, Any] | None) -> FaultPolicy:
        """This policy with every field that ``override`` sets replaced."""
        if override is None:
            return self
        given = FaultPolicy.coerce(override)
        changes = {name: getattr(given, name) for name in given.model_fields_set}
        return self.model_copy(update=changes) if changes else self

    def action(self, kind: FaultKind | None) -> FaultAction:
        """What to do about an error of class ``kind`` (None: not a provider error, raise it)."""
        return "raise" if kind is None else getattr(self, kind)

    def retry_wait(self, error: BaseException, retries_done: int) -> float | None:
        """Seconds to wait before retrying after ``error``; None when the wait would be too long."""
        asked = retry_after_s(error)
        wait = asked if asked is not None else self.retry_backoff_s * 2**retries_done
        return wait if wait <= self.max_retry_wait_s else None


def classify(error: BaseException) -> FaultKind | None:
    """The fault class of a provider error; None for anything else (a bug, a bad argument)."""
    from routoo._litellm import litellm

    status = getattr(error, "status_code", None)
    status = status if isinstance(status, int) else None
    # BadRequestError's subclasses first: they are the more specific answer.
    if isinstance(error, litellm.ContextWindowExceededError):
        return "context_window"
    if isinstance(error, litellm.PaymentRequiredError) or status == 402:
        return "payment_required"
    if isinstance(error, litellm.ContentPolicyViolationError):
        return "content_policy"
    if isinstance(error, litellm.UnsupportedParamsError) or (
        isinstance(error, litellm.BadRequestError) and _is_about_a_parameter(error)
    ):
        return "unsupported_params"
    by_class: list[tuple[type[BaseException], FaultKind]] = [
        (litellm.AuthenticationError, "authentication"),
        (litellm.PermissionDeniedError, "permission_denied"),
        (litellm.NotFoundError, "not_found"),
        (litellm.RateLimitError, "rate_limit"),
        (litellm.Timeout, "timeout"),  # before APIConnectionError, which it subclasses
        (TimeoutError, "timeout"),  # an attempt's own deadline (asyncio.timeout)
        (litellm.APIConnectionError, "server_error"),
        (litellm.InternalServerError, "server_error"),
        (litellm.ServiceUnavailableError, "server_error"),
        (litellm.BadGatewayError, "server_error"),
    ]
    for error_class, kind in by_class:
        if isinstance(error, error_class):
            return kind
    by_status: dict[int, FaultKind] = {
        401: "authentication",
        403: "permission_denied",
        404: "not_found",
        408: "timeout",
        429: "rate_limit",
    }
    if status in by_status:
        return by_status[status]
    if status is not None and status >= 500:
        return "server_error"
    if isinstance(error, litellm.BadRequestError | litellm.UnprocessableEntityError) or status in (400, 422):
        return "bad_request"
    return None


def _is_about_a_parameter(error: BaseException) -> bool:
    body = getattr(error, "body", None)
    code = body.get("code") if isinstance(body, Mapping) else None
    if code in ("unsupported_parameter", "unsupported_value", "unknown_parameter"):
        return True
    return bool(_PARAMETER_ERROR.search(str(error)))


def retry_after_s(error: BaseException) -> float | None:
    """Seconds the provider asked to wait (``retry-after-ms`` / ``Retry-After``), if it said."""
    response = getattr(error, "response", None)
    headers: Any = getattr(response, "headers", None) or getattr(error, "litellm_response_headers", None)
    if not headers:
        return None
    try:
        milliseconds = headers.get("retry-after-ms")
        if milliseconds is not None:
            return max(0.0, float(milliseconds) / 1000)
        value = headers.get("retry-after")
    except (AttributeError, TypeError, ValueError):
        return None
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        moment = email.utils.parsedate_tz(str(value))  # an HTTP date
        if moment is None:
            return None
        seconds = email.utils.mktime_tz(moment) - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


class Cooldowns:
    """Per-model circuit breaker, thread-safe and shared by a router's sync and async calls.

    ``clock`` (seconds, monotonic) is ``time.monotonic`` unless a test gives its own.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._fails: dict[str, int] = {}
        self._until: dict[str, float] = {}

    def remaining_s(self, model: str) -> float:
        """Seconds ``model`` still cools down (0: it may be called)."""
        with self._lock:
            return max(0.0, self._until.get(model, 0.0) - self._clock())

    def failed(self, model: str, kind: FaultKind, policy: FaultPolicy) -> None:
        """Count a failure of ``model``; cool it down after ``policy.allowed_fails`` in a row."""
        if kind not in COOLDOWN_KINDS:
            return
        with self._lock:
            fails = self._fails.get(model, 0) + 1
            if fails < policy.allowed_fails:
                self._fails[model] = fails
                return
            self._fails[model] = 0
            self._until[model] = self._clock() + policy.cooldown_s
        log.warning(
            "routoo: %s cools down for %gs after %d failures in a row (the last: %s)",
            model,
            policy.cooldown_s,
            fails,
            kind,
        )

    def succeeded(self, model: str) -> None:
        """``model`` answered: its count of failures in a row starts again."""
        with self._lock:
            self._fails.pop(model, None)
            self._until.pop(model, None)
