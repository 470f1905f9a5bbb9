"""examples/llamaindex_rag.py runs offline and routes each question to the model it needs."""

from __future__ import annotations

import runpy

from conftest import REPO_ROOT
from llama_index.core import Settings

EXAMPLE = REPO_ROOT / "examples" / "llamaindex_rag.py"


def test_the_rag_example_runs_offline(monkeypatch, capsys) -> None:
    # The example sets the global Settings; put back what was there.
    monkeypatch.setattr(Settings, "_llm", None)
    monkeypatch.setattr(Settings, "_embed_model", None)
    example = runpy.run_path(str(EXAMPLE))

    lookup, arithmetic = example["main"]([])

    assert [call.model for call in lookup.calls] == ["scripted/small"]
    assert [call.model for call in arithmetic.calls] == ["scripted/large"]
    assert lookup.text.startswith("scripted/small answers")
    assert all(call.cost_usd > 0 for call in lookup.calls + arithmetic.calls)
    assert "scripted/large: $" in capsys.readouterr().out
