"""Spread generation over the workers of a Ray cluster.

``ray:INNER`` wraps another backend spec (``ray:replay:samples.jsonl``, ``ray:embedded``,
``ray:openai:http://host:8000/v1``, ...). The driver starts ``workers`` Ray actors; each builds
the inner backend once (with :func:`budgetlab.backends.make_backend`) and serves ``draw``
requests on its own event loop (an async actor, so one actor overlaps many requests). Every
request goes to the actor with the fewest samples in flight (ties round robin), and the driver
awaits the result with asyncio. A request whose actor died is sent once to another actor.

``check`` and ``estimate`` (and the problem and configuration lists of a replay file) are
answered by a local instance of the inner backend in the driver when that is cheap, and by an
actor otherwise (``local=false``, the default for backends that load a model: ``embedded``,
``transformers``, ``llama``, ``vllm``).

Options (``--backend-arg KEY=VALUE``):

* ``workers``: number of actors (default: one per GPU group when ``num_gpus`` is set, else one
  per alive node and at least 2);
* ``address``: the cluster to join (``auto``, ``HOST:PORT``, ``ray://HOST:10001`` or ``local``;
  default ``RAY_ADDRESS`` if set, else a Ray instance started on this machine);
* ``num_cpus``, ``num_gpus``: resources each actor reserves (default: Ray's, one CPU to
  schedule and none while running); ``resources`` and ``runtime_env`` (Python only, mappings)
  go to the actor options as they are;
* ``local``: true or false to force where ``check`` and ``estimate`` run;
* ``start_timeout``: seconds to wait for every actor to be up (default 300);
* ``inner.KEY=VALUE``: option ``KEY`` of the inner backend (e.g. ``inner.seed=3``).

Ray is started lazily (at the first draw, or at ``check``/``estimate`` when those are
delegated), and shut down by ``aclose`` only if this backend started it; a process that called
``ray.init`` itself keeps its Ray.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from typing import Any

from budgetlab.backends._base import Backend, DrawRequest
from budgetlab.backends._multi import LeastLoaded, canonical_inner, split_inner_options
from budgetlab.core import Completion, Problem, SamplingConfig, Spend
from budgetlab.errors import BudgetlabError, InputError, pip_dependency_error

__all__ = ["RayBackend", "RayWorkerError"]

# Inner backends that load a model when built: the driver does not build its own copy.
HEAVY_BACKENDS = frozenset({"embedded", "transformers", "llama", "llamacpp", "llama_cpp", "vllm"})
_OWN_OPTIONS = ("workers", "address", "num_cpus", "num_gpus", "resources", "runtime_env", "local", "start_timeout")


class RayWorkerError(Exception):
    """An exception raised inside a Ray actor, carried back by name and message."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise pip_dependency_error("the ray backend", "ray", extra="ray") from None
    return ray


def _describe(exc: BaseException) -> tuple[str, str, str | None]:
    """(class name, message, budgetlab class name or None): an exception as plain data, so that
    the driver never has to unpickle an exception class it may not have."""
    kind = None
    if isinstance(exc, BudgetlabError):
        kind = "InputError" if isinstance(exc, InputError) else "BudgetlabError"
    return type(exc).__name__, str(exc), kind


def _raise_described(error: tuple[str, str, str | None], where: str) -> None:
    name, message, kind = error
    if kind == "InputError":
        raise InputError(message)
    if kind is not None:
        raise BudgetlabError(message)
    raise RayWorkerError(f"{name}: {message} ({where})")


class _Worker:
    """The actor: one inner backend, built once. Every method returns plain data; errors come
    back as ``("error", description)`` rather than as a Ray task error."""

    def __init__(self, spec: str, options: Mapping[str, Any]) -> None:
        self._backend: Backend | None = None
        self._error: tuple[str, str, str | None] | None = None
        try:
            from budgetlab.backends import make_backend

            self._backend = make_backend(spec, options)
        except Exception as exc:
            self._error = _describe(exc)

    async def ready(self) -> dict[str, Any]:
        node = None
        try:
            import ray

            node = ray.get_runtime_context().get_node_id()
        except Exception:
            pass
        return {"error": self._error, "pid": os.getpid(), "node": node}

    async def call(self, method: str, *args: Any) -> tuple[str, Any]:
        if self._error is not None:
            return "error", self._error
        try:
            result = getattr(self._backend, method)(*args)
            if asyncio.iscoroutine(result):
                result = await result
        except Exception as exc:
            return "error", _describe(exc)
        return "ok", result

    async def close(self) -> None:
        if self._backend is not None:
            await self._backend.aclose()


class RayBackend:
    """Least-loaded routing over Ray actors that each hold an inner backend; see the module
    docstring."""

    name = "ray"

    def __init__(
        self,
        target: str | None,
        workers: int | None = None,
        address: str | None = None,
        num_cpus: float | None = None,
        num_gpus: float | None = None,
        resources: Mapping[str, float] | None = None,
        runtime_env: Mapping[str, Any] | None = None,
        local: bool | None = None,
        start_timeout: float = 300.0,
        **options: Any,
    ) -> None:
        self._ray = _import_ray()
        if not target:
            raise InputError(
                "backend ray needs an inner backend spec after 'ray:', e.g. ray:replay:samples.jsonl, "
                "ray:embedded or ray:openai:http://host:8000/v1"
            )
        inner_name = target.partition(":")[0]
        if inner_name == "ray":
            raise InputError(f"backend {('ray:' + target)!r} nests ray in ray; give one ray: prefix")
        self.inner_options = split_inner_options("ray", options, _OWN_OPTIONS, "--backend-arg inner.seed=3")
        for option, value, minimum in (("workers", workers, 1), ("num_cpus", num_cpus, 0), ("num_gpus", num_gpus, 0),
                                       ("start_timeout", start_timeout, 0)):  # fmt: skip
            if value is None:
                continue
            integral = option == "workers"
            if isinstance(value, bool) or not isinstance(value, int if integral else (int, float)) or value < minimum:
                kind = "an integer" if integral else "a number"
                raise InputError(f"ray backend option {option}={value!r} must be {kind} >= {minimum}, e.g. {option}=2")
        if local is not None and not isinstance(local, bool):
            raise InputError(f"ray backend option local={local!r} must be true or false")
        if address is not None and not isinstance(address, str):
            raise InputError(f"ray backend option address={address!r} must be a string, e.g. address=auto or HOST:6379")
        self.inner_spec = canonical_inner(target)
        self.workers = workers
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.resources = dict(resources) if resources else None
        self.runtime_env = dict(runtime_env) if runtime_env else None
        self.start_timeout = float(start_timeout)
        use_local = local if local is not None else inner_name not in HEAVY_BACKENDS
        from budgetlab.backends import BACKENDS, make_backend
        from budgetlab.core.spec import check_arguments

        self._local: Backend | None = None
        if use_local:
            self._local = make_backend(self.inner_spec, self.inner_options)
        elif inner_name not in BACKENDS:
            make_backend(self.inner_spec, self.inner_options)  # raises the unknown-backend error
        else:
            check_arguments(BACKENDS[inner_name], self.inner_options, f"backend {inner_name}", self.inner_spec)
        self._actors: list[Any] = []
        self._alive: set[int] = set()
        self._router: LeastLoaded | None = None
        self._started_ray = False
        self.actor_info: list[dict[str, Any]] = []  # pid and node of each actor, once started
        self.served: list[int] = []  # requests each actor answered, counted by the driver

    # ---- what the inner backend knows ---------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name in ("problems", "configs", "available"):
            local = self.__dict__.get("_local")
            if local is not None and hasattr(local, name):
                return getattr(local, name)
        raise AttributeError(name)

    def check(self, problems: Sequence[Problem], configs: Sequence[SamplingConfig]) -> None:
        if self._local is not None:
            self._local.check(problems, configs)
        else:
            self._call_sync("check", list(problems), list(configs))

    def estimate(self, request: DrawRequest) -> list[Spend]:
        if self._local is not None:
            return self._local.estimate(request)
        return self._call_sync("estimate", request)

    # ---- the cluster --------------------------------------------------------------------------
    def _start(self) -> None:
        if self._actors:
            return
        ray = self._ray
        if not ray.is_initialized():
            target = self.address or os.environ.get("RAY_ADDRESS") or ""
            # Ray Client (ray://) takes fewer ray.init arguments; a local start needs no dashboard.
            quiet = {} if target.startswith("ray://") else {"include_dashboard": False, "logging_level": "warning"}
            try:
                ray.init(address=self.address, **quiet)
            except Exception as exc:
                where = f"address {target!r}" if target else "this machine"
                raise BudgetlabError(
                    f"cannot start or join Ray at {where} ({type(exc).__name__}: {' '.join(str(exc).split())[:300]}); "
                    "give the cluster with --backend-arg address=HOST:6379 (or ray://HOST:10001) or RAY_ADDRESS, "
                    "or address=local to start Ray here"
                ) from None
            self._started_ray = True
        n = self.workers or self._default_workers()
        actor_options: dict[str, Any] = {"max_restarts": 0, "scheduling_strategy": "SPREAD"}
        for key in ("num_cpus", "num_gpus", "resources", "runtime_env"):
            if getattr(self, key) is not None:
                actor_options[key] = getattr(self, key)
        cls = ray.remote(_Worker)
        actors = [cls.options(**actor_options).remote(self.inner_spec, self.inner_options) for _ in range(n)]
        refs = [a.ready.remote() for a in actors]
        ready, pending = ray.wait(refs, num_returns=len(refs), timeout=self.start_timeout)
        try:
            if pending:
                raise BudgetlabError(
                    f"only {len(ready)} of {n} ray workers started within {self.start_timeout:g}s; each asks for "
                    f"{self._asks()} and the cluster has {self._cluster()}; ask for fewer workers "
                    "(--backend-arg workers=N), fewer resources per worker, or a larger start_timeout"
                )
            infos = []
            for ref in refs:
                try:
                    infos.append(ray.get(ref))
                except ray.exceptions.RayError as exc:
                    raise BudgetlabError(
                        f"a ray worker could not start ({type(exc).__name__}: {str(exc).strip().splitlines()[-1]}); "
                        "every node needs budgetlab and the inner backend's packages installed "
                        "(pip install 'budgetlab[...]'), or pass a runtime_env"
                    ) from None
            for info in infos:
                if info["error"] is not None:
                    _raise_described(info["error"], f"building {self.inner_spec!r} on a ray worker")
        except BaseException:
            for actor in actors:
                ray.kill(actor)
            raise
        self._actors = actors
        self._alive = set(range(n))
        self._router = LeastLoaded(n)
        self.actor_info = [{"pid": i["pid"], "node": i["node"]} for i in infos]
        self.served = [0] * n

    def _asks(self) -> str:
        parts = [f"{k}={getattr(self, k)}" for k in ("num_cpus", "num_gpus") if getattr(self, k) is not None]
        if self.resources:
            parts.append(f"resources={self.resources}")
        return ", ".join(parts) or "1 CPU (Ray's default)"

    def _cluster(self) -> str:
        try:
            res = self._ray.cluster_resources()
        except Exception:
            return "unknown resources"
        return ", ".join(f"{k}={res.get(k, 0):g}" for k in ("CPU", "GPU"))

    def _default_workers(self) -> int:
        ray = self._ray
        if self.num_gpus:
            gpus = ray.cluster_resources().get("GPU", 0)
            return max(1, int(gpus // self.num_gpus))
        nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
        return max(2, len(nodes))

    def _call_sync(self, method: str, *args: Any) -> Any:
        self._start()
        assert self._router is not None
        slot = self._router.pick(self._alive)
        if slot is None:
            raise BudgetlabError("every ray worker has died; see the Ray logs, then resume the run")
        status, value = self._ray.get(self._actors[slot].call.remote(method, *args))
        if status == "error":
            _raise_described(value, f"ray worker {slot}")
        return value

    # ---- drawing ------------------------------------------------------------------------------
    async def draw(self, request: DrawRequest) -> list[Completion]:
        self._start()
        router = self._router
        assert router is not None
        ray = self._ray
        n = len(request.samples)
        tried: set[int] = set()
        last: BaseException | None = None
        for _ in range(2):
            slot = router.pick(self._alive - tried)
            if slot is None:
                break
            router.acquire(slot, n)
            ref = self._actors[slot].call.remote("draw", request)
            try:
                status, value = await ref
            except asyncio.CancelledError:
                try:
                    ray.cancel(ref)
                except Exception:
                    pass
                raise
            except ray.exceptions.RayActorError as exc:  # the actor (or its node) is gone
                self._alive.discard(slot)
                tried.add(slot)
                last = exc
                continue
            finally:
                router.release(slot, n)
            self.served[slot] += 1
            if status == "error":
                _raise_described(value, f"ray worker {slot}")
            return value
        if not self._alive:
            raise BudgetlabError(
                f"every ray worker has died (last: {type(last).__name__ if last else 'none'}); "
                "see the Ray logs, then resume the run"
            )
        raise RayWorkerError(f"ray worker died while drawing: {type(last).__name__}: {last}")

    async def aclose(self) -> None:
        ray = self._ray
        actors, self._actors = self._actors, []
        if actors:
            closing = [actors[i].close.remote() for i in sorted(self._alive)]
            try:
                await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), timeout=30)
            except Exception:
                pass
            for actor in actors:
                try:
                    ray.kill(actor)
                except Exception:
                    pass
        self._alive = set()
        if self._started_ray:
            self._started_ray = False
            ray.shutdown()
        if self._local is not None:
            await self._local.aclose()
