"""A small OpenAI-compatible chat server on loopback, for testing the `openai` backend for real.

It answers /v1/chat/completions with the local model (a TransformersBackend) or, for protocol
tests, with scripted replies; it can fail the first requests with an HTTP status, or stall, and
it records every request and the most requests it had in flight at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from udfs.generation import Request


class LocalOpenAIServer:
    def __init__(self, backend=None, scripted: list[str] | None = None,
                 reply: str | Callable[[dict], str] | None = None, fail_first: int = 0, fail_status: int = 503,
                 delay_s: float = 0.0):
        self.backend = backend
        self.scripted = list(scripted or [])
        self.reply = reply  # the answer once `scripted` is used up: a text, or a function of the request's body
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.delay_s = delay_s
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.model_lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> LocalOpenAIServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def prompts(self) -> list[str]:
        """The last user text of every request received, in arrival order."""
        return [text_of(body["messages"][-1]["content"]) for body in self.requests]

    def answer(self, body: dict) -> tuple[int, dict]:
        with self.lock:
            self.requests.append(body)
            number = len(self.requests)
            scripted = self.scripted.pop(0) if self.scripted else self.reply
        if callable(scripted):
            scripted = scripted(body)
        if number <= self.fail_first:
            return self.fail_status, {"error": {"message": f"planted failure {number}"}}
        if self.delay_s:
            time.sleep(self.delay_s)
        if scripted is not None:
            text, tokens_in, tokens_out, finish = scripted, 7, len(scripted.split()), "stop"
        else:
            messages = [{"role": m["role"], "content": text_of(m["content"])} for m in body["messages"]]
            with self.model_lock:
                result = self.backend.generate([Request(messages)])[0]
            text, tokens_in, tokens_out, finish = result.text, result.tokens_in, result.tokens_out, result.finish_reason
        return 200, {
            "id": f"chatcmpl-{number}", "object": "chat.completion", "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out, "total_tokens": tokens_in + tokens_out},
        }

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                if self.path != "/v1/chat/completions":
                    self.send_error(404)
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.headers.append(dict(self.headers))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    status, answer = server.answer(body)
                finally:
                    with server.lock:
                        server.in_flight -= 1
                payload = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

            def log_message(self, *args):
                pass

        return Handler


def text_of(content) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(part["text"] for part in content if part.get("type") == "text")
