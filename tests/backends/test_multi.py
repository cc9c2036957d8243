"""The multi backend: spec splitting that survives URLs, least-loaded routing with round-robin
ties, fail-over of connection-level errors to another endpoint (and only those), inner options,
and a whole run over two replay endpoints that draws exactly what plain replay draws."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from budgetlab.backends import BACKENDS, DrawRequest, make_backend
from budgetlab.backends._multi import (
    LeastLoaded,
    MultiBackend,
    canonical_inner,
    is_connection_error,
    max_spend,
    split_specs,
)
from budgetlab.core import Budget, Completion, Problem, Sample, SampleState, SamplingConfig, Spend
from budgetlab.core.run import RunState
from budgetlab.errors import BudgetlabError, InputError
from budgetlab.runner import run
from budgetlab.stores import SQLiteStore

CONFIGS = ("cfg-a", "cfg-b")


def write_replay(path: Path, n_problems: int = 6, per_pair: int = 6) -> Path:
    lines = []
    for p in range(n_problems):
        for c in CONFIGS:
            for i in range(per_pair):
                lines.append({"problem": f"p{p}", "config": c, "answer": f"{p}-{c}-{i}", "correct": (p + i) % 3 == 0,
                              "prompt_tokens": 5 + i, "completion_tokens": 10 * (i + 1), "cost": (i + 1) / 1024})  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    return path


def answers(db: Path, name: str) -> dict[tuple[str, str, int], str | None]:
    with SQLiteStore(db) as store:
        samples = store.samples(name)
    assert all(s.state is SampleState.DONE for s in samples)
    return {(s.problem, s.config, s.index): s.answer for s in samples}


def request(n: int = 2, problem: str = "p0", config: str = "cfg-a") -> DrawRequest:
    cfg = SamplingConfig(model=config, backend="replay")
    return DrawRequest(Problem(problem), cfg, tuple(Sample("r", problem, cfg.id, i, i) for i in range(n)))


class FakeEndpoint:
    """An inner backend whose behaviour the test sets: answers with its own name, fails with a
    given exception, or reports a connection failure per sample."""

    name = "fake"
    instances: list[FakeEndpoint] = []

    def __init__(self, target: str | None, mode: str = "ok", delay: float = 0.0) -> None:
        self.label = target or "?"
        self.mode = self.label.split("@")[1] if "@" in self.label else mode
        self.delay = delay
        self.requests = 0
        self.closed = False
        FakeEndpoint.instances.append(self)

    def check(self, problems, configs) -> None:
        if self.mode == "refused":
            raise ConnectionRefusedError(111, "Connection refused")

    def estimate(self, request: DrawRequest) -> list[Spend]:
        tokens = 100 if self.mode == "big" else 10
        return [Spend(1, tokens, 0.01)] * len(request.samples)

    async def draw(self, request: DrawRequest) -> list[Completion]:
        self.requests += 1
        await asyncio.sleep(self.delay)
        if self.mode == "refused":
            raise ConnectionRefusedError(111, "Connection refused")
        if self.mode == "bad":
            raise ValueError("the request itself is wrong")
        if self.mode == "fatal":
            raise BudgetlabError("the API key was refused")
        if self.mode == "per-sample":
            return [Completion(error="ConnectError: [Errno 111] Connection refused")] * len(request.samples)
        return [Completion(text=self.label, answer=self.label)] * len(request.samples)

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
def fake(monkeypatch):
    FakeEndpoint.instances = []
    monkeypatch.setitem(BACKENDS, "fake", FakeEndpoint)
    return FakeEndpoint


# ---- specs and options --------------------------------------------------------------------------
def test_split_specs_survives_urls_and_expands_bare_urls():
    assert split_specs("openai:http://a:8000/v1|openai:https://b.example/v1?x=1&y=2") == [
        "openai:http://a:8000/v1",
        "openai:https://b.example/v1?x=1&y=2",
    ]
    assert split_specs(" http://10.0.0.1:8000/v1 | replay:x.jsonl ") == ["openai:http://10.0.0.1:8000/v1", "replay:x.jsonl"]
    with pytest.raises(InputError, match="empty part"):
        split_specs("replay:a.jsonl||replay:b.jsonl")


def test_canonical_inner_makes_nested_file_targets_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = canonical_inner("multi:replay:a.jsonl|openai:http://h:1/v1")
    assert spec == f"multi:replay:{tmp_path / 'a.jsonl'}|openai:http://h:1/v1"
    assert canonical_inner("ray:replay:a.jsonl") == f"ray:replay:{tmp_path / 'a.jsonl'}"


def test_missing_target_and_unknown_options_are_input_errors(tmp_path):
    with pytest.raises(InputError, match=r"multi needs inner backend specs separated by '\|'"):
        make_backend("multi", {})
    data = write_replay(tmp_path / "s.jsonl")
    with pytest.raises(InputError, match=r"does not take 'seed'.*inner\.KEY=VALUE"):
        make_backend(f"multi:replay:{data}|replay:{data}", {"seed": 3})
    with pytest.raises(InputError, match="cooldown"):
        make_backend(f"multi:replay:{data}", {"cooldown": -1})
    with pytest.raises(InputError, match="unknown backend 'nope'"):
        make_backend(f"multi:replay:{data}|nope:x", {})


def test_inner_options_reach_every_endpoint(tmp_path):
    data = write_replay(tmp_path / "s.jsonl")
    backend = make_backend(f"multi:replay:{data}|replay:{data}", {"inner.seed": 3})
    assert [b.seed for b in backend.backends] == [3, 3]
    seeded = make_backend(f"replay:{data}", {"seed": 3})
    req = request(6)
    for _ in range(4):  # whichever endpoint serves it, the draw is the seeded replay's
        assert asyncio.run(backend.draw(req)) == asyncio.run(seeded.draw(req))


# ---- routing --------------------------------------------------------------------------------------
def test_least_loaded_picks_fewest_in_flight_and_breaks_ties_round_robin():
    router = LeastLoaded(3)
    assert [router.pick(range(3)) for _ in range(4)] == [0, 1, 2, 0]
    router.acquire(0, 5)
    router.acquire(1, 2)
    assert router.pick(range(3)) == 2
    router.acquire(2, 2)
    assert router.pick(range(3)) == 1  # 1 and 2 tie at 2; 2 was picked last, so 1 comes next
    assert router.pick(range(3)) == 2
    assert router.pick([0]) == 0
    assert router.pick([]) is None
    router.release(0, 5)
    assert router.pick(range(3)) == 0


def test_a_slow_endpoint_gets_fewer_requests(fake):
    backend = make_backend("multi:fake:slow|fake:fast", {})
    backend.backends[0].delay = 0.05
    backend.backends[1].delay = 0.0

    async def go():
        async def one():
            for _ in range(10):
                await backend.draw(request(1))

        await asyncio.gather(*(one() for _ in range(4)))

    asyncio.run(go())
    slow, fast = (b.requests for b in backend.backends)
    assert slow + fast == 40 and fast > 2 * slow > 0
    assert backend.router.load == [0, 0]


def test_estimate_is_an_upper_bound_over_endpoints(fake):
    backend = make_backend("multi:fake:a|fake:b@big", {})
    assert backend.estimate(request(2)) == [Spend(1, 100, 0.01)] * 2
    assert max_spend([[Spend(1, 5, 0.5)], [Spend(1, 7, 0.1)]]) == [Spend(1, 7, 0.5)]


# ---- fail-over ------------------------------------------------------------------------------------
def test_connection_refused_is_retried_once_on_another_endpoint(fake):
    backend = make_backend("multi:fake:down@refused|fake:up", {"cooldown": 60})
    down, up = backend.backends
    got = [asyncio.run(backend.draw(request(2))) for _ in range(6)]
    assert all(c.text == "up" for cs in got for c in cs)
    # The first request that met the down endpoint failed over; after that the endpoint cools down.
    assert down.requests == 1 and backend.failovers == 1 and up.requests == 6


def test_per_sample_connection_failures_fail_over_too(fake):
    backend = make_backend("multi:fake:a@per-sample|fake:b", {})
    out = [c for _ in range(3) for c in asyncio.run(backend.draw(request(2)))]
    assert [c.text for c in out] == ["b"] * 6 and backend.failovers == 1


def test_without_retry_or_a_second_endpoint_the_error_stands(fake):
    backend = make_backend("multi:fake:down@refused|fake:up", {"retry": False})
    with pytest.raises(ConnectionRefusedError):
        asyncio.run(backend.draw(request(1)))
    single = make_backend("multi:fake:down@refused", {})
    with pytest.raises(ConnectionRefusedError):
        asyncio.run(single.draw(request(1)))


def test_other_errors_are_not_retried(fake):
    backend = make_backend("multi:fake:a@bad|fake:b@bad", {})
    with pytest.raises(ValueError):
        asyncio.run(backend.draw(request(1)))
    assert sum(b.requests for b in backend.backends) == 1
    fatal = make_backend("multi:fake:a@fatal|fake:b", {})
    with pytest.raises(BudgetlabError, match="API key"):
        asyncio.run(fatal.draw(request(1)))
    assert fatal.failovers == 0


def test_when_both_endpoints_are_down_the_second_error_is_raised(fake):
    backend = make_backend("multi:fake:a@refused|fake:b@refused", {})
    with pytest.raises(ConnectionRefusedError):
        asyncio.run(backend.draw(request(1)))
    assert [b.requests for b in backend.backends] == [1, 1]


def test_check_passes_over_an_endpoint_that_is_down(fake):
    backend = make_backend("multi:fake:down@refused|fake:up", {})
    backend.check([Problem("p0")], [SamplingConfig("cfg-a")])
    assert asyncio.run(backend.draw(request(1)))[0].text == "up"  # the down endpoint is cooling down
    with pytest.raises(ConnectionRefusedError):
        make_backend("multi:fake:down@refused", {}).check([Problem("p0")], [SamplingConfig("cfg-a")])


def test_aclose_closes_every_endpoint(fake):
    backend = make_backend("multi:fake:a|fake:b", {})
    asyncio.run(backend.aclose())
    assert all(b.closed for b in backend.backends)


@pytest.mark.parametrize(
    "exc, expected",
    [
        (ConnectionRefusedError(111, "Connection refused"), True),
        (TimeoutError("timed out"), True),
        (OSError(113, "No route to host"), True),
        (BudgetlabError("cannot reach the server at http://h:1/v1 (ConnectError: ...)"), True),
        (type("ConnectError", (Exception,), {})("boom"), True),
        (type("APIConnectionError", (Exception,), {})("boom"), True),
        (ValueError("bad request"), False),
        (BudgetlabError("http://h/v1 refused the API key (401)"), False),
        (OSError(2, "No such file"), False),
    ],
)
def test_is_connection_error(exc, expected):
    assert is_connection_error(exc) is expected


def test_connection_error_found_through_the_cause():
    try:
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except ConnectionResetError as inner:
            raise RuntimeError("request failed") from inner
    except RuntimeError as outer:
        assert is_connection_error(outer)


# ---- a whole run ----------------------------------------------------------------------------------
def test_run_over_two_replay_endpoints_draws_what_replay_draws(tmp_path, monkeypatch):
    data = write_replay(tmp_path / "s.jsonl")
    made: list[MultiBackend] = []

    def factory(target, **options):
        backend = MultiBackend(target, **options)
        made.append(backend)
        return backend

    monkeypatch.setitem(BACKENDS, "multi", factory)
    common = dict(policy="fixed", policy_args={"k": 4}, concurrency=8)
    plain = run("r", f"replay:{data}", store=str(tmp_path / "plain.db"), **common)
    multi = run("r", f"multi:replay:{data}|replay:{data}", store=str(tmp_path / "multi.db"), **common)
    assert plain.state is multi.state is RunState.DONE and multi.drawn == plain.drawn == 6 * 2 * 4
    assert answers(tmp_path / "multi.db", "r") == answers(tmp_path / "plain.db", "r")
    assert all(n > 0 for n in made[0].router.requests), made[0].router.requests
    # Resume: the stored spec rebuilds the backend, and there is nothing left to draw.
    again = run("r", store=str(tmp_path / "multi.db"))
    assert again.state is RunState.DONE and again.drawn == 0


def test_run_resumes_after_a_budget_stop(tmp_path):
    data = write_replay(tmp_path / "s.jsonl")
    db = str(tmp_path / "multi.db")
    spec = f"multi:replay:{data}|replay:{data}"
    first = run("r", spec, store=db, policy="fixed", policy_args={"k": 4}, budget=Budget(samples=20), concurrency=4)
    assert first.state is RunState.STOPPED and first.drawn == 20
    second = run("r", store=db, budget=Budget(samples=1000))
    assert second.state is RunState.DONE and second.drawn == 6 * 2 * 4 - 20
    plain = run("p", f"replay:{data}", store=str(tmp_path / "plain.db"), policy="fixed", policy_args={"k": 4})
    assert plain.drawn == 48
    assert answers(Path(db), "r") == answers(tmp_path / "plain.db", "p")


# ---- two live OpenAI-compatible endpoints, one of them down -------------------------------------
def _faulty_server():
    try:
        from budgetlab.testing.faulty_server import FaultyServer
    except ImportError:
        return None
    return FaultyServer if "openai" in BACKENDS else None


@pytest.mark.network
@pytest.mark.skipif(_faulty_server() is None, reason="needs budgetlab.testing.faulty_server and the openai backend")
def test_two_openai_endpoints_one_down(tmp_path, monkeypatch):
    FaultyServer = _faulty_server()
    pytest.importorskip("httpx", reason="the openai backend needs httpx")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    problems = [Problem(f"q{i}", prompt=f"What is {i} + {i}?", reference=str(2 * i)) for i in range(4)]
    configs = [SamplingConfig("echo", "openai", {"max_tokens": 16})]
    # One sample per request (use_n=false): each answer depends only on its own seed.
    # cooldown=0: the down endpoint keeps being chosen, so requests keep failing over.
    inner = {"cooldown": 0, "inner.use_n": False, "inner.max_attempts": 1, "inner.connect_timeout": 2.0}
    made: list[MultiBackend] = []

    def factory(target, **options):
        made.append(MultiBackend(target, **options))
        return made[-1]

    monkeypatch.setitem(BACKENDS, "multi", factory)
    common = dict(problems=problems, configs=configs, policy="fixed", policy_args={"k": 4}, verifier="exact", concurrency=4)
    with FaultyServer(models=["echo"]) as gone:
        down = gone.url  # nothing listens there once it is stopped
    with FaultyServer(models=["echo"]) as up, FaultyServer(models=["echo"]) as alone:
        outcome = run("r", f"multi:{down}|openai:{up.url}", store=str(tmp_path / "m.db"), backend_options=inner, **common)
        plain = run("r", f"openai:{alone.url}", store=str(tmp_path / "p.db"),
                    backend_options={"use_n": False}, **common)  # fmt: skip
        served = up.count("/v1/chat/completions")
    assert outcome.state is plain.state is RunState.DONE and outcome.drawn == plain.drawn == 16
    assert served == 16  # every sample was served by the endpoint that is up
    assert made[0].failovers >= 1 and made[0].router.requests[0] == made[0].failovers
    assert answers(tmp_path / "m.db", "r") == answers(tmp_path / "p.db", "r")
