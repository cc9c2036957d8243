"""The ray backend on a local Ray instance (started once for the module): a run through two
actors draws exactly what plain replay draws, both actors serve requests, the run resumes;
inner options, errors on the workers, an actor that dies, and the missing-package error.

Marked ``ray``; skipped when ray is not installed (``pip install 'budgetlab[ray]'``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from budgetlab.backends import BACKENDS, DrawRequest, make_backend
from budgetlab.core import Budget, Problem, Sample, SampleState, SamplingConfig
from budgetlab.core.run import RunState
from budgetlab.errors import BudgetlabError, InputError
from budgetlab.runner import run
from budgetlab.stores import SQLiteStore

CONFIGS = ("cfg-a", "cfg-b")
N_PROBLEMS = 8
K = 4


def write_replay(path: Path, per_pair: int = 6) -> Path:
    lines = []
    for p in range(N_PROBLEMS):
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


def request(n: int, problem: str = "p0", config: str = "cfg-a") -> DrawRequest:
    cfg = SamplingConfig(model=config, backend="replay")
    return DrawRequest(Problem(problem), cfg, tuple(Sample("r", problem, cfg.id, i, i) for i in range(n)))


def test_missing_ray_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # "import ray" now raises ImportError
    data = write_replay(tmp_path / "s.jsonl")
    with pytest.raises(BudgetlabError) as info:
        make_backend(f"ray:replay:{data}", {"workers": 2})
    assert "the ray backend needs the package 'ray'" in str(info.value)
    assert "pip install 'budgetlab[ray]'" in str(info.value)


# Everything below needs ray itself.
HAVE_RAY = importlib.util.find_spec("ray") is not None


def pytestmark_ray(test):
    skip = pytest.mark.skipif(not HAVE_RAY, reason="ray is not installed; pip install 'budgetlab[ray]'")
    return pytest.mark.ray(skip(test))


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray instance for the module (starting Ray takes seconds)."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture
def capture(monkeypatch):
    """The ray backends that make_backend builds, so a test can look at them after the run."""
    from budgetlab.backends._ray import RayBackend

    made: list[RayBackend] = []

    def factory(target, **options):
        backend = RayBackend(target, **options)
        made.append(backend)
        return backend

    monkeypatch.setitem(BACKENDS, "ray", factory)
    return made


@pytestmark_ray
def test_option_errors_need_no_cluster(tmp_path):
    data = write_replay(tmp_path / "s.jsonl")
    with pytest.raises(InputError, match="needs an inner backend spec"):
        make_backend("ray", {})
    with pytest.raises(InputError, match=r"does not take 'seed'.*inner\.KEY=VALUE.*inner\.seed=3"):
        make_backend(f"ray:replay:{data}", {"seed": 3})
    with pytest.raises(InputError, match="workers=0 must be an integer >= 1"):
        make_backend(f"ray:replay:{data}", {"workers": 0})
    with pytest.raises(InputError, match="nests ray in ray"):
        make_backend(f"ray:ray:replay:{data}", {})
    with pytest.raises(InputError, match="does not exist"):
        make_backend(f"ray:replay:{tmp_path / 'missing.jsonl'}", {})  # checked by the local inner backend
    with pytest.raises(InputError, match="does not take 'bogus'"):
        make_backend(f"ray:replay:{data}", {"inner.bogus": 1})
    with pytest.raises(InputError, match="unknown backend 'nope'"):
        make_backend("ray:nope:x", {"local": False})


@pytestmark_ray
def test_backend_starts_and_stops_its_own_ray(tmp_path, monkeypatch):
    """Without a Ray in the process, the backend starts one (address=local wins over
    RAY_ADDRESS) and shuts it down on aclose. Runs first, before the module's Ray starts."""
    import ray

    if ray.is_initialized():
        pytest.skip("Ray is already running in this process")
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:9")  # nothing listens there
    data = write_replay(tmp_path / "s.jsonl")
    backend = make_backend(f"ray:replay:{data}", {"address": "local", "workers": 1, "num_cpus": 1})
    assert not ray.is_initialized()  # Ray starts at the first draw, not when the backend is built

    async def go():
        try:
            return await backend.draw(request(2)), ray.is_initialized()
        finally:
            await backend.aclose()

    completions, was_running = asyncio.run(go())
    assert was_running and not ray.is_initialized()
    assert completions == asyncio.run(make_backend(f"replay:{data}").draw(request(2)))


@pytestmark_ray
def test_a_cluster_that_cannot_be_reached_stops_the_run(tmp_path, monkeypatch):
    import ray

    def refuse(*args, **kwargs):
        raise ConnectionError("Could not find any running Ray instance")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
    data = write_replay(tmp_path / "s.jsonl")
    backend = make_backend(f"ray:replay:{data}", {"address": "10.1.2.3:6379"})
    with pytest.raises(BudgetlabError, match=r"cannot start or join Ray at address '10\.1\.2\.3:6379' \(ConnectionError"):
        asyncio.run(backend.draw(request(1)))


@pytestmark_ray
def test_run_through_two_actors_matches_replay_and_resumes(tmp_path, ray_cluster, capture):
    data = write_replay(tmp_path / "s.jsonl")
    common = dict(policy="fixed", policy_args={"k": K}, concurrency=8)
    plain = run("r", f"replay:{data}", store=str(tmp_path / "plain.db"), **common)
    db = str(tmp_path / "ray.db")
    total = N_PROBLEMS * len(CONFIGS) * K
    first = run("r", f"ray:replay:{data}", store=db, backend_options={"workers": 2}, budget=Budget(samples=40), **common)
    assert first.state is RunState.STOPPED and first.drawn == 40
    backend = capture[0]
    assert len(backend.actor_info) == 2 and backend.actor_info[0]["pid"] != backend.actor_info[1]["pid"]
    assert all(n > 0 for n in backend.served), backend.served  # both actors received requests
    assert ray_cluster.is_initialized()  # the test started Ray, so the backend left it running

    second = run("r", store=db, budget=Budget(samples=10_000))  # resume from the stored spec
    assert second.state is RunState.DONE and second.drawn == total - 40
    assert plain.state is RunState.DONE and plain.drawn == total
    assert answers(Path(db), "r") == answers(tmp_path / "plain.db", "r")
    assert sum(capture[1].served) > 0

    again = run("r", store=db)
    assert again.state is RunState.DONE and again.drawn == 0
    assert capture[2].actor_info == []  # nothing to draw: no actor was started


@pytestmark_ray
def test_inner_options_and_listing(tmp_path, ray_cluster):
    data = write_replay(tmp_path / "s.jsonl")
    backend = make_backend(f"ray:replay:{data}", {"workers": 2, "inner.seed": 3})
    seeded = make_backend(f"replay:{data}", {"seed": 3})
    assert backend.configs() == seeded.configs() and backend.problems() == seeded.problems()
    req = request(6, "p3", "cfg-b")
    assert backend.estimate(req) == seeded.estimate(req)

    async def go():
        try:
            results = await asyncio.gather(*(backend.draw(req) for _ in range(6)))
        finally:
            await backend.aclose()
        return results

    expected = asyncio.run(seeded.draw(req))
    assert all(r == expected for r in asyncio.run(go()))
    assert sorted(backend.served) == [3, 3]  # concurrent requests split over the two actors


@pytestmark_ray
def test_delegated_check_and_worker_errors(tmp_path, ray_cluster):
    data = write_replay(tmp_path / "s.jsonl")
    remote = make_backend(f"ray:replay:{data}", {"workers": 1, "local": False})
    try:
        with pytest.raises(InputError, match="not in replay file"):
            remote.check([Problem("p0")], [SamplingConfig("no-such-config")])
        remote.check([Problem("p0")], [SamplingConfig("cfg-a")])
        assert remote.estimate(request(2))[1].tokens == 6 + 20
    finally:
        asyncio.run(remote.aclose())
    broken = make_backend(f"ray:replay:{tmp_path / 'missing.jsonl'}", {"workers": 1, "local": False})
    with pytest.raises(InputError, match="missing.jsonl does not exist"):
        asyncio.run(broken.draw(request(1)))


@pytestmark_ray
def test_a_dead_actor_is_routed_around(tmp_path, ray_cluster):
    data = write_replay(tmp_path / "s.jsonl")
    backend = make_backend(f"ray:replay:{data}", {"workers": 2})
    expected = asyncio.run(make_backend(f"replay:{data}").draw(request(3)))

    async def go():
        try:
            first = await backend.draw(request(3))
            dead = backend._actors[0]
            ray_cluster.kill(dead)
            for _ in range(200):  # the kill lands asynchronously: wait until the actor is gone
                try:
                    await dead.ready.remote()
                except ray_cluster.exceptions.RayActorError:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the killed actor still answers")
            rest = [await backend.draw(request(3)) for _ in range(4)]
            alive.update(backend._alive)
        finally:
            await backend.aclose()
        return [first, *rest]

    alive: set[int] = set()
    assert all(r == expected for r in asyncio.run(go()))
    assert backend.served[1] >= 4 and alive == {1}
