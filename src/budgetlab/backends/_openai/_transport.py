"""HTTP with bounded retries: a concurrency limit, a per-request timeout, and exponential backoff
with jitter on 408/409/425/429/5xx, timeouts and connection errors, honouring Retry-After.

It counts the attempts that timed out after the whole request was sent: a server that got the
request may have generated (and billed) it although no answer came back. What that costs is the
backend's to decide (``bill_timeouts``)."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from budgetlab.backends._openai._wire import RequestFailed, error_code, error_text, one_line
from budgetlab.errors import BudgetlabError

__all__ = ["Reply", "Transport", "parse_retry_after"]

RETRY_STATUS = frozenset({408, 409, 425, 429})


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(float(raw_ms) / 1000, 0.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


class _Sent:
    """Whether an attempt's request went out whole, from httpcore's trace of it: a server that
    got the whole body may answer it, even if the answer never comes back."""

    def __init__(self) -> None:
        self.body = False

    async def trace(self, event: str, info: Mapping[str, Any]) -> None:
        if event.endswith(("send_request_body.complete", "receive_response_headers.started")):
            self.body = True


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    content: bytes
    latency: float  # from the first attempt to this answer
    attempts: int
    timed_out: int = 0  # earlier attempts that timed out after the request was sent

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


class Transport:
    """Posts JSON to ``base_url + path`` with at most ``max_attempts`` attempts.

    Returns the first answer that is not worth retrying (any 2xx or 4xx but 408/409/425/429);
    when every attempt failed it raises :class:`RequestFailed` (a timeout, 429 or 5xx: this
    request's samples fail, the run goes on) or, when the server could not be reached at all,
    :class:`BudgetlabError` (every further request would fail too), as it does at once for a 429
    that says the account's quota is exhausted. Both the reply and :class:`RequestFailed` say how
    many attempts timed out after the request was sent (``timed_out``); a connect timeout, or one
    while the body was still being written, reached no server and is not counted.
    """

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout: float,
        connect_timeout: float,
        concurrency: int,
        max_attempts: int,
        backoff: float,
        max_backoff: float,
        max_retry_wait: float,
    ) -> None:
        self.base_url = base_url
        self.headers = dict(headers)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_wait = max_retry_wait
        self._client: Any = None
        self._semaphore: asyncio.Semaphore | None = None
        self._rng = random.Random()

    def _ensure(self) -> tuple[Any, asyncio.Semaphore]:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(
                headers=self.headers,
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, self.connect_timeout)),
                limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
            )
            self._semaphore = asyncio.Semaphore(self.concurrency)
        assert self._semaphore is not None
        return self._client, self._semaphore

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): the server's
        Retry-After plus up to 10% jitter, else exponential backoff with "equal jitter"."""
        if retry_after is not None and retry_after > 0:  # "Retry-After: 0" (or a date past) is no wait: back off
            return retry_after + self._rng.uniform(0, min(0.1 * retry_after, 1.0))
        cap = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return self._rng.uniform(cap / 2, cap)

    async def post(self, path: str, body: Mapping[str, Any]) -> Reply:
        import httpx

        client, semaphore = self._ensure()
        url = self.base_url + path
        started = time.perf_counter()
        last: str = ""
        kind = ""
        status = 0
        timed_out = 0  # attempts that timed out after the request was sent
        for attempt in range(1, self.max_attempts + 1):
            retry_after: float | None = None
            sent = _Sent()
            async with semaphore:
                try:
                    async with asyncio.timeout(self.timeout):  # the whole request, however it trickles
                        response = await client.post(url, json=body, extensions={"trace": sent.trace})
                except httpx.TimeoutException as exc:
                    kind = "connect" if isinstance(exc, httpx.ConnectTimeout) else "timeout"
                    last = f"{type(exc).__name__}: {one_line(exc) or 'timed out'}"
                    if sent.body or isinstance(exc, httpx.ReadTimeout):
                        timed_out += 1
                except TimeoutError:
                    kind, last = "timeout", "TimeoutError: timed out"
                    if sent.body:
                        timed_out += 1
                except httpx.ConnectError as exc:
                    kind, last = "connect", f"ConnectError: {one_line(exc)}"
                except httpx.TransportError as exc:
                    kind, last = "dropped", f"{type(exc).__name__}: {one_line(exc) or 'connection lost'}"
                else:
                    status = response.status_code
                    if status not in RETRY_STATUS and status < 500:
                        return Reply(status, response.headers, response.content, time.perf_counter() - started, attempt,
                                     timed_out)  # fmt: skip
                    kind = "status"
                    reason = f" {response.reason_phrase}" if response.reason_phrase else ""  # none for 524 & co
                    last = f"{status}{reason}: {error_text(response.content)}"
                    if status == 429 and "insufficient_quota" in error_code(response.content):
                        # No credit left (OpenAI's 429 insufficient_quota): no wait helps, and
                        # retrying every request of the run would only grind through it.
                        raise BudgetlabError(
                            f"{self.base_url} says the account has no quota left ({last}); add credit or raise "
                            "the spending limit in the provider's billing settings, then run the same command again"
                        )
                    retry_after = parse_retry_after(response.headers)
                    if retry_after is not None and retry_after > self.max_retry_wait:
                        raise RequestFailed(
                            f"{url} answered {last} and asks to wait {retry_after:g} s, more than "
                            f"max_retry_wait={self.max_retry_wait:g} s; run again later or raise the backend option max_retry_wait",
                            status=status, latency=time.perf_counter() - started, timed_out=timed_out,
                        )  # fmt: skip
            if attempt < self.max_attempts:
                await asyncio.sleep(self.delay(attempt, retry_after))
        elapsed = time.perf_counter() - started
        tries = f"{self.max_attempts} attempt{'s' if self.max_attempts != 1 else ''}"
        if kind == "connect":
            raise BudgetlabError(
                f"cannot reach the server at {self.base_url} ({last}) after {tries}; start the server or fix the "
                "URL in --backend openai:URL (e.g. openai:http://127.0.0.1:8000/v1)"
            )
        if kind == "timeout":
            raise RequestFailed(
                f"no answer from {url} within the timeout of {self.timeout:g} s on {tries}; raise the backend "
                "option timeout (--backend-arg timeout=300) or lower max_tokens",
                latency=elapsed, timed_out=timed_out,
            )
        if kind == "dropped":
            raise RequestFailed(f"{url} closed the connection without a complete answer on {tries} ({last})",
                                latency=elapsed, timed_out=timed_out)  # fmt: skip
        if status == 429:
            raise RequestFailed(
                f"rate limited by {url} on {tries} ({last}); lower --concurrency or the backend option "
                "concurrency, or raise max_attempts",
                status=status, latency=elapsed, timed_out=timed_out,
            )  # fmt: skip
        raise RequestFailed(f"{url} failed on {tries}: {last}", status=status, latency=elapsed, timed_out=timed_out)

    async def aclose(self) -> None:
        client, self._client, self._semaphore = self._client, None, None
        if client is not None:
            await client.aclose()
