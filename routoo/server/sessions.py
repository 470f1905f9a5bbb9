"""Session-aware routing: a conversation stays on one model unless switching is worth what it costs.

A conversation is known by the request's session header (``SessionSettings.header``), else
by its system message and first user message, both within one API key and one preset.
``Sessions`` remembers, per conversation, the model that answered its last turn: in this
process's memory, the least recently used forgotten beyond ``max_sessions`` (a restarted
server routes the next turn of every conversation afresh).

Each new turn is routed as usual. When the router picks another model than the one the
conversation used (``previous``), the turn switches only if the predicted gain beats the
cost of switching, both in the selector's units (``lambda``, predicted quality per USD, the
decision's tradeoff)::

    gain        = (q_new - lambda * c_new) - (q_previous - lambda * c_previous)
    switch_cost = lambda * prefix_tokens * (input_price - cache_read_price)   # of previous
    switch when gain > switch_cost

``q`` and ``c`` are the decision's predicted quality and estimated cost of each model
(``RoutingDecision.candidates``); ``prefix_tokens`` counts the turns up to the last
assistant message, which the previous model's provider holds in its prompt cache and
bills at its cache-read price (litellm's ``cache_read_input_token_cost``; none known: no
cache, so switching costs nothing). Decisions without a lambda (a quality floor, a cost
cap) stay on the previous model while it is admissible, predicted to reach the floor and
estimated within the cap. The previous model is pinned for the turn (``RoutingPolicy.model``); one that
can no longer serve the call (tools, context, budget) is left.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from routoo.decision import RoutingDecision
from routoo.errors import UnknownModelError
from routoo.policy import RoutingPolicy
from routoo.prompts import content_text
from routoo.server.config import SessionSettings

Outcome = Literal["new", "same", "stayed", "switched", "left"]


@dataclass(frozen=True)
class SessionTurn:
    """What the session made of one turn: the model to pin (None: the router's choice) and why.

    ``outcome``: ``"new"`` (no earlier turn known), ``"same"`` (the router chose the previous
    model), ``"stayed"`` (pinned to it: switching was not worth it), ``"switched"`` (worth
    it) or ``"left"`` (the previous model cannot serve this call).
    """

    key: str
    outcome: Outcome
    previous: str | None = None
    pinned: str | None = None
    gain: float | None = None
    switch_cost: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "previous": self.previous,
            "gain": self.gain,
            "switch_cost": self.switch_cost,
        }


class Sessions:
    """The model each conversation used last, for at most ``settings.max_sessions`` conversations."""

    def __init__(self, settings: SessionSettings) -> None:
        self.settings = settings
        self._models: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._models)

    def key_for(self, owner: str, header: str | None, messages: Sequence[Mapping[str, Any]]) -> str:
        """The conversation's key: ``owner`` (key and preset) with its header, else its leading messages."""
        if header:
            known_by: Any = ["header", header]
        else:
            system = next((m for m in messages if m.get("role") in ("system", "developer")), None)
            first = next((m for m in messages if m.get("role") == "user"), None)
            known_by = [
                "messages",
                *(content_text(m.get("content")) if m else None for m in (system, first)),
            ]
        text = json.dumps([owner, *known_by], ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def previous(self, key: str) -> str | None:
        """The model that answered the conversation's last turn, if remembered."""
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
            return model

    def remember(self, key: str, model: str) -> None:
        """``model`` answered the conversation's latest turn."""
        with self._lock:
            self._models[key] = model
            self._models.move_to_end(key)
            while len(self._models) > self.settings.max_sessions:
                self._models.popitem(last=False)


def prefix_messages(messages: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The turns up to the last assistant message: what the previous turn's provider has cached."""
    last = max((i for i, message in enumerate(messages) if message.get("role") == "assistant"), default=-1)
    return list(messages[: last + 1])


def cache_loss_usd(prefix_tokens: int, input_price: float, cache_read_price: float | None) -> float:
    """USD that switching away from a model loses on its prompt cache (0 when no cache price is known)."""
    if cache_read_price is None:
        return 0.0
    return prefix_tokens * max(input_price - cache_read_price, 0.0)


def keep_or_switch(
    decision: RoutingDecision,
    key: str,
    previous: str | None,
    loss_usd: float,
    policy: RoutingPolicy,
) -> SessionTurn:
    """The session's verdict on ``decision`` for a conversation that used ``previous`` last."""
    if previous is None:
        return SessionTurn(key, "new")
    if previous == decision.model:
        return SessionTurn(key, "same", previous)
    try:
        stay, chosen = decision.candidate(previous), decision.candidate(decision.model)
    except UnknownModelError:  # no longer in the pool
        return SessionTurn(key, "left", previous)
    if not stay.admissible:
        return SessionTurn(key, "left", previous)
    lam = decision.tradeoff
    if lam is None:
        floor, cap = policy.quality_floor, policy.max_cost
        keeps = (floor is None or stay.predicted_quality >= floor) and (
            cap is None or stay.estimated_cost <= cap
        )
        return SessionTurn(key, "stayed" if keeps else "switched", previous, previous if keeps else None)
    gain = (chosen.predicted_quality - lam * chosen.estimated_cost) - (
        stay.predicted_quality - lam * stay.estimated_cost
    )
    switch_cost = lam * loss_usd
    if gain > switch_cost:
        return SessionTurn(key, "switched", previous, None, gain, switch_cost)
    return SessionTurn(key, "stayed", previous, previous, gain, switch_cost)
