"""From your traffic to your router, offline: log, label, onboard a new model, route, report.

1. Traffic: a LangChain app answers questions through ``RoutooChat``, which logs every call
   (with its text: ``record_text=True``) to a decision log; users give thumbs on a few answers.
2. Labels: ``routoo.labelling`` runs the pool, and a model not yet in it, on the logged
   prompts, and an LLM judge grades each answer on a rubric. The run is resumable and capped
   by a hard budget; the labels are Routoo's training JSONL with real costs and latencies.
3. Onboarding: the new model joins the shipped predictor from those labels.
4. The same traffic routed with it: the judged quality and the savings report (a table and a
   PNG plot) of each log, against always calling ``scripted/large``.

Everything runs on routoo.testing's scripted models: ``scripted/small`` answers the additions
right and the multiplications wrong, ``scripted/large`` answers everything right, and
``scripted/medium`` (the new model) all but the largest products. ``scripted/large`` is the
judge too: it rates an answer 9 when it is the right number, else 2.

    python examples/label_loop.py [OUT_DIR]       # writes its files to OUT_DIR (default: a temp dir)
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from langchain_routoo import RoutooChat
from routoo import DecisionLog, Router
from routoo.budget import Budget
from routoo.data import save_jsonl
from routoo.labelling import Labeller, LabelStore, RubricJudge, tasks_from_log
from routoo.log_report import summarise_log
from routoo.predictors.onboarded import OnboardedPredictor
from routoo.prompts import content_text
from routoo.testing import register_scripted_provider

POOL = [
    {"name": "scripted/small", "like": "gpt-4o-mini"},
    {"name": "scripted/large", "like": "gpt-4o"},
]
NEW_MODEL = "scripted/medium"
QUESTIONS = {
    **{
        f"What is {a} plus {b}? Reply with the number.": a + b
        for a, b in zip(range(10, 50), range(50, 90), strict=True)
    },
    **{
        f"What is {a} times {b}? Reply with the number.": a * b
        for a, b in zip(range(101, 141), range(211, 251), strict=True)
    },
}
# Today's traffic is labelled and teaches the router; tomorrow's questions are new to it.
TODAY, TOMORROW = list(QUESTIONS)[::2], list(QUESTIONS)[1::2]


def script_models() -> None:
    """The scripted pool's answers and the judge's ratings."""
    llm = register_scripted_provider()

    def question(messages: list[dict]) -> str:
        return content_text(messages[-1]["content"])

    def small(messages: list[dict]) -> str:
        text = question(messages)
        return str(QUESTIONS[text]) if "plus" in text else "I think it is 1000."

    def medium(messages: list[dict]) -> str:
        right = QUESTIONS[question(messages)]
        return str(right) if right < 30_000 else str(right + 10)

    def large_or_judge(messages: list[dict]) -> str:
        if messages[0]["role"] == "system" and "grader" in messages[0]["content"]:
            return judge(question(messages))
        return str(QUESTIONS[question(messages)])

    def judge(judge_prompt: str) -> str:
        asked = re.search(r"<question>\s*(.*?)\s*</question>", judge_prompt, re.DOTALL)
        answer = re.search(r"<answer>\s*(.*?)\s*</answer>", judge_prompt, re.DOTALL)
        numbers = re.findall(r"-?\d+", answer.group(1)) if asked and answer else []
        rating = 9 if numbers and int(numbers[-1]) == QUESTIONS[asked.group(1)] else 2
        return f"Checked the arithmetic.\nRating: [[{rating}]]"

    llm.behave("scripted/small", answer=small)
    llm.behave("scripted/medium", answer=medium)
    llm.behave("scripted/large", answer=large_or_judge)


def main(out: Path) -> dict[str, Any]:
    """Run the loop, writing its files to ``out``; what each step gave, for the tests."""
    script_models()
    log = DecisionLog(out / "calls.sqlite", record_text=True)

    # 1. Traffic through RoutooChat, logged; a few thumbs from users.
    chat = RoutooChat(models=POOL, log=log)
    for question in TODAY:
        chat.invoke(question)
    for row in log.rows()[:5]:
        log.add_feedback(row["call_id"], thumbs=row["answered_by"] == "scripted/large")
    print(f"1. traffic: {len(TODAY)} calls logged to {log.path}")

    # 2. Labels for the pool and the new model, graded by the judge, under a hard budget.
    router = Router([*POOL, NEW_MODEL])
    store = LabelStore(out / "labels.sqlite")
    tasks = tasks_from_log(log, store)  # the answers the log holds go in the store: not bought again
    labeller = Labeller(
        router, [RubricJudge("scripted/large")], ["scripted/small", "scripted/large", NEW_MODEL]
    )
    estimate = labeller.estimate(tasks, store)
    print(f"2. labelling: {sum(estimate.calls.values())} calls left, estimated ${estimate.total_usd:.4f}")
    summary = labeller.run(tasks, store, Budget(estimate.total_usd * 3))
    labels = labeller.labels(tasks, store)
    save_jsonl(labels, out / "labels.jsonl")
    print(f"   sent {dict(summary.sent)}, spent ${summary.cost_usd:.4f}; labels in {out / 'labels.jsonl'}")
    for j, model in enumerate(labels.models):
        print(f"   {model:<16} mean label {labels.quality[:, j].mean():.2f}")

    # 3. Onboard the pool from its labels: the scripted models are new to the shipped predictor.
    predictor = OnboardedPredictor(base="default").fit(labels)  # prior: the known models' mean
    predictor.save(out / "onboarded")
    print(f"3. onboarded {[row['model'] for row in predictor.summary()]} from {len(labels)} labelled prompts")

    # 4. Tomorrow's traffic (questions not labelled) through the router before and after.
    print(f"4. {len(TOMORROW)} new questions; always {POOL[1]['name']} would be right on all")
    spent, right = {}, {}
    for name, models, model_predictor in (
        ("before", POOL, None),
        ("after", ["scripted/small", "scripted/large", NEW_MODEL], predictor),
    ):
        day_log = DecisionLog(out / f"tomorrow-{name}.sqlite")
        chat = RoutooChat(models=models, predictor=model_predictor, log=day_log)
        right[name] = sum(
            answers_right(chat.invoke(question).content, QUESTIONS[question]) for question in TOMORROW
        )
        report = summarise_log(day_log.rows(), baseline="scripted/large")
        shares = {model: f"{share:.0%}" for model, share in report.share_by_model.items()}
        print(f"   {name}: {right[name]}/{len(TOMORROW)} right, ${report.spend_usd:.6f} spent, {shares}")
        spent[name] = report.spend_usd
    print(
        f"   real saving: {1 - spent['after'] / spent['before']:.0%}; the log's report (baseline estimated):"
    )
    print(report.table())
    print(f"   plot: {report.plot(out / 'savings.png')}")
    return {"summary": summary, "labels": labels, "right": right, "spent": spent, "report": report}


def answers_right(answer: str, truth: int) -> bool:
    numbers = re.findall(r"-?\d+", answer)
    return bool(numbers) and int(numbers[-1]) == truth


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="routoo-label-loop-")))
