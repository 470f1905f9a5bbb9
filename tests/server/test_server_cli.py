"""``routoo serve``: one command from a config file to an OpenAI-compatible endpoint."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from server_support import EASY

from routoo.cli import main

CONFIG = """
models = [{name = "scripted/small", like = "gpt-3.5-turbo-1106"}, {name = "scripted/large", like = "gpt-4o"}]
scripted = true
log = "decisions.sqlite"

[[keys]]
name = "demo"
secret = "sk-demo-0123456789"
budget_usd = 1.0
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.allow_hosts(["127.0.0.1"])
def test_routoo_serve_answers_openai_calls(tmp_path) -> None:
    (tmp_path / "routoo.toml").write_text(CONFIG)
    port = free_port()
    command = [sys.executable, "-m", "routoo.cli", "serve", "--config", "routoo.toml", "--port", str(port)]
    server = subprocess.Popen(command, cwd=tmp_path, env=os.environ.copy(), stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # until it listens (or exits)
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                if httpx.get(f"{base}/ready").status_code == 200:
                    break
            except httpx.ConnectError:
                time.sleep(0.1)
        response = httpx.post(
            f"{base}/v1/chat/completions",
            json={"model": "routoo", "messages": [{"role": "user", "content": EASY}]},
            headers={"Authorization": "Bearer sk-demo-0123456789"},
        )
        assert response.status_code == 200 and response.headers["x-routoo-model"].startswith("scripted/")
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert (tmp_path / "routoo-ledger.sqlite").is_file() and (tmp_path / "decisions.sqlite").is_file()


def test_a_bad_config_is_an_error_before_anything_listens(tmp_path, capsys) -> None:
    (tmp_path / "bad.toml").write_text('models = ["scripted/small"]\nsurprise = 1\n')
    assert main(["serve", "--config", str(tmp_path / "bad.toml")]) == 2
    assert "surprise" in capsys.readouterr().err


def test_a_server_without_keys_listens_on_loopback_only(tmp_path, capsys) -> None:
    (tmp_path / "open.toml").write_text('models = ["scripted/small"]\nscripted = true\n')
    assert main(["serve", "--config", str(tmp_path / "open.toml"), "--host", "0.0.0.0"]) == 2
    assert "no keys" in capsys.readouterr().err
