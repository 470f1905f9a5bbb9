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

It also speaks OpenAI's batch API: ``POST /files`` (a multipart upload of the batch's JSONL),
``POST /batches``, ``GET /batches/{id}`` and ``GET /files/{id}/content``. Each request of a
batch is answered as the chat endpoint would answer it (scripts included: an error status
puts the request in the batch's error file) once the batch completes; ``script_batch`` keeps
the next batch ``in_progress`` for some polls, or makes it fail::

    server.script_batch(in_progress_polls=3)
    server.script_batch(fail="the input file has a malformed line")
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class ScriptedBatch:
    """How the server runs one batch: ``in_progress`` for that many polls, then completed, or
    failed with ``fail`` as its error message (no request answered, as a batch whose input
    fails validation)."""

    in_progress_polls: int = 0
    fail: str | None = None


@dataclass
class _Batch:
    """A batch the server holds: its OpenAI object, and the polls it stays in progress."""

    payload: dict[str, Any]
    script: ScriptedBatch
    polls_left: int = field(init=False)

    def __post_init__(self) -> None:
        self.polls_left = self.script.in_progress_polls


class ScriptedServer:
    """An OpenAI-compatible chat server on 127.0.0.1 with scripted answers; use it as a context manager."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[tuple[ScriptedAnswer, int | None]]] = {}
        self.requests: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None
        self._files: dict[str, bytes] = {}
        self._batches: dict[str, _Batch] = {}
        self._batch_scripts: deque[ScriptedBatch] = deque()
        self._ids = itertools.count(1)

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

    def script_batch(self, in_progress_polls: int = 0, fail: str | None = None) -> None:
        """Run the next batch created so (``ScriptedBatch``); scripts for batches queue up in order."""
        with self._lock:
            self._batch_scripts.append(ScriptedBatch(in_progress_polls, fail))

    def clear(self) -> None:
        """Forget every script, request, file and batch."""
        with self._lock:
            self._scripts.clear()
            self.requests.clear()
            self._files.clear()
            self._batches.clear()
            self._batch_scripts.clear()

    @property
    def batches(self) -> list[dict[str, Any]]:
        """Every batch created, as last reported, oldest first."""
        with self._lock:
            return [dict(batch.payload) for batch in self._batches.values()]

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

    # --------------------------------------------------------------- batch API
    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    def _add_file(self, content: bytes, filename: str, purpose: str) -> dict[str, Any]:
        file_id = self._new_id("file")
        with self._lock:
            self._files[file_id] = content
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }

    def _file(self, file_id: str) -> bytes | None:
        with self._lock:
            return self._files.get(file_id)

    def _create_batch(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """A new batch of the uploaded file ``body["input_file_id"]``; None when there is no such file."""
        if self._file(str(body.get("input_file_id"))) is None:
            return None
        payload = {
            "id": self._new_id("batch"),
            "object": "batch",
            "endpoint": body.get("endpoint"),
            "errors": None,
            "input_file_id": body["input_file_id"],
            "completion_window": body.get("completion_window"),
            "status": "in_progress",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": int(time.time()),
            "in_progress_at": int(time.time()),
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
        }
        with self._lock:
            script = self._batch_scripts.popleft() if self._batch_scripts else ScriptedBatch()
            self._batches[payload["id"]] = _Batch(payload, script)
        return dict(payload)

    def _poll_batch(self, batch_id: str) -> dict[str, Any] | None:
        """The batch as one poll sees it: in progress while its script says so, then finished."""
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                return None
            if batch.polls_left > 0:
                batch.polls_left -= 1
                return dict(batch.payload)
            finished = batch.payload["status"] != "in_progress"
        if not finished:
            self._finish(batch)
        with self._lock:
            return dict(batch.payload)

    def _finish(self, batch: _Batch) -> None:
        """Answer every request of the batch as the chat endpoint would, into its output and error files."""
        now = int(time.time())
        if batch.script.fail is not None:
            error = {"code": "invalid_request", "message": batch.script.fail, "param": None, "line": None}
            errors = {"object": "list", "data": [error]}
            with self._lock:
                batch.payload.update(status="failed", failed_at=now, errors=errors)
            return
        lines = (self._file(batch.payload["input_file_id"]) or b"").decode().splitlines()
        output: list[str] = []
        failed: list[str] = []
        for line in filter(None, lines):
            request = json.loads(line)
            body = request["body"]
            self._record(body)
            model = str(body.get("model", ""))
            answer = self._next(model)
            if answer.status == 200:
                status, reply = 200, _completion(model, body, answer)
            else:
                status, reply = answer.status, _error_payload(answer)
            result = {
                "id": self._new_id("batch_req"),
                "custom_id": request["custom_id"],
                "response": {"status_code": status, "request_id": self._new_id("req"), "body": reply},
                "error": None,
            }
            (output if status == 200 else failed).append(json.dumps(result) + "\n")
        files = {
            name: self._add_file("".join(kept).encode(), "results.jsonl", "batch_output")["id"]
            for name, kept in (("output_file_id", output), ("error_file_id", failed))
            if kept
        }
        counts = {"total": len(output) + len(failed), "completed": len(output), "failed": len(failed)}
        with self._lock:
            batch.payload.update(status="completed", completed_at=now, request_counts=counts, **files)


def _handler_for(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # chunked streams, so that a dropped one is seen as broken

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read server.requests
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length)
            if self.path.endswith("/files"):
                self._upload(data)
                return
            body = json.loads(data or b"{}")
            if self.path.endswith("/batches"):
                created = server._create_batch(body)
                if created is None:
                    self._not_found("input file", body.get("input_file_id"))
                else:
                    self._json(200, created)
                return
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

        def do_GET(self) -> None:
            parts = self.path.rstrip("/").split("/")
            if len(parts) >= 2 and parts[-2] == "batches":
                batch = server._poll_batch(parts[-1])
                if batch is None:
                    self._not_found("batch", parts[-1])
                else:
                    self._json(200, batch)
            elif len(parts) >= 3 and parts[-3] == "files" and parts[-1] == "content":
                content = server._file(parts[-2])
                if content is None:
                    self._not_found("file", parts[-2])
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)
            else:
                self._not_found("path", self.path)

        def _upload(self, data: bytes) -> None:
            """A multipart upload: the ``file`` part is kept, ``purpose`` says what for."""
            head = f"Content-Type: {self.headers.get('Content-Type')}\r\n\r\n".encode()
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + data)
            fields = {
                part.get_param("name", header="content-disposition"): part
                for part in message.iter_parts()  # type: ignore[attr-defined]
            }
            if "file" not in fields:
                error = {"message": "no file part in the upload", "type": "invalid_request_error"}
                self._json(400, {"error": error})
                return
            upload = fields["file"]
            purpose = fields["purpose"].get_content().strip() if "purpose" in fields else "batch"
            content = upload.get_payload(decode=True) or b""
            self._json(200, server._add_file(content, upload.get_filename() or "upload.jsonl", purpose))

        def _not_found(self, what: str, name: object) -> None:
            message = f"No such {what}: {name}"
            self._json(404, {"error": {"message": message, "type": "invalid_request_error", "code": None}})

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
            headers = {} if answer.retry_after is None else {"Retry-After": f"{answer.retry_after:g}"}
            self._json(answer.status, _error_payload(answer), headers)

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


def _error_payload(answer: ScriptedAnswer) -> dict[str, Any]:
    """The body of an error answer, as OpenAI words it."""
    kind, message, code = _ERRORS.get(answer.status, ("server_error", "", None))
    return {"error": {"message": answer.message or message, "type": kind, "code": code, "param": None}}


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
