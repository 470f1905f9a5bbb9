"""Find the user's question inside the prompts LlamaIndex builds for RAG.

A RAG prompt pastes retrieved context around the question. How hard the call is depends on the
question, so the predictor should read the question alone, while cost and context-window checks
still count the whole prompt. ``rag_question`` recognises the structure of LlamaIndex's default
templates in the text of the last user message:

- question answering and tree summarising (``text_qa_template``, completion and chat forms): a
  context block between dashed lines, then ``Query: <question>`` and a final ``Answer:``;
- chat refining: ``New Context: ...``, then ``Query: <question>``, ``Original Answer: ...`` and a
  final ``New Answer:``;
- completion refining: ``The original query is as follows: <question>`` followed by
  ``We have provided an existing answer:``;
- chat engines condensing a follow-up into a standalone question: ``Follow Up Input: <question>``
  before a final ``Standalone question:``, or ``<Follow Up Message>`` ... ``<Standalone question>``.

Each pattern is anchored on the template's own fixed lines next to the question (its final lines
where the context comes first), so retrieved context that happens to contain ``Query:`` is not
mistaken for the question. Anything else gives ``None``.

Better than any pattern is the ``query_str`` a template was formatted with: ``RoutooLLM``'s
template calls (``predict``, ``stream``, ``structured_predict``...) set it with
``template_question`` and ``call_question`` reads it first.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from routoo.prompts import content_text

_CONTEXT_DELIMITER = re.compile(r"^-{4,}[ \t]*$", re.MULTILINE)  # LlamaIndex uses 12 or 21 dashes
_QA_END = re.compile(r"\nAnswer:\s*\Z")
_CHAT_REFINE_END = re.compile(r"\nNew Answer:\s*\Z")
_COMPLETION_REFINE = re.compile(
    r"(?:\A|\n)The original query is as follows: (?P<question>.*?)\nWe have provided an existing answer:",
    re.DOTALL,
)
# (the template's final line, the opener of the question it closes)
_CONDENSE = (
    (re.compile(r"\n\s*Standalone question:\s*\Z"), "Follow Up Input:"),
    (re.compile(r"\s*<Standalone question>\s*\Z"), "<Follow Up Message>"),
)
_NEW_CONTEXT = re.compile(r"New Context:")
_QUERY = "\nQuery:"


def rag_question(prompt: str) -> str | None:
    """The question inside a LlamaIndex QA, refine or condense prompt; ``None`` when none is recognised."""
    text = prompt.replace("\r\n", "\n")
    if qa_end := _QA_END.search(text):
        return _query_before(text, qa_end.start(), context_marker=_CONTEXT_DELIMITER)
    if refine_end := _CHAT_REFINE_END.search(text):
        original_answer = text.rfind("\nOriginal Answer:", 0, refine_end.start())
        if original_answer != -1:
            return _query_before(text, original_answer, context_marker=_NEW_CONTEXT)
    if match := _COMPLETION_REFINE.search(text):
        return _non_empty(match["question"])
    for final_line, opener in _CONDENSE:
        if end := final_line.search(text):
            start = text.rfind(opener, 0, end.start())
            if start != -1:
                return _non_empty(text[start + len(opener) : end.start()])
    return None


def question_from_messages(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The RAG question of the last user message, else that message's text; ``None`` without one."""
    for message in reversed(messages):
        if message.get("role") == "user":
            text = content_text(message.get("content"))
            return rag_question(text) or _non_empty(text)
    return None


def _query_before(text: str, end: int, context_marker: re.Pattern[str]) -> str | None:
    """The text after the last ``Query:`` before ``end``, if the template's context block precedes it."""
    start = text.rfind(_QUERY, 0, end)
    if start == -1 or not context_marker.search(text, 0, start):
        return None
    return _non_empty(text[start + len(_QUERY) : end])


def _non_empty(text: str) -> str | None:
    return text.strip() or None


# The question a LlamaIndex template was formatted with (``query_str``): exact, whatever the template.
_TEMPLATE_QUESTION: ContextVar[str | None] = ContextVar("routoo_llamaindex_query_str", default=None)


@contextmanager
def template_question(template_args: Mapping[str, Any]) -> Iterator[None]:
    """Within, calls read ``template_args["query_str"]`` as the question (none shadows an outer one)."""
    query = template_args.get("query_str")
    token = _TEMPLATE_QUESTION.set(query if isinstance(query, str) and query.strip() else None)
    try:
        yield
    finally:
        _TEMPLATE_QUESTION.reset(token)


def call_question(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The question of a call: its template's ``query_str`` inside ``template_question``, else
    ``question_from_messages``."""
    return _TEMPLATE_QUESTION.get() or question_from_messages(messages)
