"""Retrieval-augmented question answering with LlamaIndex, every LLM call routed by Routoo.

A vector index over a short travel policy answers two questions under one budget each. The
router reads each question (not the retrieved policy text pasted around it), predicts how
well each model would answer, and sends the lookup to the cheap model and the arithmetic to
the strong one; the budget records what every call really cost.

Offline (the default), nothing leaves the machine: documents are embedded by the packaged
all-MiniLM-L6-v2 (``RoutooLocalEmbedding``), the models are routoo.testing's scripted
litellm provider, and the predictor is a kNN fitted on a small demonstration dataset::

    python examples/llamaindex_rag.py

With real providers, pass a predictor saved by ``routoo train`` (or by ``Predictor.save``)
and litellm model names it knows, with the providers' API keys in the environment::

    export OPENAI_API_KEY=...
    python examples/llamaindex_rag.py --predictor ./my-predictor \\
        --models gpt-3.5-turbo-1106 gpt-4-1106-preview

(a predictor trained on RouterBench knows these two). Give a model the predictor does not know
as ``NAME=KNOWN`` to score it like ``KNOWN``, e.g. ``gpt-4o-mini=gpt-3.5-turbo-1106``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from llama_index.core import Document, Settings, VectorStoreIndex

from llamaindex_routoo import Budget, RoutooLLM, RoutooLocalEmbedding, budget_scope
from routoo.budget import SpendRecord
from routoo.data.dataset import RoutingDataset
from routoo.predictors import KNNPredictor, Predictor, load_predictor

POLICY = [
    "Flights must be booked at least 14 days before departure through the company travel portal.",
    "Hotel stays are reimbursed up to 150 dollars per night in most cities and 220 dollars per night "
    "in New York, London and Tokyo.",
    "Meals during travel are covered by a daily allowance of 60 dollars; alcohol is never reimbursed.",
    "Expense reports are due within 30 days of the trip's end, "
    "with a receipt for every item over 25 dollars.",
]
QUESTIONS = [
    "How many days before departure must flights be booked?",
    "If 3 employees each stay 4 nights in London at the hotel cap and each spends the full meal "
    "allowance for 5 days, how many dollars does the company reimburse in total?",
]
OFFLINE_MODELS = ["scripted/small", "scripted/large"]
QUERY_BUDGET_USD = 0.05


@dataclass
class Answer:
    """One question's answer and the calls it took."""

    question: str
    text: str
    calls: list[SpendRecord]


def demo_predictor(seed: int = 0) -> Predictor:
    """A kNN predictor fitted on made-up records: the small model answers lookups, only the
    large one gets multi-step arithmetic right."""
    rng = np.random.default_rng(seed)
    things = ["the parking fee", "the visa rule", "the per diem", "the mileage rate", "the booking window"]
    lookups = [
        f"What is {thing} for {city}?" for thing in things for city in ("Paris", "Oslo", "Lima", "Rome")
    ]
    sums = [
        f"If {a} people each spend {b} dollars a night for {c} nights and {d} dollars a day on food, "
        f"how many dollars is that in total?"
        for a, b, c, d in rng.integers(2, 9, size=(20, 4)) * [1, 25, 1, 10]
    ]
    prompts = lookups + sums
    is_sum = np.array([False] * len(lookups) + [True] * len(sums))
    quality = np.stack([~is_sum, np.ones_like(is_sum)], axis=1).astype(float)
    dataset = RoutingDataset(
        name="travel-demo",
        prompts=prompts,
        models=OFFLINE_MODELS,
        quality=quality,
        output_tokens=np.tile([40.0, 120.0], (len(prompts), 1)),
    )
    return KNNPredictor(k=5).fit(dataset)


def pool(models: Sequence[str]) -> list[str | dict[str, str]]:
    """``NAME=KNOWN`` scores NAME like the predictor's KNOWN; a bare name must be known itself."""
    return [
        dict(zip(("name", "like"), model.split("=", 1), strict=True)) if "=" in model else model
        for model in models
    ]


def main(argv: Sequence[str] | None = None) -> list[Answer]:
    """Build the index, ask the questions, print who answered each and what it cost."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictor", help="a saved predictor's folder (default: offline demo)")
    parser.add_argument("--models", nargs="+", help="litellm model names, with --predictor")
    args = parser.parse_args(argv)
    if args.predictor:
        if not args.models:
            parser.error("--predictor needs --models")
        models, predictor = pool(args.models), load_predictor(args.predictor)
    else:
        from routoo.testing import register_scripted_provider

        register_scripted_provider()
        models, predictor = OFFLINE_MODELS, demo_predictor()

    Settings.llm = RoutooLLM(models=models, predictor=predictor, max_tokens=256)
    Settings.embed_model = RoutooLocalEmbedding()
    index = VectorStoreIndex.from_documents([Document(text=text) for text in POLICY])
    engine = index.as_query_engine(similarity_top_k=2)

    answers = []
    for question in QUESTIONS:
        with budget_scope(Budget(QUERY_BUDGET_USD, name="one query")) as budget:
            response = engine.query(question)
        answers.append(Answer(question, str(response), list(budget.records)))
        print(f"Q: {question}\nA: {response}")
        for call in budget.records:
            print(
                f"   {call.model}: ${call.cost_usd:.6f} "
                f"({call.prompt_tokens} prompt + {call.completion_tokens} completion tokens)"
            )
    return answers


if __name__ == "__main__":
    main()
