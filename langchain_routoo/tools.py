"""Tools and structured output for ``RoutooChat``, in the OpenAI format litellm takes.

``bind_tools`` and ``with_structured_output`` are ``RoutooChat`` methods (LangChain looks for
them there); what they build lives here: the OpenAI ``tool_choice`` of a LangChain one, the
``response_format`` of a schema, and the runnable that binds a schema and parses the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import (
    JsonOutputKeyToolsParser,
    JsonOutputParser,
    PydanticOutputParser,
    PydanticToolsParser,
)
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_openai_function, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass

from routoo.errors import ConfigError

if TYPE_CHECKING:
    from langchain_routoo.chat_models import RoutooChat

StructuredOutputMethod = Literal["function_calling", "json_schema", "json_mode"]


def structured_output(
    llm: RoutooChat,
    schema: dict[str, Any] | type,
    method: StructuredOutputMethod,
    include_raw: bool,
    strict: bool | None,
) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
    """``llm`` bound to answer in ``schema`` by ``method``, piped into the parser of that answer."""
    is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
    tracing = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
    bound: Runnable[LanguageModelInput, AIMessage]
    parser: Runnable[Any, Any]
    if method == "function_calling":
        tool_name = convert_to_openai_tool(schema)["function"]["name"]
        bound = llm.bind_tools(
            [schema], tool_choice=tool_name, strict=strict, ls_structured_output_format=tracing
        )
        parser = (
            PydanticToolsParser(tools=[schema], first_tool_only=True)
            if is_pydantic
            else JsonOutputKeyToolsParser(key_name=tool_name, first_tool_only=True)
        )
    elif method in ("json_schema", "json_mode"):
        bound = llm.bind(
            response_format=response_format(schema, method, strict), ls_structured_output_format=tracing
        )
        parser = PydanticOutputParser(pydantic_object=schema) if is_pydantic else JsonOutputParser()
    else:
        raise ConfigError(
            f"unknown structured output method {method!r}; "
            "use 'function_calling', 'json_schema' or 'json_mode'"
        )
    if not include_raw:
        return bound | parser
    parse_raw = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
    keep_error = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=bound) | parse_raw.with_fallbacks([keep_error], exception_key="parsing_error")


def openai_tool_choice(choice: str | dict[str, Any] | bool, tools: list[dict[str, Any]]) -> Any:
    """LangChain's ``tool_choice`` (a mode, ``True``, a tool's name or an OpenAI dict) as OpenAI's."""
    names = [tool["function"]["name"] for tool in tools]
    if isinstance(choice, dict):
        return choice
    if choice is True or choice in ("any", "required"):
        if choice is True and len(names) == 1:
            return {"type": "function", "function": {"name": names[0]}}
        return "required"
    if choice in ("auto", "none"):
        return choice
    if choice in names:
        return {"type": "function", "function": {"name": choice}}
    raise ConfigError(f"tool_choice={choice!r} names no bound tool; the tools are {names}")


def response_format(schema: dict[str, Any] | type, method: str, strict: bool | None) -> dict[str, Any]:
    """The OpenAI ``response_format`` asking for ``schema`` (``json_schema``) or any JSON object."""
    if method == "json_mode":
        return {"type": "json_object"}
    if isinstance(schema, Mapping) and "json_schema" in schema:
        return dict(schema)  # already an OpenAI response_format
    function = convert_to_openai_function(schema, strict=strict)
    json_schema: dict[str, Any] = {"name": function["name"], "schema": function["parameters"]}
    if function.get("description"):
        json_schema["description"] = function["description"]
    if strict is not None:
        json_schema["strict"] = strict
    return {"type": "json_schema", "json_schema": json_schema}
