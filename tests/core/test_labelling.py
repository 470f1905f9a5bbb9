"""The label loop offline, with scripted models and a scripted judge: answers and grades become
training labels with real costs; a run stopped part-way (an interrupt, a budget) resumes without
repeating a call that answered; the dry run prices the calls and sends none; judges are called
through the router and their verdicts kept; feedback in the decision log becomes labels."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import POOL
from reliability_support import fitted

from routoo import DecisionLog
from routoo.budget import Budget
from routoo.cli import main
from routoo.data import load_jsonl
from routoo.errors import ConfigError, DataError
from routoo.labelling import (
    FEEDBACK,
    ExactMatch,
    Labeller,
    LabelStore,
    LabelTask,
    PairwiseJudge,
    RubricJudge,
    read_tasks,
    tasks_from_log,
)
from routoo.prompts import content_text
from routoo.router import Router
from routoo.testing import ScriptedLLM, register_scripted_provider

JUDGE = {"name": "scripted/medium", "like": "big-model"}
QUESTIONS = [
    (f"What is {a} plus {b}? Answer with the number only.", str(a + b))
    for a, b in zip(range(12), range(5, 17), strict=True)
]


@pytest.fixture
def llm() -> ScriptedLLM:
    llm = register_scripted_provider()
    answers = dict(QUESTIONS)
    # large knows every sum, small answers 0 to all: labels 1 and (mostly) 0.
    llm.behave(
        "scripted/large", answer=lambda messages: answers.get(content_text(messages[-1]["content"]), "?")
    )
    llm.behave("scripted/small", answer=lambda messages: "0")
    return llm


@pytest.fixture
def tasks() -> list[LabelTask]:
    return [LabelTask(f"q{i}", question, reference) for i, (question, reference) in enumerate(QUESTIONS)]


@pytest.fixture
def store(tmp_path: Path) -> LabelStore:
    return LabelStore(tmp_path / "run.sqlite")


def router(**settings: object) -> Router:
    return Router([*POOL, JUDGE], fitted(), **settings)


def calls_per_pair(llm: ScriptedLLM) -> Counter[tuple[str, str]]:
    return Counter((call.model, json.dumps(call.messages)) for call in llm.calls)


def test_answers_graded_against_references_become_labels_with_real_costs(
    llm: ScriptedLLM, tasks: list[LabelTask], store: LabelStore, tmp_path: Path
) -> None:
    labeller = Labeller(router(), [ExactMatch()], ["scripted/small", "scripted/large"])
    summary = labeller.run(tasks, store)
    assert summary.sent["answer"] == 2 * len(tasks) and not summary.failed and summary.left == 0
    dataset = labeller.labels(tasks, store)
    large, small = dataset.quality[:, 1], dataset.quality[:, 0]
    assert (large == 1).all() and (small == 0).all()
    assert (dataset.cost > 0).all() and (dataset.latency_s >= 0).all() and (dataset.output_tokens >= 1).all()
    assert summary.cost_usd == pytest.approx(dataset.cost.sum())
    out = tmp_path / "labels.jsonl"
    from routoo.data import save_jsonl

    save_jsonl(dataset, out)
    loaded = load_jsonl(out)
    np.testing.assert_allclose(loaded.latency_s, dataset.latency_s)
    np.testing.assert_allclose(loaded.cost, dataset.cost)
    assert loaded.source_ids == [task.id for task in tasks]


# Ctrl-C drops the calls in flight: their coroutines never finish, as in a real interrupted run.
@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
def test_an_interrupted_run_resumes_without_repeating_a_call_or_losing_a_label(
    llm: ScriptedLLM, tasks: list[LabelTask], store: LabelStore
) -> None:
    answered = 0

    def large_then_interrupt(messages: list[dict]) -> str:
        nonlocal answered
        answered += 1
        if answered == 7:
            raise KeyboardInterrupt  # Ctrl-C while the seventh call of large is in flight
        return dict(QUESTIONS).get(content_text(messages[-1]["content"]), "?")

    llm.behave("scripted/large", answer=large_then_interrupt)
    labeller = Labeller(router(), [ExactMatch()], ["scripted/small", "scripted/large"])
    with pytest.raises(KeyboardInterrupt):
        labeller.run(tasks, store)
    kept = set(store.answers())
    assert 0 < len(kept) < 2 * len(tasks)
    summary = labeller.run(tasks, store)
    assert summary.sent["answer"] == 2 * len(tasks) - len(kept) and summary.left == 0
    # A call that had answered is never sent again; only those cut off in flight are.
    task_of = {question: f"q{i}" for i, (question, _) in enumerate(QUESTIONS)}
    sent = Counter(
        (task_of[content_text(call.messages[-1]["content"])], f"scripted/{call.model}") for call in llm.calls
    )
    assert all(sent[pair] == 1 for pair in kept)
    repeated = [pair for pair, n in sent.items() if n > 1]
    assert 1 <= len(repeated) <= labeller.executor.concurrency and not set(repeated) & kept
    assert (labeller.labels(tasks, store).quality[:, 1] == 1).all()


def test_a_hard_budget_stops_the_run_within_its_limit_and_a_rerun_goes_on(
    llm: ScriptedLLM, tasks: list[LabelTask], store: LabelStore
) -> None:
    labeller = Labeller(router(), [ExactMatch()], ["scripted/small", "scripted/large"], max_tokens=20)
    estimate = labeller.estimate(tasks, store)
    budget = Budget(estimate.total_usd / 3, mode="hard")
    summary = labeller.run(tasks, store, budget)
    assert summary.stopped == "budget" and summary.left > 0
    spent = sum(answer.cost_usd for answer in store.answers().values())
    assert 0 < spent <= budget.limit_usd and budget.spent == pytest.approx(spent)
    again = labeller.run(tasks, store, Budget(1.0))
    assert again.stopped is None and again.left == 0
    assert max(calls_per_pair(llm).values()) == 1


def test_the_dry_run_prices_the_calls_left_and_sends_none(
    llm: ScriptedLLM, tasks: list[LabelTask], store: LabelStore
) -> None:
    labeller = Labeller(router(), [ExactMatch(), RubricJudge("scripted/medium")], ["scripted/small"])
    estimate = labeller.estimate(tasks, store)
    assert estimate.calls == {"scripted/small": len(tasks), "scripted/medium": len(tasks)}
    assert all(cost > 0 for cost in estimate.cost_usd.values())
    assert llm.calls == []
    labeller.run(tasks[:4], store)
    assert labeller.estimate(tasks, store).calls == {
        "scripted/small": len(tasks) - 4,
        "scripted/medium": len(tasks) - 4,
    }


def test_a_rubric_judge_is_called_through_the_router_and_its_verdicts_kept(
    llm: ScriptedLLM, tasks: list[LabelTask], store: LabelStore
) -> None:
    llm.behave("scripted/medium", answer=lambda messages: "Sound and complete.\nRating: [[8]]")
    no_reference = [LabelTask(task.id, task.prompt) for task in tasks[:3]]
    labeller = Labeller(router(), [ExactMatch(), RubricJudge("scripted/medium")], ["scripted/small"])
    summary = labeller.run(no_reference, store)
    assert summary.sent == {"answer": 3, "judge": 3}
    np.testing.assert_allclose(labeller.labels(no_reference, store).quality, 7 / 9)
    judged = [call for call in llm.calls if call.model == "medium"]
    assert "0" in judged[0].messages[-1]["content"]  # the judge read small's answer
    assert store.judge_cost() > 0 and summary.cost_usd > store.judge_cost()
    assert labeller.run(no_reference, store).sent == {}  # nothing left to send


def test_a_pairwise_judge_biased_to_the_first_answer_is_caught_by_the_swap(
    llm: ScriptedLLM, tasks: list[LabelTask], store: LabelStore
) -> None:
    llm.behave("scripted/medium", answer=lambda messages: "The first is better. [[A]]")
    judge = PairwiseJudge("scripted/medium", "scripted/large")
    labeller = Labeller(router(), [judge], ["scripted/small"])
    summary = labeller.run(tasks[:4], store)
    assert summary.sent == {"answer": 8, "judge": 8}  # small and the reference model; both orders
    grades = labeller.grades(tasks[:4], store)
    assert all(grade.score == 0.5 and grade.detail["position_bias"] for grade in grades.values())


def test_feedback_in_the_decision_log_labels_the_model_that_answered_without_calling_it(
    llm: ScriptedLLM, tmp_path: Path, store: LabelStore
) -> None:
    log = DecisionLog(tmp_path / "calls.sqlite", record_text=True)
    traffic = router(log=log)
    routed = [traffic.completion(question) for question, _ in QUESTIONS[:4]]
    log.add_feedback(routed[0].call_id, thumbs=True)
    log.add_feedback(routed[1].call_id, score=0.25)
    tasks = tasks_from_log(DecisionLog(tmp_path / "calls.sqlite"), store)
    assert [task.id for task in tasks] == [r.call_id for r in routed]
    assert set(store.answers()) == {(r.call_id, r.model) for r in routed}
    assert {a.source for a in store.answers().values()} == {"log"}
    before = len(llm.calls)
    labeller = Labeller(traffic, [FEEDBACK], [routed[0].model])
    labeller.run(tasks, store)
    answered_by_it = [i for i, r in enumerate(routed) if r.model == routed[0].model]
    assert len(llm.calls) - before == len(tasks) - len(answered_by_it)  # the others' prompts only
    labels = labeller.labels(tasks, store).quality[:, 0]
    assert labels[0] == 1.0
    if routed[1].model == routed[0].model:
        assert labels[1] == 0.25
    assert all(math.isnan(labels[i]) for i in range(2, 4))


def test_tasks_read_from_jsonl_keep_ids_stable_and_bad_lines_are_named(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    lines = [{"prompt": "2+2?", "reference": "4"}, {"prompt": "2+2?"}, {"prompt": "hi", "id": "greeting"}]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    first = read_tasks(path)
    assert first[2].id == "greeting" and first[0].id != first[1].id and first[0].reference == "4"
    path.write_text("\n".join(json.dumps(line) for line in [lines[2], *lines[:2]]) + "\n")
    assert {task.id for task in read_tasks(path)} == {task.id for task in first}
    path.write_text(json.dumps({"prompt": "x", "answer": "y"}) + "\n")
    with pytest.raises(DataError, match=r"tasks.jsonl:1: unknown fields \['answer'\]"):
        read_tasks(path)


def test_a_labeller_refuses_what_it_could_not_call_or_grade(llm: ScriptedLLM) -> None:
    with pytest.raises(ConfigError, match="scripted/absent"):
        Labeller(router(), [RubricJudge("scripted/absent")])
    with pytest.raises(ConfigError, match="at least one grader"):
        Labeller(router(), [])
    with pytest.raises(DataError, match="unique"):
        Labeller(router(), [ExactMatch()]).estimate([LabelTask("a", "x"), LabelTask("a", "y")], None)  # type: ignore[arg-type]


def test_routoo_label_runs_dry_then_for_real_then_stops_at_its_budget(
    llm: ScriptedLLM, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": q, "reference": r}) + "\n" for q, r in QUESTIONS))
    common = ["label", "--scripted", "--prompts", str(prompts), "--models", "scripted/small"]
    common += ["--grader", "numeric", "--store", str(tmp_path / "run.sqlite"), "--max-tokens", "16"]
    assert main([*common, "--dry-run"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["calls_left"] == {"scripted/small": len(QUESTIONS)}
    assert LabelStore(tmp_path / "run.sqlite").answers() == {}
    tiny = dry["estimated_cost_usd"]["scripted/small"] / 4
    assert main([*common, "--budget", str(tiny), "--out", str(tmp_path / "labels.jsonl")]) == 3
    stopped = json.loads(capsys.readouterr().out)
    assert stopped["stopped"] == "budget" and 0 < stopped["labels"] < len(QUESTIONS)
    assert main([*common, "--out", str(tmp_path / "labels.jsonl")]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["calls_left"] == 0 and done["labels"] == len(QUESTIONS)
    assert len(load_jsonl(tmp_path / "labels.jsonl")) == len(QUESTIONS)


def test_routoo_label_reads_a_decision_log_and_refuses_bad_rate_limits(
    llm: ScriptedLLM, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = DecisionLog(tmp_path / "calls.sqlite", record_text=True)
    traffic = router(log=log)
    routed = [traffic.completion(question) for question, _ in QUESTIONS[:3]]
    log.add_feedback(routed[0].call_id, thumbs=False)
    common = ["label", "--from-log", str(log.path), "--models", routed[0].model, "--grader", "feedback"]
    common += ["--store", str(tmp_path / "run.sqlite"), "--predictor", str(tmp_path / "absent")]
    assert main([*common, "--rate-limit", "scripted=fast"]) == 2
    assert "--rate-limit 'scripted=fast': use PROVIDER=REQUESTS_PER_MINUTE" in capsys.readouterr().err
    assert main([*common[:-2], "--rate-limit", "scripted=600,100000", "--dry-run"]) == 0
    left = json.loads(capsys.readouterr().out)["calls_left"]
    answered = sum(r.model == routed[0].model for r in routed)
    assert left == ({routed[0].model: 3 - answered} if answered < 3 else {})
