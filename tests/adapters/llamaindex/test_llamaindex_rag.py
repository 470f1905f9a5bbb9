"""RoutooLLM inside LlamaIndex RAG: a vector index embedded locally, query and chat engines, budgets.

The predictor must read the user's question, not the retrieved context LlamaIndex pastes
around it, while cost and token counts cover the whole prompt that was sent. With
``RoutooLLM(budget=...)`` every LLM call of a query, chat turn or agent run shares one
budget, keyed by the outermost span of LlamaIndex's instrumentation
(``llamaindex_routoo.budgets.RunSpans``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import MATH_PROMPT, POOL, bad_budget_settings, llamaindex_event_handler
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent, LLMCompletionEndEvent
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool

from llamaindex_routoo import Budget, RoutooLLM, RoutooLocalEmbedding, budget_scope
from llamaindex_routoo.budgets import RUN_SPANS, RunSpans
from routoo.budget import RunBudget
from routoo.errors import BudgetExceededError, ConfigError
from routoo.predictors import KNNPredictor
from routoo.testing import ScriptedLLM
from routoo.tokens import count_prompt_tokens

DOCUMENTS = [
    "Ann keeps her marbles in a blue tin. On Monday she had 12 marbles.",
    "On Tuesday Ann bought 30 more marbles at the toy shop on Elm Street.",
    "Bob collects pencils, not marbles. He owns 7 pencils and a red eraser.",
]
QUESTION = "Ann has 12 marbles and buys 30 more. How many marbles does Ann have now?"
FOLLOW_UP = "Bob has 7 pencils and buys 5 more. How many pencils does Bob have now?"


class LLMEndRecorder(BaseEventHandler):
    """Keeps the response of every LLM call LlamaIndex's instrumentation reports."""

    responses: list

    def handle(self, event, **kwargs) -> None:
        if isinstance(event, LLMChatEndEvent | LLMCompletionEndEvent):
            self.responses.append(event.response)


@pytest.fixture
def llm(scripted: ScriptedLLM, recording_predictor: KNNPredictor) -> RoutooLLM:
    return RoutooLLM(models=POOL, predictor=recording_predictor)


@pytest.fixture(scope="module")
def index() -> VectorStoreIndex:
    # One node per document, so a refine query makes one call per retrieved document.
    return VectorStoreIndex.from_documents(
        [Document(text=text) for text in DOCUMENTS],
        embed_model=RoutooLocalEmbedding(),
        transformations=[SentenceSplitter(chunk_size=128, chunk_overlap=0)],
    )


@pytest.fixture
def llm_responses() -> Iterator[list]:
    recorder = LLMEndRecorder(responses=[])
    with llamaindex_event_handler(recorder):
        yield recorder.responses


def test_the_local_embedding_ranks_the_relevant_document_first(index: VectorStoreIndex) -> None:
    [best] = index.as_retriever(similarity_top_k=1).retrieve("Which shop sold Ann her marbles?")
    assert "Elm Street" in best.get_content()


def test_a_query_engine_routes_on_the_question_and_pays_for_the_whole_prompt(
    index: VectorStoreIndex,
    llm: RoutooLLM,
    recording_predictor: KNNPredictor,
    scripted: ScriptedLLM,
    llm_responses,
) -> None:
    response = index.as_query_engine(llm=llm, similarity_top_k=2).query(QUESTION)

    assert recording_predictor.seen == [QUESTION]
    [call] = scripted.calls
    sent_text = "\n".join(str(message["content"]) for message in call.messages)
    assert all(node.get_content() in sent_text for node in response.source_nodes)  # the context was sent
    [llm_response] = llm_responses
    record = llm_response.additional_kwargs
    assert record["model"] == "scripted/small" == f"scripted/{call.model}"  # routed as the arithmetic it is
    assert record["routoo_decision"]["prompt_tokens"] == count_prompt_tokens(call.messages)
    assert record["prompt_tokens"] > count_prompt_tokens([{"role": "user", "content": QUESTION}]) + 20
    assert record["cost_usd"] == pytest.approx(llm.router.spent)
    assert str(response).startswith("scripted/small answers")


def test_a_custom_template_still_routes_on_the_question(
    index: VectorStoreIndex, llm: RoutooLLM, recording_predictor: KNNPredictor, scripted: ScriptedLLM
) -> None:
    # Nothing here looks like LlamaIndex's templates: the question comes from the query_str filled in.
    template = PromptTemplate("Notes:\n{context_str}\n\nThe user asks: {query_str}\nReply briefly.")
    index.as_query_engine(llm=llm, similarity_top_k=2, text_qa_template=template).query(QUESTION)
    assert recording_predictor.seen == [QUESTION]
    assert "The user asks" in scripted.calls[0].messages[-1]["content"]


def test_without_question_only_the_predictor_reads_the_context_too(
    index: VectorStoreIndex, scripted: ScriptedLLM, recording_predictor: KNNPredictor
) -> None:
    llm = RoutooLLM(models=POOL, predictor=recording_predictor, question_only=False)
    index.as_query_engine(llm=llm, similarity_top_k=2).query(QUESTION)
    [seen] = recording_predictor.seen
    assert QUESTION in seen and "Context information" in seen


def test_settings_llm_routes_a_streaming_query(
    index: VectorStoreIndex, llm: RoutooLLM, recording_predictor: KNNPredictor, monkeypatch, llm_responses
) -> None:
    monkeypatch.setattr(Settings, "_llm", llm)
    response = index.as_query_engine(streaming=True, similarity_top_k=2).query(QUESTION)
    text = "".join(response.response_gen)
    assert text.startswith("scripted/small answers")
    assert recording_predictor.seen == [QUESTION]
    assert llm_responses[-1].additional_kwargs["cost_usd"] == pytest.approx(llm.router.spent)


async def test_an_async_refine_query_routes_every_call_on_the_question(
    index: VectorStoreIndex, llm: RoutooLLM, recording_predictor: KNNPredictor, scripted: ScriptedLLM
) -> None:
    engine = index.as_query_engine(llm=llm, similarity_top_k=3, response_mode="refine")
    await engine.aquery(QUESTION)
    assert len(scripted.calls) == 3  # a first answer, then one refinement per further document
    assert recording_predictor.seen == [QUESTION] * 3


def test_a_chat_engine_routes_on_the_user_turns(
    index: VectorStoreIndex, llm: RoutooLLM, recording_predictor: KNNPredictor, scripted: ScriptedLLM
) -> None:
    engine = index.as_chat_engine(chat_mode="condense_plus_context", llm=llm, similarity_top_k=2)
    engine.chat(QUESTION)
    engine.chat(FOLLOW_UP)
    # Turn 1: the answer. Turn 2: condensing the follow-up into a standalone question, then the answer.
    assert len(scripted.calls) == 3
    assert "Follow Up Input" in scripted.calls[1].messages[-1]["content"]
    assert recording_predictor.seen == [QUESTION, FOLLOW_UP, FOLLOW_UP]


def test_one_budget_covers_all_calls_of_a_query(
    index: VectorStoreIndex, llm: RoutooLLM, scripted: ScriptedLLM, llm_responses
) -> None:
    engine = index.as_query_engine(llm=llm, similarity_top_k=3, response_mode="refine")
    with budget_scope(Budget(1.0)) as budget:
        engine.query(QUESTION)
    costs = [response.additional_kwargs["cost_usd"] for response in llm_responses]
    assert len(budget.records) == len(costs) == 3
    assert budget.spent == pytest.approx(sum(costs))


def test_a_hard_budget_stops_a_query_between_its_calls(
    index: VectorStoreIndex, llm: RoutooLLM, scripted: ScriptedLLM, llm_responses
) -> None:
    engine = index.as_query_engine(llm=llm, similarity_top_k=3, response_mode="refine")
    engine.query(QUESTION)
    candidates = llm_responses[0].additional_kwargs["routoo_decision"]["candidates"]
    cheapest = min(candidate["cost_bound"] for candidate in candidates)
    scripted.clear()
    # Enough for the cheapest first call, and no more: the refine calls after it have longer prompts.
    with budget_scope(Budget(cheapest * (1 + 1e-6), mode="hard")), pytest.raises(BudgetExceededError):
        engine.query(QUESTION)
    assert len(scripted.calls) == 1


# -------------------------------------------------------------------- per-run budgets
@pytest.fixture
def run_budgets(monkeypatch) -> Iterator[list[Budget]]:
    """Every budget a call was charged to as its run's, in call order."""
    seen: list[Budget] = []
    budget_for = RunSpans.budget_for

    def recording(self: RunSpans, setting: RunBudget) -> Budget:
        seen.append(budget_for(self, setting))
        return seen[-1]

    monkeypatch.setattr(RunSpans, "budget_for", recording)
    yield seen


def refine_engine(index: VectorStoreIndex, llm: RoutooLLM):
    """A query engine that makes one LLM call per retrieved document: three in all."""
    return index.as_query_engine(llm=llm, similarity_top_k=3, response_mode="refine")


def test_the_llm_calls_of_a_query_share_one_budget_and_each_query_gets_its_own(
    index, scripted, recording_predictor, run_budgets: list[Budget]
) -> None:
    llm = RoutooLLM(models=POOL, predictor=recording_predictor, budget=1.0)
    open_before = RUN_SPANS.open_runs()
    refine_engine(index, llm).query(QUESTION)
    first = run_budgets[0]
    assert len(run_budgets) == 3 and all(budget is first for budget in run_budgets)
    assert len(first.records) == 3 and first.spent == pytest.approx(llm.router.spent)
    assert first.limit_usd == 1.0 and first.mode == "hard"

    refine_engine(index, llm).query(QUESTION)
    assert run_budgets[3] is not first and run_budgets[3] is run_budgets[5]
    assert RUN_SPANS.open_runs() == open_before  # forgotten when the query's span ended


async def test_an_async_query_and_a_chat_turn_are_runs_too(
    index, scripted, recording_predictor, run_budgets
) -> None:
    llm = RoutooLLM(models=POOL, predictor=recording_predictor, budget=1.0)
    await refine_engine(index, llm).aquery(QUESTION)
    assert len(run_budgets) == 3 and len(set(map(id, run_budgets))) == 1
    engine = index.as_chat_engine(chat_mode="condense_plus_context", llm=llm, similarity_top_k=2)
    engine.chat(QUESTION)
    engine.chat(FOLLOW_UP)  # condense, then answer
    turns = run_budgets[3:]
    assert len(turns) == 3 and turns[0] is not turns[1] and turns[1] is turns[2]


async def test_the_turns_of_an_agent_run_share_one_budget(recording_predictor, run_budgets, scripted) -> None:
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    llm = RoutooLLM(models=POOL, predictor=recording_predictor, budget=1.0)
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(fn=add)], llm=llm)
    await agent.run(user_msg="Please add 2 and 3.")
    assert len(scripted.calls) == len(run_budgets) >= 2  # a tool call, then the answer
    assert all(budget is run_budgets[0] for budget in run_budgets)
    assert run_budgets[0].spent == pytest.approx(llm.router.spent)


def test_a_hard_run_budget_stops_the_run_and_the_next_run_starts_afresh(
    index, recording_predictor, scripted, llm_responses
) -> None:
    refine_engine(index, RoutooLLM(models=POOL, predictor=recording_predictor)).query(QUESTION)
    assert len(scripted.calls) == 3
    decision = llm_responses[0].additional_kwargs["routoo_decision"]
    cheapest = min(candidate["cost_bound"] for candidate in decision["candidates"])
    # Enough for the cheapest first call, and no more: the refine calls after it have longer prompts.
    llm = RoutooLLM(models=POOL, predictor=recording_predictor, budget=cheapest * (1 + 1e-6))
    for _ in range(2):
        scripted.clear()
        with pytest.raises(BudgetExceededError):
            refine_engine(index, llm).query(QUESTION)
        assert len(scripted.calls) == 1


def test_a_soft_run_budget_steers_later_calls_of_the_run(
    index, scripted, recording_predictor, llm_responses
) -> None:
    llm = RoutooLLM(
        models=POOL, predictor=recording_predictor, tradeoff=100.0, budget=1e-4, budget_mode="soft"
    )
    refine_engine(index, llm).query(QUESTION)
    refine_engine(index, llm).query(QUESTION)
    tradeoffs = [response.additional_kwargs["routoo_decision"]["tradeoff"] for response in llm_responses]
    assert len(tradeoffs) == 6
    for run in (tradeoffs[:3], tradeoffs[3:]):
        assert run[0] == 100.0  # each run starts with its budget untouched
        assert run[1] > 100.0 and run[2] > run[1]  # and feels its own spending


def test_a_budget_object_is_shared_by_every_run_and_not_charged_twice(
    index, scripted, recording_predictor
) -> None:
    shared = Budget(1.0, name="shared")
    llm = RoutooLLM(models=POOL, predictor=recording_predictor, budget=shared)
    refine_engine(index, llm).query(QUESTION)
    with budget_scope(shared):  # already open: charged once
        refine_engine(index, llm).query(QUESTION)
    assert len(shared.records) == 6 and shared.spent == pytest.approx(llm.router.spent)


def test_calls_outside_any_run_get_a_budget_each(scripted, recording_predictor, run_budgets) -> None:
    llm = RoutooLLM(models=POOL, predictor=recording_predictor, budget=1.0)
    message = [ChatMessage(role=MessageRole.USER, content=MATH_PROMPT)]
    llm.chat(message)
    llm.chat(message)
    assert len(run_budgets) == 2 and run_budgets[0] is not run_budgets[1]
    assert all(len(budget.records) == 1 for budget in run_budgets)


@pytest.mark.parametrize(
    ("settings", "named"),
    bad_budget_settings(),
)
def test_bad_budget_settings_are_refused_naming_the_setting(
    scripted, recording_predictor, settings: dict, named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        RoutooLLM(models=POOL, predictor=recording_predictor, **settings)
