"""What the server does for one request, without HTTP: the key, the preset, the session, the routed call.

``RoutooService`` holds the ``Router`` (one pool, one predictor, the decision log), the
keys with their durable budgets (``routoo.server.keys``) and the sessions
(``routoo.server.sessions``). ``start`` loads what is slow (the predictor, the ledger);
``complete`` and ``stream`` answer a checked ``ChatRequest`` for a key: the request's
``model`` names a preset (a routing policy) or a pool model (pinned), the key's budget is
open for the call (``budget_scope``), and the conversation's earlier model is kept when
switching is not worth it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from routoo.budget import budget_scope
from routoo.errors import AllModelsFailedError, NoAdmissibleModelError
from routoo.model_info import model_entry
from routoo.policy import RoutingPolicy
from routoo.prompts import prompt_text, validate_prompt
from routoo.server.config import PresetSettings, ServerConfig
from routoo.server.keys import ApiKey, KeyRing, SpendLedger
from routoo.server.openai_format import ApiError, ChatRequest
from routoo.server.sessions import Sessions, SessionTurn, cache_loss_usd, keep_or_switch, prefix_messages
from routoo.tokens import count_prompt_tokens

if TYPE_CHECKING:
    from routoo.ledger import RoutedResponse
    from routoo.router import Router
    from routoo.streams import AsyncRoutedStream
    from routoo.testing import ScriptedLLM

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """What a request's ``model`` names: a preset (``pinned`` False) or a pool model."""

    name: str
    preset: PresetSettings
    pinned: bool

    @property
    def policy(self) -> RoutingPolicy:
        return RoutingPolicy(model=self.name) if self.pinned else self.preset.policy


@dataclass
class Routed:
    """A routed call's answer (a ``RoutedResponse`` or an ``AsyncRoutedStream``) and what chose it."""

    answer: Any
    target: Target
    session: SessionTurn | None

    @property
    def preset(self) -> str | None:
        return None if self.target.pinned else self.target.name


class RoutooService:
    """The server's state and its one operation, a routed chat call for a key."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.sessions = Sessions(config.sessions)
        self.router: Router | None = None
        self.keys: KeyRing | None = None
        self.scripted: ScriptedLLM | None = None  # the scripted provider, with config.scripted
        self.failed: str | None = None  # why start failed

    @property
    def ready(self) -> bool:
        return self.router is not None and self.keys is not None

    def start(self) -> RoutooService:
        """Register the scripted provider if asked, load the predictor, build the router, open the ledger."""
        if self.ready:
            return self
        try:
            self._start()
        except Exception as error:
            self.failed = f"{type(error).__name__}: {error}"
            raise
        return self

    def _start(self) -> None:
        from routoo.router import Router

        config = self.config
        if config.scripted:
            from routoo.testing import register_scripted_provider

            self.scripted = register_scripted_provider()
        router = Router(
            list(config.models),
            predictor=config.predictor,
            max_fallbacks=config.max_fallbacks,
            faults=config.faults,
            log=None if config.log is None else _decision_log(config),
        )
        self.keys = KeyRing(config.keys, SpendLedger(config.ledger.path, config.ledger.synchronous))
        self.router = router

    def close(self) -> None:
        """Close the ledger and the decision log (a restart in this process may open them again)."""
        if self.keys is not None:
            self.keys.close()
        if self.router is not None and self.router.log is not None:
            self.router.log.close()

    # ------------------------------------------------------------------ requests
    def authenticate(self, authorization: str | None) -> ApiKey:
        """The key of a request's ``Authorization: Bearer ...`` header, or a 401."""
        keys = self._keys()
        scheme, _, secret = (authorization or "").partition(" ")
        key = keys.authenticate(secret.strip() if scheme.lower() == "bearer" else None)
        if key is None:
            message = (
                "Incorrect API key provided."
                if authorization
                else "You didn't provide an API key: send it as 'Authorization: Bearer <key>'."
            )
            raise ApiError(401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
        return key

    def models_for(self, key: ApiKey) -> list[dict[str, Any]]:
        """The presets and pool models ``key`` may call, as OpenAI's model objects."""
        presets = [
            {"id": name, "object": "model", "created": 0, "owned_by": "routoo", "routoo": _described(preset)}
            for name, preset in self.config.presets.items()
        ]
        pool = [
            {"id": name, "object": "model", "created": 0, "owned_by": name.partition("/")[0] or "routoo"}
            for name in self.config.pool_names
        ]
        return [model for model in presets + pool if key.may_call(model["id"])]

    def target(self, key: ApiKey, model: str) -> Target:
        """The preset or pool model a request names, or a 404 (unknown) or 403 (not for this key)."""
        if model in self.config.presets:
            target = Target(model, self.config.presets[model], pinned=False)
        elif model in self.config.pool_names:
            target = Target(model, PresetSettings(), pinned=True)
        else:
            callable_names = [entry["id"] for entry in self.models_for(key)]
            raise ApiError(
                404,
                f"The model '{model}' does not exist here; call one of {callable_names}",
                code="model_not_found",
                param="model",
            )
        if not key.may_call(model):
            raise ApiError(
                403,
                f"key {key.name!r} may not call '{model}'",
                "permission_error",
                "model_not_allowed",
                "model",
            )
        return target

    async def complete(self, key: ApiKey, request: ChatRequest, session_header: str | None) -> Routed:
        """Route and answer ``request`` for ``key``: a ``Routed`` holding a ``RoutedResponse``."""
        return await self._call(key, request, session_header, stream=False)

    async def stream(self, key: ApiKey, request: ChatRequest, session_header: str | None) -> Routed:
        """Route and start streaming ``request``: a ``Routed`` holding an ``AsyncRoutedStream``."""
        return await self._call(key, request, session_header, stream=True)

    async def _call(
        self, key: ApiKey, request: ChatRequest, session_header: str | None, *, stream: bool
    ) -> Routed:
        router = self._router()
        target = self.target(key, request.model)
        messages = request.messages
        if len(messages) > self.config.limits.max_messages:
            raise ApiError(
                400, f"{len(messages)} messages: at most {self.config.limits.max_messages}", param="messages"
            )
        validate_prompt(messages, where="messages")
        kwargs = request.litellm_kwargs()
        text = prompt_text(messages, target.preset.predictor_reads)
        send = router.astream if stream else router.acompletion
        with budget_scope(key.budget):
            turn = None
            if self.config.sessions.sticky and not target.pinned:
                session = self.sessions.key_for(f"{key.name}\0{target.name}", session_header, messages)
                previous = self.sessions.previous(session)
                turn = (
                    SessionTurn(session, "new")
                    if previous is None or previous not in router.models
                    else await asyncio.to_thread(self._session_turn, session, previous, target, request, text)
                )
            policy = target.policy
            pinned = policy.merged({"model": turn.pinned}) if turn is not None and turn.pinned else None
            timeout = self.config.limits.request_timeout_s
            try:
                answer: RoutedResponse | AsyncRoutedStream = await send(
                    messages, policy=pinned or policy, predictor_text=text, timeout=timeout, **kwargs
                )
            except (NoAdmissibleModelError, AllModelsFailedError):
                if pinned is None or turn is None:
                    raise
                # The conversation's model cannot answer now: route the turn afresh.
                turn = dataclasses.replace(turn, outcome="left", pinned=None)
                answer = await send(messages, policy=policy, predictor_text=text, timeout=timeout, **kwargs)
        if turn is not None:
            self.sessions.remember(turn.key, answer.model)
        return Routed(answer, target, turn)

    def _session_turn(
        self, session: str, previous: str, target: Target, request: ChatRequest, text: str
    ) -> SessionTurn:
        """The session's verdict on a turn of a conversation that ``previous`` answered last (runs in
        a worker thread: it predicts and counts tokens)."""
        router = self._router()
        decision = router.route(
            request.messages,
            policy=target.policy,
            tools=request.tools,
            response_format=request.response_format,
            predictor_text=text,
            max_tokens=request.max_tokens or request.max_completion_tokens,
        )
        if decision.model == previous:
            return SessionTurn(session, "same", previous)
        prefix = prefix_messages(request.messages)
        spec = router.pool.specs[router.pool.index(previous)]
        loss = cache_loss_usd(
            count_prompt_tokens(prefix) if prefix else 0,
            spec.input_cost_per_token or 0.0,
            model_entry(previous).get("cache_read_input_token_cost"),
        )
        return keep_or_switch(decision, session, previous, loss, target.policy)

    def _router(self) -> Router:
        if self.router is None:
            raise ApiError(503, self._not_ready(), "server_error", "not_ready")
        return self.router

    def _keys(self) -> KeyRing:
        if self.keys is None:
            raise ApiError(503, self._not_ready(), "server_error", "not_ready")
        return self.keys

    def _not_ready(self) -> str:
        return f"the server failed to start: {self.failed}" if self.failed else "the server is still starting"


def _decision_log(config: ServerConfig) -> Any:
    from routoo.decision_log import DecisionLog

    assert config.log is not None
    config.log.parent.mkdir(parents=True, exist_ok=True)
    return DecisionLog(config.log, record_text=config.record_text)


def _described(preset: PresetSettings) -> dict[str, Any]:
    return {
        "description": preset.description,
        "policy": preset.policy.model_dump(exclude_none=True, mode="json"),
        "predictor_reads": preset.predictor_reads,
    }
