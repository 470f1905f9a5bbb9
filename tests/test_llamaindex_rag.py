"""RoutooLLM inside LlamaIndex RAG: a vector index embedded locally, query and chat engines, budgets.

The predictor must read the user's question, not the retrieved context LlamaIndex pastes
around it, while cost and token counts cover the whole prompt that was sent.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import POOL
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent, LLMCompletionEndEvent
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.prompts import PromptTemplate

from llamaindex_routoo import Budget, RoutooLLM, RoutooLocalEmbedding, budget_scope
from routoo.errors import BudgetExceededError
from routoo.predictors import KNNPredictor
from routoo.testing import ScriptedLLM, register_scripted_provider
from routoo.tokens import count_prompt_tokens

DOCUMENTS = [
    "Ann keeps her marbles in a blue tin. On Monday she had 12 marbles.",
    "On Tuesday Ann bought 30 more marbles at the toy shop on Elm Street.",
    "Bob collects pencils, not marbles. He owns 7 pencils and a red eraser.",
]
QUESTION = "Ann has 12 marbles and buys 30 more. How many marbles does Ann have now?"
FOLLOW_UP = "Bob has 7 pencils and buys 5 more. How many pencils does Bob have now?"


class RecordingPredictor(KNNPredictor):
    """A kNN predictor that remembers every text it was asked about."""

    seen: list[str]

    def _predict_texts(self, texts: list[str]):
        self.seen.extend(texts)
        return super()._predict_texts(texts)


class LLMEndRecorder(BaseEventHandler):
    """Keeps the response of every LLM call LlamaIndex's instrumentation reports."""

    responses: list

    def handle(self, event, **kwargs) -> None:
        if isinstance(event, LLMChatEndEvent | LLMCompletionEndEvent):
            self.responses.append(event.response)


@pytest.fixture
def scripted() -> ScriptedLLM:
    return register_scripted_provider()


@pytest.fixture
def predictor(planted_dataset) -> RecordingPredictor:
    predictor = RecordingPredictor().fit(planted_dataset())
    predictor.seen = []
    return predictor


@pytest.fixture
def llm(scripted: ScriptedLLM, predictor: RecordingPredictor) -> RoutooLLM:
    return RoutooLLM(models=POOL, predictor=predictor)


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
    dispatcher = get_dispatcher()
    dispatcher.add_event_handler(recorder)
    yield recorder.responses
    dispatcher.event_handlers.remove(recorder)


def test_the_local_embedding_ranks_the_relevant_document_first(index: VectorStoreIndex) -> None:
    [best] = index.as_retriever(similarity_top_k=1).retrieve("Which shop sold Ann her marbles?")
    assert "Elm Street" in best.get_content()


def test_a_query_engine_routes_on_the_question_and_pays_for_the_whole_prompt(
    index: VectorStoreIndex,
    llm: RoutooLLM,
    predictor: RecordingPredictor,
    scripted: ScriptedLLM,
    llm_responses,
) -> None:
    response = index.as_query_engine(llm=llm, similarity_top_k=2).query(QUESTION)

    assert predictor.seen == [QUESTION]
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
    index: VectorStoreIndex, llm: RoutooLLM, predictor: RecordingPredictor, scripted: ScriptedLLM
) -> None:
    # Nothing here looks like LlamaIndex's templates: the question comes from the query_str filled in.
    template = PromptTemplate("Notes:\n{context_str}\n\nThe user asks: {query_str}\nReply briefly.")
    index.as_query_engine(llm=llm, similarity_top_k=2, text_qa_template=template).query(QUESTION)
    assert predictor.seen == [QUESTION]
    assert "The user asks" in scripted.calls[0].messages[-1]["content"]


def test_without_question_only_the_predictor_reads_the_context_too(
    index: VectorStoreIndex, scripted: ScriptedLLM, predictor: RecordingPredictor
) -> None:
    llm = RoutooLLM(models=POOL, predictor=predictor, question_only=False)
    index.as_query_engine(llm=llm, similarity_top_k=2).query(QUESTION)
    [seen] = predictor.seen
    assert QUESTION in seen and "Context information" in seen


def test_settings_llm_routes_a_streaming_query(
    index: VectorStoreIndex, llm: RoutooLLM, predictor: RecordingPredictor, monkeypatch, llm_responses
) -> None:
    monkeypatch.setattr(Settings, "_llm", llm)
    response = index.as_query_engine(streaming=True, similarity_top_k=2).query(QUESTION)
    text = "".join(response.response_gen)
    assert text.startswith("scripted/small answers")
    assert predictor.seen == [QUESTION]
    assert llm_responses[-1].additional_kwargs["cost_usd"] == pytest.approx(llm.router.spent)


async def test_an_async_refine_query_routes_every_call_on_the_question(
    index: VectorStoreIndex, llm: RoutooLLM, predictor: RecordingPredictor, scripted: ScriptedLLM
) -> None:
    engine = index.as_query_engine(llm=llm, similarity_top_k=3, response_mode="refine")
    await engine.aquery(QUESTION)
    assert len(scripted.calls) == 3  # a first answer, then one refinement per further document
    assert predictor.seen == [QUESTION] * 3


def test_a_chat_engine_routes_on_the_user_turns(
    index: VectorStoreIndex, llm: RoutooLLM, predictor: RecordingPredictor, scripted: ScriptedLLM
) -> None:
    engine = index.as_chat_engine(chat_mode="condense_plus_context", llm=llm, similarity_top_k=2)
    engine.chat(QUESTION)
    engine.chat(FOLLOW_UP)
    # Turn 1: the answer. Turn 2: condensing the follow-up into a standalone question, then the answer.
    assert len(scripted.calls) == 3
    assert "Follow Up Input" in scripted.calls[1].messages[-1]["content"]
    assert predictor.seen == [QUESTION, FOLLOW_UP, FOLLOW_UP]


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
    cheapest = min(candidate["estimated_cost"] for candidate in candidates)
    scripted.clear()
    # Enough for the cheapest first call, and no more: the refine calls after it have longer prompts.
    with budget_scope(Budget(cheapest * (1 + 1e-6), mode="hard")), pytest.raises(BudgetExceededError):
        engine.query(QUESTION)
    assert len(scripted.calls) == 1
