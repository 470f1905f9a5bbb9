"""An OpenAI-compatible chat server on 127.0.0.1, for tests that go through litellm's real HTTP path.

``ScriptedServer`` answers ``POST <base_url>/chat/completions`` as the scripted provider
does (``routoo._scripted_replies``), and can be told to answer any status with any
``Retry-After``, to drop a stream after some chunks, to leave the usage out, to answer at
length or slowly. A pool model reaches it as ``openai/<name>`` with
``litellm_params={"api_base": server.base_url, "api_key": "..."}``::

    with ScriptedServer() as server:
        server.script("busy", status=429, retry_after=2, times=None)
        server.script("talkative", usage=False, answer_words=500)

Usage is counted as the router counts (``routoo.tokens``), so estimates and bills agree.
The server runs in a daemon thread of the test process; nothing reaches the network.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from routoo._scripted_replies import answer_text, at_length
from routoo.errors import ConfigError
from routoo.tokens import count_prompt_tokens, count_tokens

# What each status says, in the words and codes OpenAI's API uses (litellm maps on them).
_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: (
        "invalid_request_error",
        "Unsupported parameter: 'temperature' is not supported with this model.",
        "unsupported_parameter",
    ),
    401: ("invalid_request_error", "Incorrect API key provided.", "invalid_api_key"),
    402: ("insufficient_quota", "You have run out of credit.", "insufficient_quota"),
    403: ("permission_denied", "You do not have access to this model.", None),
    404: ("invalid_request_error", "The model does not exist or has been retired.", "model_not_found"),
    429: ("rate_limit_error", "Rate limit reached; try again later.", "rate_limit_exceeded"),
    500: ("server_error", "The server had an error while processing your request.", None),
    502: ("server_error", "Bad gateway.", None),
    503: ("server_error", "The engine is currently overloaded.", None),
}
CONTEXT_WINDOW_ERROR = (
    "This model's maximum context length is 100 tokens. However, your messages resulted in more."
)


@dataclass(frozen=True)
class ScriptedAnswer:
    """How the server answers one request for a model."""

    status: int = 200
    retry_after: float | None = None  # seconds, sent as Retry-After with an error
    message: str | None = None  # the error message (None: the status's usual one)
    usage: bool = True  # False: no usage in the answer or the stream
    answer_words: int | None = None  # pad the answer to this many words
    drop_after_chunks: int | None = None  # streams: close the connection after this many chunks
    delay_s: float = 0.0  # wait before answering


class ScriptedServer:
    """An OpenAI-compatible chat server on 127.0.0.1 with scripted answers; use it as a context manager."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[tuple[ScriptedAnswer, int | None]]] = {}
        self.requests: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None

    # --------------------------------------------------------------- lifecycle
    def start(self) -> ScriptedServer:
        """Listen on a free port of 127.0.0.1 in a daemon thread."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="routoo-scripted-server", daemon=True).start()
        self._server = server
        return self

    def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        """The ``api_base`` to give litellm."""
        if self._server is None:
            raise ConfigError("the scripted server is not running: start() it first")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    # --------------------------------------------------------------- scripting
    def script(self, model: str, times: int | None = 1, **answer: Any) -> None:
        """Answer the next ``times`` requests for ``model`` so (None: every request); the fields of
        ``ScriptedAnswer`` as keywords. Scripts for one model queue up in order."""
        scripted = ScriptedAnswer(**answer)
        if scripted.status != 200 and scripted.status not in _ERRORS and scripted.message is None:
            raise ConfigError(f"give a message for status {scripted.status}")
        with self._lock:
            self._scripts.setdefault(model, deque()).append((scripted, times))

    def clear(self) -> None:
        """Forget every script and request."""
        with self._lock:
            self._scripts.clear()
            self.requests.clear()

    def requests_for(self, model: str) -> int:
        """How many requests named ``model``."""
        with self._lock:
            return sum(request.get("model") == model for request in self.requests)

    def _next(self, model: str) -> ScriptedAnswer:
        with self._lock:
            queue = self._scripts.get(model)
            if not queue:
                return ScriptedAnswer()
            answer, times = queue[0]
            if times is not None:
                if times <= 1:
                    queue.popleft()
                else:
                    queue[0] = (answer, times - 1)
            return answer

    def _record(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(body)


def _handler_for(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # chunked streams, so that a dropped one is seen as broken

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read server.requests
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            server._record(body)
            model = str(body.get("model", ""))
            answer = server._next(model)
            time.sleep(answer.delay_s)
            if answer.status != 200:
                self._error(answer)
            elif body.get("stream"):
                self._stream(model, body, answer)
            else:
                self._json(200, _completion(model, body, answer))

        def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, answer: ScriptedAnswer) -> None:
            kind, message, code = _ERRORS.get(answer.status, ("server_error", "", None))
            payload = {
                "error": {"message": answer.message or message, "type": kind, "code": code, "param": None}
            }
            headers = {} if answer.retry_after is None else {"Retry-After": f"{answer.retry_after:g}"}
            self._json(answer.status, payload, headers)

        def _stream(self, model: str, body: dict[str, Any], answer: ScriptedAnswer) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            text, usage = _answer(model, body, answer)
            words = text.split(" ")
            events = [_chunk(model, {"role": "assistant", "content": ""})]
            events += [
                _chunk(model, {"content": word + (" " if i < len(words) - 1 else "")})
                for i, word in enumerate(words)
            ]
            events.append(_chunk(model, {}, finish_reason="stop"))
            if answer.usage and (body.get("stream_options") or {}).get("include_usage"):
                events.append({**_chunk(model, {}), "choices": [], "usage": usage})
            for sent, event in enumerate(events):
                if answer.drop_after_chunks is not None and sent == answer.drop_after_chunks:
                    self.wfile.flush()
                    self.close_connection = True
                    return  # no terminating chunk: the client sees the body cut off
                self._send_chunk(f"data: {json.dumps(event)}\n\n".encode())
            self._send_chunk(b"data: [DONE]\n\n")
            self._send_chunk(b"")

        def _send_chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    return Handler


def _answer(model: str, body: dict[str, Any], answer: ScriptedAnswer) -> tuple[str, dict[str, int]]:
    messages = body.get("messages") or []
    limits = [int(body[key]) for key in ("max_tokens", "max_completion_tokens") if body.get(key)]
    text = at_length(answer_text(model, messages, body), answer.answer_words, limits)
    prompt = count_prompt_tokens(messages, body.get("tools"))
    completion = count_tokens(text)
    return text, {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _completion(model: str, body: dict[str, Any], answer: ScriptedAnswer) -> dict[str, Any]:
    text, usage = _answer(model, body, answer)
    payload: dict[str, Any] = {
        "id": f"chatcmpl-{abs(hash(text)) % 10**12}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }
    if answer.usage:
        payload["usage"] = usage
    return payload


def _chunk(model: str, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
