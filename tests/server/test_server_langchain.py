"""LangChain's ``ChatOpenAI(base_url=...)`` against the live server: a chain, a stream and a tool agent."""

from __future__ import annotations

import pytest
from server_support import (
    ALICE,
    EASY,
    HARD,
    server_fixture,  # noqa: F401  (the fixture `server`)
)

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])


def chat_openai(server, **options):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(base_url=server.base_url, api_key=ALICE, model="routoo", max_retries=0, **options)


def test_a_chain_runs_on_the_routed_model(server) -> None:
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    prompt = ChatPromptTemplate.from_messages([("system", "Answer briefly."), ("user", "{question}")])
    llm = chat_openai(server)
    assert (prompt | llm | StrOutputParser()).invoke({"question": HARD}) == f"scripted/large answers: {HARD}"
    message = (prompt | llm).invoke({"question": EASY})
    assert message.response_metadata["model_name"] == "scripted/small"
    assert message.usage_metadata["input_tokens"] > 0


def test_a_langchain_stream_arrives_with_usage(server) -> None:
    chunks = list(chat_openai(server, stream_usage=True).stream(HARD))
    assert "".join(chunk.content for chunk in chunks) == f"scripted/large answers: {HARD}"
    assert sum(chunk.usage_metadata["output_tokens"] for chunk in chunks if chunk.usage_metadata) > 0


def test_a_tool_calling_agent_runs_to_its_answer(server) -> None:
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool

    @tool
    def add(a: float, b: float) -> float:
        """Add two numbers."""
        return a + b

    llm = chat_openai(server).bind_tools([add])
    messages = [HumanMessage("What is 2 plus 3? Use the add tool.")]
    for _ in range(4):  # a plain agent loop: call the model, run the tools it asks for
        reply = llm.invoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            break
        for call in reply.tool_calls:
            messages.append(ToolMessage(str(add.invoke(call["args"])), tool_call_id=call["id"]))
    assert [type(m).__name__ for m in messages] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert messages[1].tool_calls[0]["name"] == "add"
    assert "read the tool result" in messages[-1].content
    assert {messages[1].response_metadata["model_name"], messages[3].response_metadata["model_name"]} <= {
        "scripted/small",
        "scripted/large",
    }
