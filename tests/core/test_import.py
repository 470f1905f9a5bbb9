"""Importing Routoo reaches no network and leaves the process environment as it found it.

Each case runs in a fresh interpreter whose sockets refuse and record every connection
and name lookup, with ``LITELLM_LOCAL_MODEL_COST_MAP`` unset, as in a user's own process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = r"""
import json, os, socket, sys, traceback

attempts = []

def refuse(*args, **kwargs):
    # Who asked: Routoo if any of its packages is on the stack (litellm retries in a thread).
    files = [frame.filename for frame in traceback.extract_stack()]
    ours = [name for name in files if any(f"/{package}/" in name for package in PACKAGES)]
    attempts.append(ours[-1] if ours else "litellm")
    raise OSError("network blocked by the test")

PACKAGES = ("routoo", "langchain_routoo", "llamaindex_routoo")

socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.getaddrinfo = refuse
socket.create_connection = refuse

if sys.argv[1] == "litellm-first":
    import litellm  # without the variable, litellm itself tries to fetch its price map
environment = dict(os.environ)

import routoo
import routoo.router
import langchain_routoo
import llamaindex_routoo
from routoo.pricing import PriceBook
from routoo.tokens import count_tokens

price = PriceBook().price("gpt-4o")
tokens = count_tokens("How many tokens is this?")
print(json.dumps({
    "litellm_attempts": attempts.count("litellm"),
    "routoo_attempts": [caller for caller in attempts if caller != "litellm"],
    "environment_changes": sorted(
        key for key in {*environment, *os.environ} if environment.get(key) != os.environ.get(key)
    ),
    "local_map_variable": os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP"),
    "priced": price.input_cost_per_token > 0,
    "tokens": tokens,
}))
"""


def run_probe(order: str) -> dict[str, object]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("LITELLM_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, order], env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("order", ["routoo-first", "litellm-first"])
def test_import_reaches_no_network_and_keeps_the_environment(order: str) -> None:
    outcome = run_probe(order)
    assert outcome["routoo_attempts"] == []
    assert outcome["environment_changes"] == []
    assert outcome["local_map_variable"] is None
    assert outcome["priced"] and outcome["tokens"] > 0
    if order == "litellm-first":
        # The probe sees a network attempt when there is one: litellm's own, outside Routoo.
        assert outcome["litellm_attempts"] > 0
    else:
        assert outcome["litellm_attempts"] == 0
