"""A small, real OpenAI-compatible HTTP server that misbehaves on request, for testing clients.

It serves ``GET /v1/models``, ``POST /v1/chat/completions`` and ``POST /v1/completions`` on
127.0.0.1 (standard library only: :mod:`http.server` in a background thread) and answers
deterministically: for a prompt that ends in an arithmetic question ("What is 12 + 30?") the
answer is right unless ``seed % 4 == 3`` (then it is one too many), otherwise ``"echo SEED"``.
Choice ``i`` of a request with ``seed`` uses seed ``seed + i``. Token usage is counted as words and
punctuation marks (prompt: plus 3 per chat message and 3 per request), so it is predictable; with
``logprobs`` each token gets log-probability ``-((seed % 7) + 1) / 8``.

What goes wrong is a *fault*, written ``KIND[=ARG][*COUNT]``:

=================  ===========================================================================
``ok``             a normal answer
``429=S``, ``503``  that HTTP status with an OpenAI-style error body (any 4xx/5xx code); ``=S``
                   adds ``Retry-After: S``. 401 is a refused key, 404 an unknown model
``sleep=S``        wait S seconds, then answer normally (past a client's timeout)
``truncated``      200 with the first half of the JSON body
``missing=FIELD``  200 without ``choices`` (default), ``usage``, ``content`` (of every choice)
                   or ``message``
``html``           200 with an HTML page (``text/html``)
``text_plain``     200 with a valid JSON answer but ``content-type: text/plain``
``drop``           close the connection without answering
``ignore_n``       answer one choice whatever ``n`` asks
``reject_n``       400 when ``n > 1``
=================  ===========================================================================

A fault is chosen per completion request, first found first: the request header
``X-Fault: FAULT``; the next fault of the script (:meth:`FaultyServer.script`, a queue consumed
in arrival order); the model name ``fault/FAULT`` (``fault/500*2``: the first 2 requests for that
model fail with 500, later ones succeed; without ``*COUNT`` every request does). Server-wide:
``api_key`` (requests without ``Authorization: Bearer KEY`` get 401), ``n_mode`` (``support``,
``ignore`` or ``reject`` ``n > 1``), ``list_models`` (``/v1/models`` answers 404 when false) and
``models`` (the names listed; others get 404 ``model_not_found`` unless ``accept_any_model``;
``fault/...`` names are always served).

Every request is recorded (:attr:`FaultyServer.requests`), so a test can count attempts::

    with FaultyServer(models=["echo", "fault/500*2"]) as server:
        ...  # point the client at server.url ("http://127.0.0.1:PORT/v1")
        assert server.count("/v1/chat/completions", model="fault/500*2") == 3

From a shell: ``python -m budgetlab.testing.faulty_server --port 8000 --model echo``.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Fault", "FaultyServer", "RecordedRequest", "default_answer", "count_tokens", "main"]

_KINDS = {"ok", "sleep", "truncated", "missing", "html", "text_plain", "drop", "ignore_n", "reject_n"}
_MISSING = {"choices", "usage", "content", "message"}
_TOKEN = re.compile(r"\w+|[^\w\s]")
_QUESTION = re.compile(r"What is\s+(-?\d+)\s*([-+*])\s*(-?\d+)\s*\?")


def count_tokens(text: str) -> int:
    """The server's token count of ``text``: words and punctuation marks."""
    return len(_TOKEN.findall(text))


def default_answer(prompt: str, seed: int) -> str:
    """The answer to the last "What is A OP B?" in ``prompt`` (one too many when
    ``seed % 4 == 3``), else ``"echo SEED"``."""
    found = _QUESTION.findall(prompt)
    if not found:
        return f"echo {seed}"
    a, op, b = found[-1]
    value = {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[op]
    return str(value + 1 if seed % 4 == 3 else value)


@dataclass(frozen=True)
class Fault:
    """One way to answer: see the module docstring for the ``KIND[=ARG][*COUNT]`` syntax."""

    kind: str  # "ok", "status", "sleep", ...
    arg: str | None = None
    count: int | None = None  # model faults: only the first COUNT requests
    status: int | None = None

    @classmethod
    def parse(cls, text: str) -> Fault:
        body, _, count_text = text.strip().partition("*")
        kind, _, arg = body.partition("=")
        kind, arg = kind.strip().lower(), (arg.strip() or None)
        count = None
        if count_text:
            if not count_text.strip().isdigit():
                raise ValueError(f"fault {text!r}: the count after '*' must be a whole number, e.g. 500*2")
            count = int(count_text)
        if kind.isdigit() and 400 <= int(kind) <= 599:
            if arg is not None:
                float(arg)  # Retry-After seconds
            return cls("status", arg, count, int(kind))
        if kind not in _KINDS:
            raise ValueError(
                f"unknown fault {text!r}; use ok, an HTTP status (429=SECONDS, 500, ...), sleep=SECONDS, truncated, "
                "missing[=choices|usage|content|message], html, text_plain, drop, ignore_n or reject_n"
            )
        if kind == "sleep":
            float(arg or "x")
        if kind == "missing" and (arg or "choices") not in _MISSING:
            raise ValueError(f"fault {text!r}: missing= takes one of {', '.join(sorted(_MISSING))}")
        return cls(kind, arg, count)


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received, and how it answered (``status`` None: connection dropped)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    model: str | None
    fault: str
    status: int | None
    at: float  # time.monotonic() when it arrived
    response: Any = None  # the JSON answer sent (before any truncation), if one was


def _error(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


_STATUS_ERRORS = {
    400: ("Bad request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    402: ("Insufficient Balance", "unknown_error", "invalid_request_error"),  # DeepSeek's payment required
    403: ("You are not allowed to use this model.", "invalid_request_error", "model_not_allowed"),
    404: ("The model `{model}` does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"),
    429: ("Rate limit reached for requests. Please try again later.", "requests", "rate_limit_exceeded"),
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK stall
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        return None

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, False)

    def _send(self, status: int, payload: Any, content_type: str = "application/json", headers: dict[str, str] | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:  # the client went away (e.g. it timed out while we slept)
            self.close_connection = True

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw.decode("utf-8", "replace")

    def do_GET(self) -> None:  # noqa: N802
        self.server.owner._handle(self, "GET", None)

    def do_POST(self) -> None:  # noqa: N802
        self.server.owner._handle(self, "POST", self._read_body())


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # many clients at once: the default backlog of 5 refuses connections
    owner: FaultyServer


class FaultyServer:
    """An OpenAI-compatible server that fails on request; see the module docstring.

    Use it as a context manager (``with FaultyServer() as server:``), or :meth:`start` and
    :meth:`stop`. It listens on ``host`` (127.0.0.1) at ``port`` (0: a free port).
    """

    def __init__(
        self,
        models: Iterable[str] = ("echo",),
        *,
        api_key: str | None = None,
        n_mode: str = "support",
        list_models: bool = True,
        accept_any_model: bool = False,
        answer: Callable[[str, int], str] = default_answer,
        host: str = "127.0.0.1",
        port: int = 0,
        system_tokens: int = 0,
        hidden_tokens: int = 0,
    ) -> None:
        if n_mode not in ("support", "ignore", "reject"):
            raise ValueError(f"n_mode must be support, ignore or reject, not {n_mode!r}")
        self.models = list(models)
        self.api_key = api_key
        self.n_mode = n_mode
        self.list_models = list_models
        self.accept_any_model = accept_any_model
        self.answer = answer
        # Billed but unseen: a system prompt the server's template adds to every prompt, and
        # tokens (reasoning) billed per choice beyond max_tokens, as some hosted APIs do.
        self.system_tokens = system_tokens
        self.hidden_tokens = hidden_tokens
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._script: collections.deque[Fault] = collections.deque()
        self._per_model: collections.Counter[str] = collections.Counter()
        self._requests: list[RecordedRequest] = []
        self._connections: set[socket.socket] = set()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- life --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The OpenAI base URL, ``http://HOST:PORT/v1``."""
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> FaultyServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                                        name=f"faulty-server-{self.port}")  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # wakes sleeping handlers
        httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, conn: socket.socket, alive: bool) -> None:
        with self._lock:
            (self._connections.add if alive else self._connections.discard)(conn)

    # ---- control -----------------------------------------------------------------------------
    def script(self, *faults: str) -> None:
        """Queue faults for the next completion requests, one each in arrival order."""
        parsed = [Fault.parse(f) for f in faults]
        with self._lock:
            self._script.extend(parsed)

    @property
    def scripted(self) -> int:
        """Faults of the script not used yet."""
        with self._lock:
            return len(self._script)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def count(self, path: str | None = None, *, model: str | None = None, status: int | None = None) -> int:
        """Requests received, optionally only those to ``path``, for ``model`` or answered ``status``."""
        return sum(
            1
            for r in self.requests
            if (path is None or r.path == path) and (model is None or r.model == model) and (status is None or r.status == status)
        )

    def reset(self) -> None:
        """Forget the recorded requests, the script and the per-model counts."""
        with self._lock:
            self._requests.clear()
            self._script.clear()
            self._per_model.clear()

    # ---- answering ---------------------------------------------------------------------------
    def _record(self, handler: _Handler, method: str, body: Any, model: str | None, fault: str, status: int | None,
                at: float, response: Any = None) -> None:  # fmt: skip
        headers = {k.lower(): v for k, v in handler.headers.items()}
        record = RecordedRequest(method, handler.path, headers, body, model, fault, status, at, response)
        with self._lock:
            self._requests.append(record)

    def _choose_fault(self, handler: _Handler, model: str | None) -> Fault:
        header = handler.headers.get("X-Fault")
        with self._lock:
            if header:
                return Fault.parse(header)
            if self._script:
                return self._script.popleft()
            if model and model.startswith("fault/"):
                fault = Fault.parse(model[len("fault/"):])
                self._per_model[model] += 1
                if fault.count is not None and self._per_model[model] > fault.count:
                    return Fault("ok")
                return fault
        return Fault("ok")

    def _handle(self, handler: _Handler, method: str, body: Any) -> None:
        at = time.monotonic()
        path = handler.path.split("?", 1)[0]
        model = body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else None

        recorded = False

        def send(status: int, payload: Any, fault: str = "ok", *, sent: Any = None, **kw: Any) -> None:
            if not recorded:
                self._record(handler, method, body, model, fault, status, at, payload if sent is None else sent)
            handler._send(status, payload, **kw)

        if self.api_key is not None and handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            return send(401, _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))
        if method == "GET" and path == "/v1/models":
            if not self.list_models:
                return send(404, {"detail": "Not Found"})
            return send(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "budgetlab"} for m in self.models]})  # fmt: skip
        endpoints = {"/v1/chat/completions": "chat", "/v1/completions": "completions"}
        if method != "POST" or path not in endpoints:
            return send(404, _error(f"Invalid URL ({method} {path})", "invalid_request_error"))
        if not isinstance(body, dict) or not isinstance(model, str):
            return send(400, _error("The request body must be a JSON object with a 'model'.", "invalid_request_error"))
        if model not in self.models and not model.startswith("fault/") and not self.accept_any_model:
            return send(404, _error(f"The model `{model}` does not exist or you do not have access to it.",
                                    "invalid_request_error", "model_not_found"))  # fmt: skip
        try:
            fault = self._choose_fault(handler, model)
        except ValueError as exc:
            return send(400, _error(str(exc), "invalid_request_error"))
        label = fault.kind if fault.status is None else str(fault.status)
        if fault.arg is not None:
            label += f"={fault.arg}"
        if fault.kind == "drop":
            self._record(handler, method, body, model, label, None, at)
            handler.close_connection = True
            try:
                handler.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return None
        if fault.kind == "status":
            assert fault.status is not None
            message, kind, code = _STATUS_ERRORS.get(
                fault.status, ("The server had an error while processing your request.", "server_error", None)
            )
            headers = {"Retry-After": fault.arg} if fault.arg is not None else None
            return send(fault.status, _error(message.format(model=model), kind, code), label, headers=headers)
        if fault.kind == "sleep":  # recorded on arrival, so a client that gave up sees it counted
            self._record(handler, method, body, model, label, 200, at)
            recorded = True
            self._stopping.wait(float(fault.arg or 0))
        if fault.kind == "html":
            return send(200, b"<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>", label,
                        content_type="text/html")  # fmt: skip
        n = body.get("n", 1)
        n = n if isinstance(n, int) and n >= 1 else 1
        if n > 1 and (self.n_mode == "reject" or fault.kind == "reject_n"):
            return send(400, _error("Invalid value for 'n': this server only supports n=1.", "invalid_request_error",
                                    "invalid_value", "n"), label)  # fmt: skip
        if self.n_mode == "ignore" or fault.kind == "ignore_n":
            n = 1
        payload = self._completion(endpoints[path], body, model, n)
        if fault.kind == "missing":
            what = fault.arg or "choices"
            if what in ("choices", "usage"):
                payload.pop(what, None)
            for choice in payload.get("choices", []):
                if what == "message":
                    choice.pop("message", None)
                elif what == "content":
                    choice.get("message", {}).pop("content", None)
                    choice.pop("text", None)
        if fault.kind == "truncated":
            data = json.dumps(payload).encode()
            return send(200, data[: len(data) // 2], label, sent=payload)
        content_type = "text/plain" if fault.kind == "text_plain" else "application/json"
        return send(200, payload, label, content_type=content_type)

    def _completion(self, endpoint: str, body: dict[str, Any], model: str, n: int) -> dict[str, Any]:
        if endpoint == "chat":
            messages = body.get("messages") if isinstance(body.get("messages"), list) else []
            contents = [str(m.get("content", "")) for m in messages if isinstance(m, dict)]
            prompt_text = "\n".join(contents)
            prompt_tokens = sum(count_tokens(c) + 3 for c in contents) + 3
        else:
            raw = body.get("prompt", "")
            prompt_text = raw if isinstance(raw, str) else "\n".join(map(str, raw))
            prompt_tokens = count_tokens(prompt_text) + 1
        prompt_tokens += self.system_tokens
        seed = body.get("seed")
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or 16
        want_logprobs = bool(body.get("logprobs"))
        choices = []
        completion_tokens = 0
        for i in range(n):
            s = seed + i if isinstance(seed, int) else next(self._ids)
            text = self.answer(prompt_text, s)
            tokens = _TOKEN.findall(text)
            finish = "length" if len(tokens) > max_tokens else "stop"
            if finish == "length":
                tokens = tokens[:max_tokens]
                text = " ".join(tokens)
            completion_tokens += len(tokens) + self.hidden_tokens
            lp = -((s % 7) + 1) / 8
            choice: dict[str, Any] = {"index": i, "finish_reason": finish, "logprobs": None}
            if endpoint == "chat":
                choice["message"] = {"role": "assistant", "content": text}
                if want_logprobs:
                    choice["logprobs"] = {"content": [{"token": t, "logprob": lp, "bytes": None, "top_logprobs": []} for t in tokens]}
            else:
                choice["text"] = " " + text
                if want_logprobs:
                    choice["logprobs"] = {"tokens": tokens, "token_logprobs": [lp] * len(tokens), "top_logprobs": None,
                                          "text_offset": list(range(len(tokens)))}  # fmt: skip
            choices.append(choice)
        return {
            "id": f"{'chatcmpl' if endpoint == 'chat' else 'cmpl'}-{next(self._ids)}",
            "object": "chat.completion" if endpoint == "chat" else "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},  # fmt: skip
        }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m budgetlab.testing.faulty_server``: serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m budgetlab.testing.faulty_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: a free one; default 8000)")
    parser.add_argument("--model", action="append", help="a model name to serve (repeat; default: echo)")
    parser.add_argument("--api-key", help="require this API key")
    parser.add_argument("--n-mode", choices=("support", "ignore", "reject"), default="support")
    parser.add_argument("--no-models-list", action="store_true", help="answer 404 to GET /v1/models")
    parser.add_argument("--script", action="append", default=[], help="a fault for the next request (repeat)")
    args = parser.parse_args(argv)
    server = FaultyServer(args.model or ["echo"], api_key=args.api_key, n_mode=args.n_mode,
                          list_models=not args.no_models_list, port=args.port)  # fmt: skip
    server.script(*args.script)
    with server:
        print(f"serving {', '.join(server.models)} at {server.url} (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
