"""Several endpoints behind one backend, with least-loaded routing and fail-over.

``multi:SPEC1|SPEC2|...`` builds one inner backend per ``|``-separated spec (``|`` never occurs
in a URL, so ``multi:openai:http://a:8000/v1|openai:http://b:8000/v1`` splits cleanly; quote the
spec in a shell). A part that is a bare ``http://`` or ``https://`` URL means ``openai:URL``.

Each request goes to the endpoint with the fewest samples in flight (ties taken in turn, round
robin). If the request fails at the connection level (refused, reset, unreachable, timed out:
the endpoint, not the request, is at fault), it is sent once more to another endpoint, and the
failing endpoint is passed over for ``cooldown`` seconds while another is healthy.

Options: ``retry`` (default true), ``cooldown`` (seconds, default 5), and ``inner.KEY=VALUE``
for an option given to every inner backend (e.g. ``--backend-arg inner.api_key=...``).

The pieces here (spec splitting, inner options, the least-loaded router, the connection-error
test) are shared with the ``ray`` backend.
"""

from __future__ import annotations

import asyncio
import errno
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from budgetlab.backends._base import Backend, DrawRequest
from budgetlab.core import Completion, Problem, SamplingConfig, Spend
from budgetlab.errors import BudgetlabError, InputError

__all__ = [
    "MultiBackend",
    "LeastLoaded",
    "split_inner_options",
    "split_specs",
    "canonical_inner",
    "is_connection_error",
    "max_spend",
]

SEPARATOR = "|"
INNER_PREFIX = "inner."


def split_specs(target: str) -> list[str]:
    """``"a:x|b:y"`` -> ``["a:x", "b:y"]``; a bare URL part becomes ``openai:URL``."""
    parts = [p.strip() for p in target.split(SEPARATOR)]
    out = []
    for part in parts:
        if not part:
            raise InputError(
                f"multi backend target {target!r} has an empty part; separate inner backend specs with "
                f"'{SEPARATOR}', e.g. multi:openai:http://a:8000/v1|openai:http://b:8000/v1"
            )
        if part.startswith(("http://", "https://")):
            part = "openai:" + part
        out.append(part)
    return out


def canonical_inner(spec: str) -> str:
    """The inner spec with its file targets made absolute (a worker may run in another
    directory); nested ``multi`` and ``ray`` specs are followed."""
    from budgetlab.backends import canonical_backend

    return canonical_backend(spec)


def split_inner_options(
    backend: str, options: Mapping[str, Any], own: Sequence[str], example: str
) -> dict[str, Any]:
    """The ``inner.KEY`` options with the prefix taken off; any other key that is not one of
    ``own`` is an InputError naming what the backend takes."""
    inner: dict[str, Any] = {}
    for key, value in options.items():
        if key.startswith(INNER_PREFIX) and len(key) > len(INNER_PREFIX):
            inner[key[len(INNER_PREFIX):]] = value
        else:
            raise InputError(
                f"backend {backend} does not take {key!r}; it takes: {', '.join(own)}, and "
                f"inner.KEY=VALUE for an option of the inner backend (e.g. {example})"
            )
    return inner


class LeastLoaded:
    """Pick the slot with the fewest samples in flight; ties go round robin."""

    def __init__(self, n: int) -> None:
        self.load = [0] * n
        self.requests = [0] * n  # requests routed to each slot, ever
        self._next = 0

    def pick(self, allowed: Iterable[int]) -> int | None:
        candidates = list(allowed)
        if not candidates:
            return None
        low = min(self.load[i] for i in candidates)
        n = len(self.load)
        chosen = min((i for i in candidates if self.load[i] == low), key=lambda i: (i - self._next) % n)
        self._next = (chosen + 1) % n
        return chosen

    def acquire(self, slot: int, samples: int) -> None:
        self.load[slot] += samples
        self.requests[slot] += 1

    def release(self, slot: int, samples: int) -> None:
        self.load[slot] -= samples


_CONNECTION_ERRNOS = {
    getattr(errno, name)
    for name in ("ECONNREFUSED", "ECONNRESET", "ECONNABORTED", "EHOSTUNREACH", "ENETUNREACH", "ENETDOWN",
                 "EHOSTDOWN", "EPIPE", "ETIMEDOUT")
    if hasattr(errno, name)
}  # fmt: skip
# Connection-level exception classes of the usual HTTP clients, by name (none of them is imported).
_CONNECTION_CLASSES = {
    "ConnectError", "ConnectTimeout", "ReadError", "WriteError", "RemoteProtocolError", "NetworkError",
    "PoolTimeout", "APIConnectionError", "APITimeoutError", "ClientConnectionError", "ClientConnectorError",
    "ServerDisconnectedError", "ClientOSError", "ServerTimeoutError", "NewConnectionError",
    "ProtocolError",
}  # fmt: skip
_CONNECTION_TEXT = re.compile(
    r"connection (?:refused|reset|aborted|error|closed|lost)|closed the connection|connecterror|connecttimeout|apiconnectionerror|"
    r"cannot connect|could not connect|failed to connect|can ?not reach|could not reach|unreachable|"
    r"server disconnected|remoteprotocolerror|name or service not known|nodename nor servname|"
    r"temporary failure in name resolution|errno 111|timed out",
    re.IGNORECASE,
)


def _looks_like_connection_text(text: str | None) -> bool:
    return bool(text) and _CONNECTION_TEXT.search(text) is not None


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the endpoint could not be reached or dropped the
    connection, rather than that the request itself was bad."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (ConnectionError, TimeoutError)):
            return True
        if isinstance(current, OSError) and current.errno in _CONNECTION_ERRNOS:
            return True
        if any(cls.__name__ in _CONNECTION_CLASSES for cls in type(current).__mro__):
            return True
        if isinstance(current, BudgetlabError) and _looks_like_connection_text(str(current)):
            return True
        current = current.__cause__ or current.__context__
    return False


def _failed_to_connect(completions: Sequence[Completion]) -> bool:
    """A backend that reports failures per sample: every sample failed, for a connection reason."""
    return bool(completions) and all(
        c.error is not None and c.text is None and _looks_like_connection_text(c.error) for c in completions
    )


def max_spend(estimates: Sequence[Sequence[Spend]]) -> list[Spend]:
    """Field-wise maximum of several backends' estimates of the same samples: an upper bound,
    whichever of them serves the request."""
    out = list(estimates[0])
    for other in estimates[1:]:
        out = [
            Spend(max(a.samples, b.samples), max(a.tokens, b.tokens), max(a.dollars, b.dollars),
                  max(a.verify_seconds, b.verify_seconds))
            for a, b in zip(out, other)
        ]  # fmt: skip
    return out


class MultiBackend:
    """Least-loaded routing over several inner backends; see the module docstring."""

    name = "multi"

    def __init__(self, target: str | None, retry: bool = True, cooldown: float = 5.0, **options: Any) -> None:
        from budgetlab.backends import make_backend

        example = "multi:openai:http://a:8000/v1|openai:http://b:8000/v1"
        if not target:
            raise InputError(f"backend multi needs inner backend specs separated by '{SEPARATOR}', e.g. {example}")
        inner_options = split_inner_options("multi", options, ("retry", "cooldown"), "--backend-arg inner.seed=3")
        if isinstance(cooldown, bool) or not isinstance(cooldown, (int, float)) or cooldown < 0:
            raise InputError(f"multi backend option cooldown={cooldown!r} must be a number of seconds >= 0, e.g. cooldown=5")
        self.specs = [canonical_inner(s) for s in split_specs(target)]
        self.retry = bool(retry)
        self.cooldown = float(cooldown)
        self.backends: list[Backend] = []
        try:
            for spec in self.specs:
                self.backends.append(make_backend(spec, inner_options))
        except BaseException:
            for backend in self.backends:
                _close_soon(backend)
            raise
        self.router = LeastLoaded(len(self.backends))
        self._down_until = [0.0] * len(self.backends)
        self.failovers = 0  # requests re-sent to another endpoint after a connection failure

    # ---- what the inner backends know --------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name in ("problems", "configs", "available"):
            for backend in self.__dict__.get("backends", ()):
                if hasattr(backend, name):
                    return getattr(backend, name)
        raise AttributeError(name)

    def check(self, problems: Sequence[Problem], configs: Sequence[SamplingConfig]) -> None:
        for i, backend in enumerate(self.backends):
            try:
                backend.check(problems, configs)
            except Exception as exc:
                # An endpoint that is down now must not stop a run the others can serve.
                if len(self.backends) > 1 and is_connection_error(exc):
                    self._down_until[i] = time.monotonic() + self.cooldown
                    continue
                raise

    def estimate(self, request: DrawRequest) -> list[Spend]:
        return max_spend([b.estimate(request) for b in self.backends])

    # ---- routing ------------------------------------------------------------------------------
    def _pick(self, exclude: set[int]) -> int | None:
        now = time.monotonic()
        open_ = [i for i in range(len(self.backends)) if i not in exclude]
        healthy = [i for i in open_ if self._down_until[i] <= now]
        return self.router.pick(healthy or open_)

    async def _send(self, slot: int, request: DrawRequest) -> list[Completion]:
        n = len(request.samples)
        self.router.acquire(slot, n)
        try:
            return await self.backends[slot].draw(request)
        finally:
            self.router.release(slot, n)

    async def draw(self, request: DrawRequest) -> list[Completion]:
        slot = self._pick(set())
        assert slot is not None
        try:
            completions = await self._send(slot, request)
        except Exception as exc:
            if not (self.retry and is_connection_error(exc)):
                raise
            return await self._fail_over(slot, request, exc)
        if self.retry and _failed_to_connect(completions):
            return await self._fail_over(slot, request, None, completions)
        self._down_until[slot] = 0.0
        return completions

    async def _fail_over(
        self, slot: int, request: DrawRequest, exc: Exception | None, completions: list[Completion] | None = None
    ) -> list[Completion]:
        self._down_until[slot] = time.monotonic() + self.cooldown
        other = self._pick({slot})
        if other is None:  # a single endpoint: nothing to fail over to
            if exc is not None:
                raise exc
            return completions or []
        self.failovers += 1
        result = await self._send(other, request)
        if not _failed_to_connect(result):
            self._down_until[other] = 0.0
        return result

    async def aclose(self) -> None:
        errors = await asyncio.gather(*(b.aclose() for b in self.backends), return_exceptions=True)
        for error in errors:
            if isinstance(error, BaseException):
                raise error


def _close_soon(backend: Backend) -> None:
    """Close a backend built before a later one failed to build (outside any event loop)."""
    try:
        asyncio.run(backend.aclose())
    except Exception:
        pass
