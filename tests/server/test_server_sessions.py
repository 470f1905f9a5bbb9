"""Session-aware routing: the switching rule, and conversations over the live server."""

from __future__ import annotations

import pytest
from server_support import (
    ALICE,
    EASY,
    HARD,
    client,
    start_server_fixture,  # noqa: F401  (the fixture `start_server`)
)

from routoo.decision import CandidateScore, RoutingDecision
from routoo.policy import RoutingPolicy
from routoo.server.config import SessionSettings
from routoo.server.sessions import Sessions, cache_loss_usd, keep_or_switch, prefix_messages

LIVE = pytest.mark.allow_hosts(["127.0.0.1"])
# A long agent system prompt: the conversation's cached prefix, and boilerplate the predictor skips.
BOILERPLATE = "You are a careful agent. Follow the house rules. " * 40
POEM = "Write a haiku about the moon"


def decision(choice: str, scores: dict[str, tuple[float, float]], tradeoff: float | None = 10.0):
    candidates = [
        CandidateScore(model, quality, cost, admissible=model != "blocked")
        for model, (quality, cost) in scores.items()
    ]
    return RoutingDecision(choice, "tradeoff", candidates, [], 10, tradeoff=tradeoff)


SCORES = {"cheap": (0.70, 0.001), "dear": (0.80, 0.004), "blocked": (0.9, 0.0)}


def test_switching_needs_a_gain_above_the_cache_loss() -> None:
    # At lambda 100 cheap gains (0.70 - 0.1) - (0.80 - 0.4) = 0.2 over dear: worth 0.001 USD of cache.
    to_cheap = keep_or_switch(decision("cheap", SCORES, tradeoff=100.0), "k", "dear", 0.001, RoutingPolicy())
    assert to_cheap.outcome == "switched" and to_cheap.switch_cost == pytest.approx(0.1)
    # At lambda 10 dear gains (0.80 - 0.04) - (0.70 - 0.01) = 0.07 over cheap; switching loses 0.005 USD
    # of cache, 0.05 in quality: it switches.
    to_dear = decision("dear", SCORES)
    turn = keep_or_switch(to_dear, "k", "cheap", 0.005, RoutingPolicy())
    assert turn.outcome == "switched" and turn.pinned is None
    assert turn.gain == pytest.approx(0.07) and turn.switch_cost == pytest.approx(0.05)
    # A larger cache (0.01 USD = 0.1 > 0.07): it stays on cheap.
    stays = keep_or_switch(to_dear, "k", "cheap", 0.01, RoutingPolicy())
    assert stays.outcome == "stayed" and stays.pinned == "cheap"


def test_a_session_model_that_cannot_serve_is_left_and_a_new_one_is_just_routed() -> None:
    routed = decision("cheap", SCORES)
    assert keep_or_switch(routed, "k", "blocked", 1.0, RoutingPolicy()).outcome == "left"
    assert keep_or_switch(routed, "k", "gone", 1.0, RoutingPolicy()).outcome == "left"
    assert keep_or_switch(routed, "k", None, 1.0, RoutingPolicy()).outcome == "new"
    assert keep_or_switch(routed, "k", "cheap", 1.0, RoutingPolicy()).outcome == "same"


def test_without_a_tradeoff_it_stays_while_the_floor_and_cap_hold() -> None:
    routed = decision("cheap", SCORES, tradeoff=None)
    assert keep_or_switch(routed, "k", "dear", 0.0, RoutingPolicy(quality_floor=0.75)).pinned == "dear"
    assert keep_or_switch(routed, "k", "dear", 0.0, RoutingPolicy(quality_floor=0.85)).outcome == "switched"
    assert keep_or_switch(routed, "k", "dear", 0.0, RoutingPolicy(max_cost=0.002)).outcome == "switched"


def test_the_cache_loss_counts_the_prefix_at_the_cache_discount() -> None:
    assert cache_loss_usd(1000, 2e-6, 5e-7) == pytest.approx(1.5e-3)
    assert cache_loss_usd(1000, 2e-6, None) == 0.0  # no cache price known: nothing cached
    turns = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
    ]
    assert prefix_messages(turns) == turns[:3] and prefix_messages(turns[:2]) == []


def test_sessions_are_bounded_and_keyed_by_owner_header_and_leading_messages() -> None:
    sessions = Sessions(SessionSettings(max_sessions=2))
    turns = [{"role": "system", "content": "s"}, {"role": "user", "content": "q1"}]
    later = [*turns, {"role": "assistant", "content": "a"}, {"role": "user", "content": "q2"}]
    assert sessions.key_for("alice", None, turns) == sessions.key_for("alice", None, later)
    assert sessions.key_for("alice", None, turns) != sessions.key_for("bob", None, turns)
    assert sessions.key_for("alice", "s1", turns) != sessions.key_for("alice", "s2", turns)
    for key, model in (("a", "m1"), ("b", "m2"), ("c", "m3")):
        sessions.remember(key, model)
    assert sessions.previous("a") is None and sessions.previous("c") == "m3" and len(sessions) == 2


# ------------------------------------------------------------------ live
def ask(server, messages, session: str | None = None, model: str = "routoo"):
    headers = {"x-routoo-session": session} if session else None
    return client(server, ALICE).chat.completions.with_raw_response.create(
        model=model, messages=messages, extra_headers=headers
    )


@LIVE
def test_a_conversation_stays_on_a_model_that_still_reaches_the_floor(start_server) -> None:
    server = start_server()
    first = [{"role": "system", "content": BOILERPLATE}, {"role": "user", "content": HARD}]
    opened = ask(server, first, session="chat-1", model="routoo-cheap").parse()
    assert opened.model == "scripted/small"  # the cheapest predicted to reach 0.5 on a hard question
    assert opened.model_extra["routoo"]["session"]["outcome"] == "new"
    turn = [*first, {"role": "assistant", "content": opened.choices[0].message.content}]
    turn.append({"role": "user", "content": POEM})  # alone, scripted/tiny reaches the floor: cheaper
    raw = ask(server, turn, session="chat-1", model="routoo-cheap")
    second = raw.parse()
    assert second.model == "scripted/small" and raw.headers["x-routoo-session"] == "stayed"
    assert second.model_extra["routoo"]["session"]["previous"] == "scripted/small"
    assert second.model_extra["routoo"]["decision"]["rule"] == "pinned"
    # The same turn in another conversation (no history known) is routed afresh.
    assert ask(server, turn, session="chat-2", model="routoo-cheap").parse().model == "scripted/tiny"


@LIVE
def test_a_short_conversation_switches_when_the_gain_is_worth_it(start_server) -> None:
    server = start_server()
    first = [{"role": "user", "content": EASY}]
    opened = ask(server, first).parse()  # known by its leading messages
    assert opened.model == "scripted/small"
    turn = [*first, {"role": "assistant", "content": "4"}, {"role": "user", "content": HARD}]
    second = ask(server, turn).parse()
    session = second.model_extra["routoo"]["session"]
    assert second.model == "scripted/large" and session["outcome"] == "switched"
    assert session["gain"] > session["switch_cost"] >= 0


@LIVE
def test_the_predictor_reads_the_humans_request_not_the_boilerplate(start_server) -> None:
    server = start_server(
        presets={"reads-last": {}, "reads-all": {"predictor_reads": "conversation"}},
        sessions={"sticky": False},
    )

    def qualities(model: str, messages) -> dict[str, float]:
        decision = ask(server, messages, model=model).parse().model_extra["routoo"]["decision"]
        return {c["model"]: c["predicted_quality"] for c in decision["candidates"]}

    bare = [{"role": "user", "content": EASY}]
    wrapped = [{"role": "system", "content": BOILERPLATE}, *bare]
    assert qualities("reads-last", wrapped) == qualities("reads-last", bare)
    assert qualities("reads-all", wrapped) != qualities("reads-last", wrapped)
