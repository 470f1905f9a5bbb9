"""The question inside LlamaIndex's own RAG and condense prompts, formatted by LlamaIndex itself."""

from __future__ import annotations

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.chat_engine.condense_plus_context import DEFAULT_CONDENSE_PROMPT_TEMPLATE
from llama_index.core.chat_engine.condense_question import DEFAULT_PROMPT as CONDENSE_QUESTION_PROMPT
from llama_index.core.prompts import PromptTemplate
from llama_index.core.prompts.chat_prompts import (
    CHAT_CONTENT_QA_PROMPT,
    CHAT_CONTENT_REFINE_PROMPT,
    CHAT_CONTENT_TREE_SUMMARIZE_PROMPT,
    CHAT_REFINE_PROMPT,
    CHAT_TEXT_QA_PROMPT,
    CHAT_TREE_SUMMARIZE_PROMPT,
)
from llama_index.core.prompts.default_prompts import (
    DEFAULT_REFINE_PROMPT,
    DEFAULT_TEXT_QA_PROMPT,
    DEFAULT_TREE_SUMMARIZE_PROMPT,
)

from llamaindex_routoo.question import question_from_messages, rag_question

QUESTION = "Which river runs through\nthe capital of France?"
# Retrieved text that imitates the template's own markers must not be taken for the question.
CONTEXT = "Paris lies on the Seine.\nQuery: a line of the document\n---------------------\nAnswer: not this"
EXISTING_ANSWER = "The Seine."

TEXT_TEMPLATES = {
    "text_qa": DEFAULT_TEXT_QA_PROMPT,
    "tree_summarize": DEFAULT_TREE_SUMMARIZE_PROMPT,
    "refine": DEFAULT_REFINE_PROMPT,
}
CHAT_TEMPLATES = {
    "chat_text_qa": CHAT_TEXT_QA_PROMPT,
    "chat_tree_summarize": CHAT_TREE_SUMMARIZE_PROMPT,
    "chat_refine": CHAT_REFINE_PROMPT,
}
CONTENT_TEMPLATES = {
    "content_qa": CHAT_CONTENT_QA_PROMPT,
    "content_refine": CHAT_CONTENT_REFINE_PROMPT,
    "content_tree_summarize": CHAT_CONTENT_TREE_SUMMARIZE_PROMPT,
}


@pytest.mark.parametrize("template", TEXT_TEMPLATES.values(), ids=TEXT_TEMPLATES.keys())
def test_completion_templates_give_the_question(template: PromptTemplate) -> None:
    prompt = template.format(
        context_str=CONTEXT, context_msg=CONTEXT, query_str=QUESTION, existing_answer=EXISTING_ANSWER
    )
    assert rag_question(prompt) == QUESTION


@pytest.mark.parametrize("template", CHAT_TEMPLATES.values(), ids=CHAT_TEMPLATES.keys())
def test_chat_templates_give_the_question(template) -> None:
    messages = template.format_messages(
        context_str=CONTEXT, context_msg=CONTEXT, query_str=QUESTION, existing_answer=EXISTING_ANSWER
    )
    as_dicts = [{"role": message.role.value, "content": message.content} for message in messages]
    assert question_from_messages(as_dicts) == QUESTION


@pytest.mark.parametrize("template", CONTENT_TEMPLATES.values(), ids=CONTENT_TEMPLATES.keys())
def test_rich_content_templates_give_the_question(template) -> None:
    messages = template.format_messages(
        context_messages=[ChatMessage(content=CONTEXT)], query_str=QUESTION, existing_answer=EXISTING_ANSWER
    )
    assert rag_question(messages[-1].content) == QUESTION


def test_condense_prompts_give_the_follow_up_question() -> None:
    history = "user: Tell me about Paris.\nassistant: Follow Up Input: it is the capital."
    plus_context = DEFAULT_CONDENSE_PROMPT_TEMPLATE.format(chat_history=history, question=QUESTION)
    condense_question = CONDENSE_QUESTION_PROMPT.format(chat_history=history, question=QUESTION)
    assert rag_question(plus_context) == QUESTION
    assert rag_question(condense_question) == QUESTION


@pytest.mark.parametrize(
    "prompt",
    [
        "What is 2 + 2?",
        "Query: 2 + 2\nAnswer:",  # a few-shot prompt, with no context block: not a RAG template
        "Context\n---------------------\nno query line here\nAnswer:",
        "Query: \n---------------------\nQuery:   \nAnswer:",  # a template with an empty question
    ],
)
def test_other_prompts_are_not_taken_for_templates(prompt: str) -> None:
    assert rag_question(prompt) is None


def test_messages_fall_back_to_the_last_user_turn() -> None:
    messages = [
        {"role": "system", "content": "Use the context below.\n---------------------\nParis is in France."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
        {"role": "tool", "content": "42", "tool_call_id": "call_1"},
    ]
    assert question_from_messages(messages) == QUESTION
    assert question_from_messages([{"role": "system", "content": "Only a system prompt"}]) is None
