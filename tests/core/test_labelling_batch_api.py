"""The batch API executor offline, against the scripted OpenAI-compatible server's batch API: the
same labels as the local executor at the batch price; an interrupted run resumes by polling the
batches it submitted, never submitting them again; a hard budget holds each batch's worst case
before it is submitted; errors in a batch's error file, or a failed batch, are failed results
with the provider's message."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from reliability_support import fitted, http_pool

from routoo._litellm import litellm
from routoo.budget import Budget
from routoo.cli import main
from routoo.errors import ConfigError
from routoo.labelling import Labeller, LabelStore, LabelTask, LocalExecutor, RegexMatch, RubricJudge
from routoo.labelling.batch_api import BatchApiExecutor, batch_price, request_id
from routoo.router import Router
from routoo.testing import ScriptedServer

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

FIRST, SECOND, JUDGE = "openai/first", "openai/second", "openai/judge"
# The server answers "<model> answers: <the prompt>": these references tell the models apart.
TASKS = [
    LabelTask(f"t{i}", f"Question {i}: name a colour.", "^first" if i % 2 else "answers: Question")
    for i in range(8)
]


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


@pytest.fixture
def pool(server: ScriptedServer) -> list[dict[str, Any]]:
    server.clear()
    return http_pool(server.base_url, ["first", "second", "judge"])


@pytest.fixture
def store(tmp_path: Path) -> LabelStore:
    return LabelStore(tmp_path / "batched.sqlite")


def batched(pool: list[dict[str, Any]], store: LabelStore, *graders: Any, **settings: Any) -> Labeller:
    executor = BatchApiExecutor(store, poll_interval_s=0)
    return Labeller(
        Router(pool, fitted()),
        list(graders) or [RegexMatch()],
        [FIRST, SECOND],
        executor=executor,
        **settings,
    )


def test_batched_labels_equal_the_local_executors_at_the_batch_price(
    server: ScriptedServer,
    pool: list[dict[str, Any]],
    store: LabelStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool[0]["litellm_params"]["temperature"] = 0.0  # a request parameter: in each request of the file
    tasks = [*TASKS, LabelTask("open", "Describe the sea."), LabelTask("open-2", "Describe the sky.")]
    graders = [RegexMatch(), RubricJudge(JUDGE)]
    local_store = LabelStore(tmp_path / "local.sqlite")
    local = Labeller(Router(pool, fitted()), graders, [FIRST, SECOND], executor=LocalExecutor(4))
    # The dry run prices batched calls at the batch price: half, here.
    estimates = [
        labeller.estimate(tasks, s)
        for labeller, s in ((batched(pool, store, *graders), store), (local, local_store))
    ]
    assert estimates[0].calls == estimates[1].calls
    assert estimates[0].total_usd == pytest.approx(estimates[1].total_usd / 2)
    local_summary = local.run(tasks, local_store)
    server.clear()
    labeller = batched(pool, store, *graders)
    with caplog.at_level(logging.DEBUG, logger="routoo"):
        summary = labeller.run(tasks, store)
    assert summary.sent == local_summary.sent == {"answer": 20, "judge": 20} and not summary.failed
    assert [batch["status"] for batch in server.batches] == ["completed"] * 3  # first, second, then the judge
    assert store.open_batches() == []
    mine, theirs = labeller.labels(tasks, store), local.labels(tasks, local_store)
    np.testing.assert_array_equal(mine.quality, theirs.quality)
    assert np.nansum(mine.quality) > 0 and np.isnan(mine.quality[-2:]).all()  # the judge gives no rating
    assert store.verdicts() == local_store.verdicts()
    answers, local_answers = store.answers(), local_store.answers()
    assert {key: a.answer for key, a in answers.items()} == {
        key: a.answer for key, a in local_answers.items()
    }
    np.testing.assert_array_equal(mine.output_tokens, theirs.output_tokens)
    # The pool's models are priced in their specs, which litellm lists no batch price for: half the price.
    np.testing.assert_allclose(mine.cost, theirs.cost / 2)
    assert (mine.latency_s >= 0).all()
    assert [request["temperature"] for request in server.requests if request["model"] == "first"] == [
        0.0
    ] * 10
    secret = pool[0]["litellm_params"]["api_key"]
    assert "submitted batch" in caplog.text and secret not in caplog.text
    assert secret not in json.dumps(server.requests) and secret.encode() not in store.path.read_bytes()


def test_an_interrupted_run_polls_the_batches_it_submitted_and_submits_nothing_again(
    server: ScriptedServer, pool: list[dict[str, Any]], store: LabelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(2):  # first's and second's batches: neither done when the run is interrupted
        server.script_batch(in_progress_polls=5)
    polls = 0
    retrieve = litellm.aretrieve_batch

    async def interrupted(*args: Any, **kwargs: Any) -> Any:
        nonlocal polls
        polls += 1
        if polls == 3:
            raise KeyboardInterrupt  # Ctrl-C while the batches run
        return await retrieve(*args, **kwargs)

    monkeypatch.setattr(litellm, "aretrieve_batch", interrupted)
    budget = Budget(1.0)
    with pytest.raises(KeyboardInterrupt):
        batched(pool, store).run(TASKS, store, budget)
    submitted = [batch["id"] for batch in server.batches]
    assert len(submitted) == 2 and [b.batch_id for b in store.open_batches()] == submitted
    assert store.answers() == {} and budget.reserved == 0 == budget.spent  # nothing held by a dead run
    monkeypatch.setattr(litellm, "aretrieve_batch", retrieve)
    summary = batched(pool, store).run(TASKS, store, budget)
    assert [batch["id"] for batch in server.batches] == submitted  # polled again, not submitted again
    assert summary.sent == {"answer": 2 * len(TASKS)} and summary.left == 0 and store.open_batches() == []
    assert budget.spent == pytest.approx(sum(answer.cost_usd for answer in store.answers().values()))
    assert server.requests_for("first") == server.requests_for("second") == len(TASKS)  # each answered once


def test_a_budget_too_small_for_a_request_submits_nothing(
    server: ScriptedServer, pool: list[dict[str, Any]], store: LabelStore
) -> None:
    budget = Budget(1e-7)
    summary = batched(pool, store, max_tokens=50).run(TASKS, store, budget)
    assert summary.stopped == "budget" and summary.left == 2 * len(TASKS)
    assert server.batches == [] and store.open_batches() == [] and store.answers() == {}
    assert budget.spent == 0 == budget.reserved


def test_a_budget_holds_each_batch_at_its_worst_case_and_submits_the_requests_that_fit(
    server: ScriptedServer, pool: list[dict[str, Any]], store: LabelStore
) -> None:
    labeller = batched(pool, store, max_tokens=50)
    router = labeller.router
    bound = router.route(TASKS[0].prompt, policy={"model": FIRST}, max_tokens=50).candidate(FIRST).cost_bound
    assert bound is not None
    worst = (
        bound * batch_price(router, FIRST).input_cost_per_token / router.pool.specs[0].input_cost_per_token
    )
    budget = Budget(3.5 * worst)  # every prompt has the same length: three requests fit
    summary = labeller.run(TASKS, store, budget)
    assert summary.stopped == "budget" and summary.sent == {"answer": 3}
    assert [batch["request_counts"]["total"] for batch in server.batches] == [3]
    assert 0 < budget.spent <= budget.limit_usd and budget.reserved == 0
    assert budget.spent == pytest.approx(sum(answer.cost_usd for answer in store.answers().values()))
    again = batched(pool, store, max_tokens=50).run(TASKS, store, Budget(1.0))
    assert again.stopped is None and again.left == 0 and len(server.batches) == 3


def test_a_price_litellm_lists_for_batches_is_the_one_charged(
    server: ScriptedServer, store: LabelStore
) -> None:
    listed = litellm.model_cost["ft:gpt-4o-2024-08-06"]
    batch_in, batch_out = listed["input_cost_per_token_batches"], listed["output_cost_per_token_batches"]
    assert (batch_in, batch_out) != (listed["input_cost_per_token"] / 2, listed["output_cost_per_token"] / 2)
    model = "openai/ft:gpt-4o-2024-08-06"
    params = {"api_base": server.base_url, "api_key": "sk-routoo-test-key"}
    router = Router([{"name": model, "like": "big-model", "litellm_params": params}], fitted())
    assert batch_price(router, model).input_cost_per_token == batch_in
    labeller = Labeller(router, [RegexMatch()], executor=BatchApiExecutor(store, poll_interval_s=0))
    labeller.run(TASKS[:3], store)
    answers = list(store.answers().values())
    assert len(answers) == 3
    charged = [answer.prompt_tokens * batch_in + answer.completion_tokens * batch_out for answer in answers]
    assert [answer.cost_usd for answer in answers] == pytest.approx(charged)


def test_errors_in_the_error_file_are_failed_results_with_their_message_and_a_rerun_sends_them(
    server: ScriptedServer, pool: list[dict[str, Any]], store: LabelStore
) -> None:
    server.script("first", status=400, times=2, message="the request was refused")
    summary = batched(pool, store).run(TASKS, store)
    assert summary.failed == {"answer": 2} and summary.sent == {"answer": 2 * len(TASKS) - 2}
    assert all("the request was refused" in error for error in summary.errors)
    assert len(store.answers()) == 2 * len(TASKS) - 2 and store.open_batches() == []
    again = batched(pool, store).run(TASKS, store)
    assert again.sent == {"answer": 2} and again.left == 0
    assert [batch["request_counts"]["total"] for batch in server.batches] == [len(TASKS), len(TASKS), 2]


def test_a_failed_batch_fails_its_requests_with_its_message_and_is_closed(
    server: ScriptedServer, pool: list[dict[str, Any]], store: LabelStore
) -> None:
    server.script_batch(fail="the input file has a malformed line")
    summary = batched(pool, store).run(TASKS, store)
    assert summary.failed == {"answer": len(TASKS)} and summary.sent == {"answer": len(TASKS)}
    assert "failed without answering it: the input file has a malformed line" in summary.errors[0]
    assert store.open_batches() == []  # closed: a rerun submits its requests again
    assert batched(pool, store).run(TASKS, store).sent == {"answer": len(TASKS)}


def test_requests_ids_are_stable_and_a_model_without_a_batch_api_is_refused(
    store: LabelStore, pool: list[dict[str, Any]]
) -> None:
    from conftest import POOL

    from routoo.labelling import CallJob
    from routoo.testing import register_scripted_provider

    job = CallJob("judge", "t1", JUDGE, [{"role": "user", "content": "x"}], ("t1", FIRST, "rubric", "single"))
    assert request_id(job) == request_id(CallJob(*job.__dict__.values()))
    assert request_id(job) != request_id(
        CallJob("judge", "t1", JUDGE, job.messages, ("t1", SECOND, "rubric", "single"))
    )
    register_scripted_provider()
    labeller = Labeller(
        Router(POOL, fitted()), [RegexMatch()], executor=BatchApiExecutor(store, poll_interval_s=0)
    )
    with pytest.raises(ConfigError, match=r"served by 'scripted'.*local executor"):
        labeller.run(TASKS, store)
    with pytest.raises(ConfigError, match="LabelStore"):
        BatchApiExecutor("run.sqlite")  # type: ignore[arg-type]


def test_routoo_label_batch_api_runs_through_the_providers_batch_api_and_refuses_ray(
    server: ScriptedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.clear()
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-routoo-test-key")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        "".join(json.dumps({"prompt": task.prompt, "reference": task.reference}) + "\n" for task in TASKS)
    )
    common = ["label", "--prompts", str(prompts), "--models", "openai/gpt-4o-mini", "--grader", "regex"]
    common += ["--store", str(tmp_path / "run.sqlite"), "--batch-api", "--poll-interval", "0"]
    assert main([*common, "--executor", "ray"]) == 2
    assert "cannot run on Ray" in capsys.readouterr().err
    assert main([*common, "--out", str(tmp_path / "labels.jsonl")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sent"] == {"answer": len(TASKS)} and report["labels"] == len(TASKS)
    assert len(server.batches) == 1 and server.requests_for("gpt-4o-mini") == len(TASKS)
