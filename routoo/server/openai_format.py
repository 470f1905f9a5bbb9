"""OpenAI's wire format, both ways: the chat request read and checked, answers and errors written.

No HTTP framework here: ``ChatRequest`` reads a request body (every OpenAI chat parameter
the router can forward, and a clear 400 naming any other), ``completion_body`` and
``chunk_body`` write what the router answered, and ``ApiError`` / ``error_for`` turn
Routoo's errors (``routoo.errors``) into OpenAI's error body and status:

==========================  ======  =======================  ======================
error                       status  type                     code
==========================  ======  =======================  ======================
bad JSON, fields, messages  400     invalid_request_error    (the parameter's)
no admissible model         400     invalid_request_error    no_admissible_model
missing or unknown key      401     invalid_request_error    invalid_api_key
model not allowed for key   403     permission_error         model_not_allowed
unknown model               404     invalid_request_error    model_not_found
body too large              413     invalid_request_error    request_too_large
budget exhausted            429     insufficient_quota       budget_exceeded
every model failed          502     upstream_error           all_models_failed
not ready yet               503     server_error             not_ready
deadline passed             504     timeout                  deadline_exceeded
==========================  ======  =======================  ======================

A budget error is OpenAI's own answer to an exhausted quota, 429 ``insufficient_quota``,
with ``x-should-retry: false`` so that the OpenAI SDK does not retry it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from routoo.errors import (
    AllModelsFailedError,
    BudgetExceededError,
    ConfigError,
    DataError,
    DeadlineExceededError,
    NoAdmissibleModelError,
)

log = logging.getLogger(__name__)

# Fields not sent on as they are: the router's own (model, messages, stream, stream_options, n) and
# the bookkeeping of OpenAI's platform (metadata, store, service_tier), accepted for OpenAI's sake.
NOT_FORWARDED = ("model", "messages", "stream", "stream_options", "n", "metadata", "store", "service_tier")


class ApiError(Exception):
    """An error answered in OpenAI's format: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class ChatRequest(BaseModel):
    """The body of ``POST /v1/chat/completions``; an unknown field is refused, not dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    messages: list[dict[str, Any]] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    n: int | None = Field(default=None, ge=1, le=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    user: str | None = None
    reasoning_effort: str | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    service_tier: str | None = None

    @classmethod
    def parse(cls, data: object) -> ChatRequest:
        """The request in ``data`` (parsed JSON), or a 400 ``ApiError`` naming the first bad field."""
        if not isinstance(data, dict):
            raise ApiError(400, "the request body must be a JSON object")
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            issue = error.errors()[0]
            param = ".".join(str(part) for part in issue["loc"]) or None
            if issue["type"] == "extra_forbidden":
                message = f"Unrecognized request argument supplied: {param}"
            elif param == "n":
                message = "n must be 1: the router answers each request with one model"
            else:
                message = f"Invalid value for '{param}': {issue['msg']}"
            raise ApiError(400, message, param=param, code="invalid_value") from None

    def litellm_kwargs(self) -> dict[str, Any]:
        """The parameters to send on to the model: those given, less the ones the router handles."""
        return self.model_dump(exclude_none=True, exclude=set(NOT_FORWARDED))

    @property
    def wants_usage(self) -> bool:
        """Whether a streamed answer should end with a usage chunk, as the client asked."""
        return bool((self.stream_options or {}).get("include_usage"))


def error_for(error: BaseException) -> ApiError:
    """``error`` as the ``ApiError`` the client sees (an unexpected one: 500, details only in the log)."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, BudgetExceededError):
        return ApiError(
            429, str(error), "insufficient_quota", "budget_exceeded", headers={"x-should-retry": "false"}
        )
    if isinstance(error, NoAdmissibleModelError):
        return ApiError(400, str(error), code="no_admissible_model")
    if isinstance(error, DeadlineExceededError):
        return ApiError(504, str(error), "timeout", "deadline_exceeded")
    if isinstance(error, AllModelsFailedError):
        return ApiError(502, str(error), "upstream_error", "all_models_failed")
    if isinstance(error, DataError | ConfigError):
        return ApiError(400, str(error), code="invalid_value")
    status = getattr(error, "status_code", None)  # a provider's error the fault policy raised
    if isinstance(status, int):
        if status in (400, 404, 413, 422):
            return ApiError(400, f"the model refused the request: {error}", code="upstream_bad_request")
        # 401/403: the server's own provider credentials, which the client must not read about.
        return ApiError(502, f"the provider answered {status}", "upstream_error", "upstream_error")
    log.error("routoo: the server failed on a request: %s: %s", type(error).__name__, error)
    return ApiError(500, "the server failed on this request; see its log", "server_error")


def routoo_extra(response: Any, preset: str | None, session: dict[str, Any] | None) -> dict[str, Any]:
    """What the answer carries beside OpenAI's fields: the routed model, its decision and its real cost."""
    routed = dict((getattr(response, "_hidden_params", None) or {}).get("routoo") or {})
    return {
        "model": routed.pop("answered_by", None),
        "cost_usd": routed.pop("cost_usd", None),
        "cost_basis": routed.pop("cost_basis", None),
        "call_id": routed.pop("call_id", None),
        "preset": preset,
        "session": session,
        "decision": routed,
    }


def completion_body(response: Any, model: str, extra: dict[str, Any]) -> dict[str, Any]:
    """A routed completion as OpenAI's ``chat.completion`` object, with ``routoo`` beside it."""
    body = response.model_dump()
    body["model"] = model
    body["routoo"] = extra
    return body


def chunk_body(chunk: Any, model: str, with_usage: bool) -> dict[str, Any] | None:
    """A streamed chunk as OpenAI's ``chat.completion.chunk``; None for a usage-only chunk the
    client did not ask for."""
    body = chunk.model_dump(exclude_none=True)
    if not with_usage:
        body.pop("usage", None)
        if not body.get("choices"):
            return None
    body["model"] = model
    return body


def event(payload: dict[str, Any] | str) -> bytes:
    """One server-sent event."""
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"), default=str)
    return f"data: {data}\n\n".encode()


def routoo_headers(
    model: str, preset: str | None, decision_rule: str, extra: dict[str, Any]
) -> dict[str, str]:
    """The response headers for clients that drop unknown fields; the cost only once it is known."""
    headers = {"x-routoo-model": model, "x-routoo-rule": decision_rule}
    if preset is not None:
        headers["x-routoo-preset"] = preset
    if extra.get("cost_usd") is not None:
        headers["x-routoo-cost-usd"] = repr(float(extra["cost_usd"]))
    if extra.get("call_id"):
        headers["x-routoo-call-id"] = str(extra["call_id"])
    if extra.get("session"):
        headers["x-routoo-session"] = str(extra["session"]["outcome"])
    return headers
