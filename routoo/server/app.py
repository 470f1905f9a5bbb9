"""The HTTP routes of ``routoo serve``: a thin FastAPI shell over ``RoutooService``.

- ``POST /v1/chat/completions``: OpenAI's chat completions, plain or streamed as
  server-sent events; the answer carries ``routoo`` (routed model, decision, real cost)
  and ``x-routoo-*`` headers (a stream's cost comes in its last chunk's ``routoo``).
- ``GET /v1/models`` (and ``/v1/models/{id}``): the presets and pool models the key may call.
- ``GET /v1/routoo/budget``: the calling key's limit, spend and what is left.
- ``GET /health`` (the process answers) and ``GET /ready`` (the predictor and ledger are loaded).

Every error is OpenAI's error body (``routoo.server.openai_format``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import openai
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from routoo.errors import RoutooError
from routoo.server.config import ServerConfig
from routoo.server.keys import ApiKey
from routoo.server.openai_format import (
    ApiError,
    ChatRequest,
    chunk_body,
    completion_body,
    error_for,
    event,
    routoo_extra,
    routoo_headers,
)
from routoo.server.service import Routed, RoutooService

log = logging.getLogger(__name__)


def create_app(config: ServerConfig | None = None, service: RoutooService | None = None) -> FastAPI:
    """The ASGI app serving ``service`` (or one built from ``config``); a service not yet started
    starts in the background (``/ready`` says when), and closes when the app shuts down."""
    if service is None:
        service = RoutooService(config or ServerConfig())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading = None if service.ready else asyncio.create_task(asyncio.to_thread(service.start))
        try:
            yield
        finally:
            if loading is not None:
                with contextlib.suppress(Exception):
                    await loading
            service.close()

    app = FastAPI(title="Routoo", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    _add_error_handlers(app)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        if service.ready:
            return JSONResponse({"status": "ready"})
        status = "failed" if service.failed else "starting"
        return JSONResponse({"status": status, "error": service.failed}, status_code=503)

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        key = service.authenticate(request.headers.get("authorization"))
        return {"object": "list", "data": service.models_for(key)}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str, request: Request) -> dict[str, Any]:
        key = service.authenticate(request.headers.get("authorization"))
        service.target(key, model_id)  # 404 / 403
        return next(entry for entry in service.models_for(key) if entry["id"] == model_id)

    @app.get("/v1/routoo/budget")
    async def budget(request: Request) -> dict[str, Any]:
        key = service.authenticate(request.headers.get("authorization"))
        return _budget(key)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        key = service.authenticate(request.headers.get("authorization"))
        body = await _json_body(request, service.config.limits.max_request_bytes)
        chat = ChatRequest.parse(body)
        session_header = request.headers.get(service.config.sessions.header)
        if chat.stream:
            return _streamed(await service.stream(key, chat, session_header), chat)
        routed = await service.complete(key, chat, session_header)
        answer = routed.answer
        extra = routoo_extra(answer.response, routed.preset, _session(routed))
        headers = routoo_headers(answer.model, routed.preset, answer.decision.rule, extra)
        return JSONResponse(completion_body(answer.response, answer.model, extra), headers=headers)

    return app


def _streamed(routed: Routed, chat: ChatRequest) -> StreamingResponse:
    stream = routed.answer
    model = stream.model

    async def events() -> AsyncIterator[bytes]:
        try:
            async for chunk in stream:
                body = chunk_body(chunk, model, chat.wants_usage)
                if body is not None:
                    yield event(body)
            extra = routoo_extra(stream.response, routed.preset, _session(routed))
            yield event({"object": "chat.completion.chunk", "model": model, "choices": [], "routoo": extra})
            yield event("[DONE]")
        except Exception as error:  # after the first chunk the status is sent: the error is an event
            yield event(error_for(error).body())
        finally:
            await stream.aclose()  # a client gone early: the stream is charged as cut short

    headers = routoo_headers(model, routed.preset, stream.decision.rule, {"session": _session(routed)})
    return StreamingResponse(
        events(), media_type="text/event-stream", headers={**headers, "cache-control": "no-cache"}
    )


def _session(routed: Routed) -> dict[str, Any] | None:
    return None if routed.session is None else routed.session.to_dict()


def _budget(key: ApiKey) -> dict[str, Any]:
    budget = key.budget
    limited = key.settings.budget_usd is not None
    return {
        "key": key.name,
        "mode": budget.mode if limited else None,
        "limit_usd": budget.limit_usd if limited else None,
        "spent_usd": budget.spent,
        "reserved_usd": budget.reserved,
        "remaining_usd": budget.remaining if limited else None,
    }


async def _json_body(request: Request, limit: int) -> Any:
    """The request's JSON body, read no further than ``limit`` bytes (413 beyond)."""
    too_large = ApiError(413, f"the request body exceeds {limit} bytes", code="request_too_large")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise too_large
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ApiError(400, f"We could not parse the JSON body of your request: {error}") from None


def _add_error_handlers(app: FastAPI) -> None:
    def answer(error: ApiError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if error.status_code == 404 else None
        return answer(
            ApiError(error.status_code, f"{request.method} {request.url.path}: {error.detail}", code=code)
        )

    # Known errors only: an unexpected one goes to Starlette's last handler (a 500, logged with its trace).
    @app.exception_handler(ApiError)
    @app.exception_handler(RoutooError)
    @app.exception_handler(openai.APIError)  # a provider's error (litellm's subclass OpenAI's)
    async def known_error(request: Request, error: Exception) -> JSONResponse:
        return answer(error_for(error))

    @app.exception_handler(Exception)
    async def any_error(request: Request, error: Exception) -> JSONResponse:
        return answer(error_for(error))
