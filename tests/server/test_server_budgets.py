"""Per-key budgets over the live server: a budget running out, spend kept across restarts and crashes."""

from __future__ import annotations

import math

import httpx
import openai
import pytest
from server_support import (
    ALICE,
    BOB,
    BOB_BUDGET_USD,
    EASY,
    HARD,
    client,
    start_server_fixture,  # noqa: F401  (the fixture `start_server`)
)

from routoo.budget import SpendRecord
from routoo.decision_log import DecisionLog
from routoo.errors import BudgetExceededError, ConfigError
from routoo.server.keys import DurableBudget, SpendLedger

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])


def budget_of(server, key: str) -> dict:
    response = httpx.get(f"{server.base_url}/routoo/budget", headers={"Authorization": f"Bearer {key}"})
    response.raise_for_status()
    return response.json()


def spend_until_refused(
    server, key: str = BOB, limit: int = 200
) -> tuple[list[float], openai.RateLimitError]:
    """Answered calls' costs until the key's budget refuses one, and the refusal."""
    requests: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [requests.append]})
    openai_client = client(server, key, http_client=http)
    costs = []
    for _ in range(limit):
        try:
            completion = openai_client.chat.completions.create(
                model="routoo", messages=[{"role": "user", "content": HARD}], max_tokens=200
            )
        except openai.RateLimitError as refused:
            assert len(requests) == len(costs) + 1  # the refusal says not to retry it
            return costs, refused
        costs.append(completion.model_extra["routoo"]["cost_usd"])
    raise AssertionError(f"the budget never ran out in {limit} calls")


def test_a_budget_running_out_is_a_429_insufficient_quota(start_server) -> None:
    server = start_server()
    costs, refused = spend_until_refused(server)
    assert costs and refused.status_code == 429
    assert refused.code == "budget_exceeded" and refused.type == "insufficient_quota"
    assert "key 'bob'" in refused.message
    budget = budget_of(server, BOB)
    assert math.isclose(budget["spent_usd"], sum(costs), rel_tol=1e-12)
    assert budget["spent_usd"] <= BOB_BUDGET_USD and budget["reserved_usd"] == 0
    assert budget_of(server, ALICE)["spent_usd"] == 0  # other keys have their own


def test_a_restart_keeps_every_keys_spend_and_its_cap(start_server) -> None:
    first = start_server()
    client(first, ALICE).chat.completions.create(model="routoo", messages=[{"role": "user", "content": EASY}])
    costs, _ = spend_until_refused(first)
    before = {key: budget_of(first, key)["spent_usd"] for key in (ALICE, BOB)}
    first.stop()
    second = start_server()
    after = {key: budget_of(second, key)["spent_usd"] for key in (ALICE, BOB)}
    assert after == before and before[ALICE] > 0 and math.isclose(before[BOB], sum(costs), rel_tol=1e-12)
    with pytest.raises(openai.RateLimitError):  # still out of money
        client(second, BOB).chat.completions.create(
            model="routoo", messages=[{"role": "user", "content": HARD}], max_tokens=200
        )


def test_the_decision_log_and_the_ledger_agree(start_server, tmp_path) -> None:
    server = start_server()
    openai_client = client(server, ALICE)
    costs = [
        openai_client.chat.completions.create(
            model="routoo", messages=[{"role": "user", "content": text}]
        ).model_extra["routoo"]["cost_usd"]
        for text in (EASY, HARD, EASY)
    ]
    costs.append(
        list(
            openai_client.chat.completions.create(
                model="routoo", messages=[{"role": "user", "content": HARD}], stream=True
            )
        )[-1].model_extra["routoo"]["cost_usd"]
    )
    server.stop()
    rows = DecisionLog(tmp_path / "decisions.sqlite").rows()
    assert sorted(row["cost_usd"] for row in rows) == sorted(costs)
    assert math.isclose(SpendLedger(tmp_path / "ledger.sqlite").open()["alice"], sum(costs), rel_tol=1e-12)


def test_a_stream_cut_short_is_charged_its_reservation(start_server) -> None:
    server = start_server()
    server.service.scripted.behave("scripted/large", answer_words=400, chunk_delay_s=0.01)
    with httpx.stream(
        "POST",
        f"{server.base_url}/chat/completions",
        json={"model": "routoo-best", "messages": [{"role": "user", "content": HARD}], "stream": True},
        headers={"Authorization": f"Bearer {ALICE}"},
    ) as response:
        next(response.iter_lines())  # one chunk, then the client leaves
    budget = {"reserved_usd": 1.0}
    for _ in range(500):  # the server sees the client leave at its next chunk
        budget = budget_of(server, ALICE)
        if budget["reserved_usd"] == 0:
            break
        httpx.get(server.base_url.removesuffix("/v1") + "/health")
    assert budget["reserved_usd"] == 0 and budget["spent_usd"] > 0


# ------------------------------------------------------------------ the ledger itself
def test_reservations_open_at_a_crash_count_as_spent(tmp_path) -> None:
    ledger = SpendLedger(tmp_path / "ledger.sqlite")
    budget = DurableBudget(ledger, "carol", 1.0, spent_usd=ledger.open().get("carol", 0.0))
    settled = budget.reserve(0.25)
    budget.settle(settled, 0.1, SpendRecord("m", 0.1, 1, 1))
    budget.reserve(0.3)  # in flight when the server dies
    released = budget.reserve(0.2)
    budget.release(released)
    ledger.close()  # no settlement: as after a crash
    reopened = SpendLedger(tmp_path / "ledger.sqlite")
    spent = reopened.open()["carol"]
    assert math.isclose(spent, 0.1 + 0.3)
    again = DurableBudget(reopened, "carol", 1.0, spent_usd=spent)
    with pytest.raises(BudgetExceededError):
        again.reserve(0.61)
    again.reserve(0.59)


def test_a_second_server_cannot_open_a_ledger_in_use(tmp_path) -> None:
    first = SpendLedger(tmp_path / "ledger.sqlite")
    first.open()
    with pytest.raises(ConfigError, match="another server"):
        SpendLedger(tmp_path / "ledger.sqlite").open()
    first.close()
    SpendLedger(tmp_path / "ledger.sqlite").open()


def test_a_reservation_the_ledger_cannot_write_is_refused(tmp_path) -> None:
    ledger = SpendLedger(tmp_path / "ledger.sqlite")
    budget = DurableBudget(ledger, "dave", 1.0)  # never opened: every write fails
    with pytest.raises(ConfigError, match="not open"):
        budget.reserve(0.5)
    assert budget.reserved == 0
