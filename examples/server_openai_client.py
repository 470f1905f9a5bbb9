"""Routoo behind the OpenAI SDK and LangChain's ChatOpenAI: ``routoo serve``, driven by a client.

Starts the server in this process on a free port of 127.0.0.1 (as ``routoo serve --config
routoo.toml`` would in its own), with routoo.testing's scripted models, so it runs offline:
no API key, no network. Then calls it as any OpenAI-compatible endpoint: a plain call, a
stream, a tool call, LangChain's ``ChatOpenAI(base_url=...)``, and the key's budget.

    python examples/server_openai_client.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import httpx
from langchain_openai import ChatOpenAI
from openai import OpenAI

from routoo.server import BackgroundServer, ServerConfig

KEY = "sk-example-0123456789"


def config(folder: Path) -> ServerConfig:
    """What a routoo.toml would say: a pool, the scripted provider, one key with a $1 budget."""
    return ServerConfig(
        models=[
            {"name": "scripted/small", "like": "gpt-3.5-turbo-1106"},
            {"name": "scripted/large", "like": "gpt-4-1106-preview"},
        ],
        scripted=True,
        keys=[{"name": "example", "secret": KEY, "budget_usd": 1.0}],
        ledger={"path": folder / "ledger.sqlite"},
        log=folder / "decisions.sqlite",
    )


def main() -> dict[str, Any]:
    """Run every call; what each answered, what it cost, and the key's budget at the end."""
    results: dict[str, Any] = {"answers": []}
    with tempfile.TemporaryDirectory() as folder, BackgroundServer(config(Path(folder))) as server:
        client = OpenAI(base_url=server.base_url, api_key=KEY)
        results["models"] = [model.id for model in client.models.list()]
        print("models:", results["models"])

        for question in ["What is 2+2?", "Prove that there are infinitely many primes."]:
            raw = client.chat.completions.with_raw_response.create(
                model="routoo", messages=[{"role": "user", "content": question}]
            )
            completion = raw.parse()
            results["answers"].append(
                (raw.headers["x-routoo-model"], float(raw.headers["x-routoo-cost-usd"]))
            )
            print(
                f"{question!r} -> {raw.headers['x-routoo-model']}, ${raw.headers['x-routoo-cost-usd']}: "
                f"{completion.choices[0].message.content}"
            )

        chunks = list(
            client.chat.completions.create(
                model="routoo", messages=[{"role": "user", "content": "Tell me a story."}], stream=True
            )
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
        streamed = chunks[-1].model_extra["routoo"]
        results["answers"].append((streamed["model"], streamed["cost_usd"]))
        print(f"streamed: {text!r}, cost ${streamed['cost_usd']:.6g}")

        llm = ChatOpenAI(base_url=server.base_url, api_key=KEY, model="routoo-cheap")
        reply = llm.invoke("Name a prime number.")
        results["langchain"] = reply.response_metadata["model_name"]
        print(f"LangChain: {reply.content!r} from {reply.response_metadata['model_name']}")

        budget = httpx.get(f"{server.base_url}/routoo/budget", headers={"Authorization": f"Bearer {KEY}"})
        results["budget"] = budget.json()
        print("budget:", results["budget"])
    return results


if __name__ == "__main__":
    main()
