"""`--executor ray`: one step's model calls spread over a pool of Ray actors, each owning one backend.

Why Ray core actors and not Ray Data's `map_batches`: the driver must stay the single writer of the
SQLite generation cache and of the run folder, see every result the moment it exists (the cache entry is
what makes kill -9 and resume safe), and re-dispatch exactly the requests a dead actor held. A pool of
actors driven by `ray.wait` gives all three in a page of code. Ray Data streams a dataset through a
pipeline into a sink; bending it back into per-request callbacks, per-example order and "requeue what
that actor held" would be more code, not less.

How it fits: `steps/engine.cached_backend` wraps this backend in the cache like any other, so cached
requests are answered on the driver and never leave it; only misses reach `generate`/`probe` here. They
are cut into chunks in their order (at most `--parallel`, fewer when that keeps every actor busy; the M
samples of one prompt, or the explanations of one example, mostly share a chunk and its KV prefix); each
live actor holds one chunk at a time; each finished chunk goes to `on_result` (and so into the cache) as
soon as it returns. The models of one step (writer, verifier, judge) share one pool: an actor loads each
model the first time it is asked for it, as the local process would, so they never compete for the
cluster's CPUs.

Faults: actors are created with `max_restarts=-1`, so a dead actor (its process or its node killed) is
Ray's to restart wherever the cluster has room. Its chunk is put back at the front of the queue and the
other actors take it; the actor rejoins once it answers a ping. Only when no actor is left alive for
`RECOVER_S` seconds are the remaining requests recorded as failed (errors, never answers): the run says
incomplete and a rerun retries just those.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from . import BackendOptions
from .base import Generation, GenerationRequest, OnProbe, OnResult, Probe, ProbeRequest

RECOVER_S = 300.0  # how long to wait for a restarted actor when none is alive
T = TypeVar("T")


class BackendActor:
    """Runs inside a Ray worker: the backends of the step's models, each loaded once, answering chunks."""

    def __init__(self, options: BackendOptions, threads: int):
        # llama.cpp threads = the CPUs Ray reserved for this actor (not the node's core count).
        os.environ["RECSAVER_LLAMA_THREADS"] = str(threads)
        self.options, self.backends = options, {}  # type: ignore[var-annotated]

    def _backend(self, spec: str) -> Any:
        if spec not in self.backends:
            from . import load_backend

            self.backends[spec] = load_backend(spec, self.options)
        return self.backends[spec]

    def info(self, spec: str | None = None) -> dict[str, Any]:
        import ray

        found = {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}
        if spec is not None:
            backend = self._backend(spec)
            found.update(model_id=backend.model_id, context_length=backend.context_length)
        return found

    def generate(self, spec: str, requests: list[GenerationRequest]) -> list[Generation]:
        return self._backend(spec).generate(requests)

    def probe(self, spec: str, requests: list[ProbeRequest]) -> list[Probe]:
        return self._backend(spec).probe(requests)

    def count_tokens(self, spec: str, request: GenerationRequest) -> int:
        return int(self._backend(spec).count_tokens(request))


def connect(address: str) -> bool:
    """Join the cluster at `address` (auto: the one `ray start` made here; HOST:PORT; local: a new one in this
    process). Returns whether this call connected (and so should disconnect)."""
    try:
        import ray
    except ImportError:
        raise ValueError("--executor ray needs Ray: pip install 'recsaver[ray]'") from None
    if ray.is_initialized():
        return False
    host, sep, port = address.rpartition(":")
    if sep and port.isdigit():  # Ray retries an unreachable GCS for minutes: say so at once instead
        import socket

        try:
            socket.create_connection((host.removeprefix("ray://") or "127.0.0.1", int(port)), timeout=5).close()
        except OSError as e:
            raise ValueError(f"--ray-address {address}: no Ray cluster answers there ({e}). Start one with "
                             "`ray start --head` and give its HOST:PORT, or use --ray-address local") from None
    try:
        ray.init(address=None if address == "local" else address, log_to_driver=False,
                 include_dashboard=False, configure_logging=False)
    except ConnectionError as e:
        raise ValueError(f"--ray-address {address}: no Ray cluster there ({e}). Start one with `ray start --head`, "
                         "give its HOST:PORT, or use --ray-address local") from None
    return True


class ActorPool:
    """The actors of one step, which ones are alive, and the chunk scheduler over them."""

    def __init__(self, options: BackendOptions, address: str, actors: int | None, cpus: float, gpus: float):
        import ray

        self.owns_connection = connect(address)
        if actors is None:
            total = ray.cluster_resources()
            actors = int(total.get("GPU", 0) // gpus) if gpus > 0 else int(total.get("CPU", 0) // max(cpus, 1e-9))
        if actors < 1:
            self.close()
            raise ValueError(f"the Ray cluster at {address} has no room for one actor of {cpus} CPU(s) and {gpus} "
                             f"GPU(s) ({ray.cluster_resources()}); lower --ray-cpus/--ray-gpus or add nodes")
        self.parallel = max(1, options.parallel)
        remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_restarts=-1, max_task_retries=0)(BackendActor)
        self.actors: list[Any] = [remote.remote(options, max(1, int(cpus))) for _ in range(actors)]
        self.live = list(self.actors)
        self.pings: dict[Any, Any] = {}  # future -> an actor that died, until it answers again
        self.users = 0

    def info(self, spec: str) -> list[dict[str, Any]]:
        import ray

        try:
            return list(ray.get([a.info.remote(spec) for a in self.actors]))
        except ray.exceptions.RayError as e:
            raise ValueError(f"a Ray actor could not load {spec}: {e}") from None

    def call_one(self, method: str, *args: Any) -> Any:
        import ray

        return ray.get(getattr(self.live[0], method).remote(*args))

    def _recovered(self, timeout: float) -> None:
        import ray

        if not self.pings:
            return
        ready, _ = ray.wait(list(self.pings), num_returns=len(self.pings), timeout=timeout)
        for future in ready:
            actor = self.pings.pop(future)
            try:
                ray.get(future)
                self.live.append(actor)
            except ray.exceptions.RayActorError:
                self.pings[actor.info.remote()] = actor  # still restarting

    def _down(self, actor: Any) -> None:
        if actor in self.live:
            self.live.remove(actor)
            self.pings[actor.info.remote()] = actor

    def run(self, method: str, spec: str, requests: list[Any], on_result: Callable[[int, Any], None] | None,
            failed: Callable[[str], T]) -> list[T]:
        """Every request answered by some live actor, chunk by chunk, each chunk reported as it returns."""
        import ray

        self._recovered(timeout=0)
        results: list[Any] = [None] * len(requests)
        size = max(1, min(self.parallel, -(-len(requests) // max(1, len(self.live)))))
        queue = deque(range(k, min(k + size, len(requests))) for k in range(0, len(requests), size))
        idle = deque(self.live)
        running: dict[Any, tuple[Any, range]] = {}  # future -> (actor, chunk)
        waiting_since: float | None = None
        while queue or running:
            while queue and idle:
                actor, chunk = idle.popleft(), queue.popleft()
                running[getattr(actor, method).remote(spec, [requests[i] for i in chunk])] = (actor, chunk)
            if not running:  # every actor died: wait for Ray to restart one, for a while
                waiting_since = waiting_since or time.monotonic()
                if time.monotonic() - waiting_since > RECOVER_S:
                    break
                self._recovered(timeout=5.0)
                idle.extend(a for a in self.live if a not in idle)
                continue
            waiting_since = None
            (future,), _ = ray.wait(list(running), num_returns=1)
            actor, chunk = running.pop(future)
            try:
                answers = ray.get(future)
            except ray.exceptions.RayActorError:
                queue.appendleft(chunk)  # that actor (or its node) died: another one takes its chunk
                self._down(actor)
                continue
            except ray.exceptions.RayError as e:  # our code failed inside the actor: recorded, not retried
                answers = [failed(f"Ray actor error: {e}")] * len(chunk)
            idle.append(actor)
            for i, answer in zip(chunk, answers):
                results[i] = answer
                if on_result:
                    on_result(i, answer)
        reason = f"no Ray actor alive for {RECOVER_S:.0f} s (every one died and none restarted)"
        for i, r in enumerate(results):
            if r is None:
                results[i] = failed(reason)
                if on_result:
                    on_result(i, results[i])
        return results

    def close(self) -> None:
        import ray

        for actor in getattr(self, "actors", []):
            ray.kill(actor, no_restart=True)
        self.actors, self.live, self.pings = [], [], {}
        if self.owns_connection:
            ray.shutdown()
            self.owns_connection = False


_POOLS: dict[tuple[Any, ...], ActorPool] = {}  # one per step's engine settings, shared by its models


class RayBackend:
    """The Backend protocol for one model over the step's shared `ActorPool` (see the module docstring)."""

    def __init__(self, spec: str, options: BackendOptions, address: str = "auto", actors: int | None = None,
                 cpus: float = 1.0, gpus: float = 0.0):
        if options.batch:
            raise ValueError("--batch and --executor ray do not mix: a Batch API run is one upload from one "
                             "client, with nothing to spread over actors")
        self.spec = spec
        self.key = (repr(options), address, actors, cpus, gpus)  # options hold a dict: not hashable
        if self.key not in _POOLS:
            _POOLS[self.key] = ActorPool(options, address, actors, cpus, gpus)
        self.pool = _POOLS[self.key]
        self.pool.users += 1
        try:
            infos = self.pool.info(spec)
        except ValueError:
            self.close()
            raise
        ids = {i["model_id"] for i in infos}
        if len(ids) > 1:  # a node with other weights under the same name would mix two models in one run
            self.close()
            raise ValueError(f"the Ray actors loaded different files for {spec}: {sorted(ids)}; install the same "
                             "model on every node")
        self.model_id: str = infos[0]["model_id"]
        self.context_length: int = infos[0]["context_length"]
        self._tokens: dict[str, int] = {}

    def generate(self, requests: Sequence[GenerationRequest], on_result: OnResult | None = None) -> list[Generation]:
        return self.pool.run("generate", self.spec, list(requests), on_result,
                             lambda error: Generation(text=None, error=error))

    def probe(self, requests: Sequence[ProbeRequest], on_result: OnProbe | None = None) -> list[Probe]:
        return self.pool.run("probe", self.spec, list(requests), on_result,
                             lambda error: Probe(probs=None, error=error))

    def count_tokens(self, request: GenerationRequest) -> int:
        key = request.key(self.model_id)
        if key not in self._tokens:
            self._tokens[key] = int(self.pool.call_one("count_tokens", self.spec, request))
        return self._tokens[key]

    def close(self) -> None:
        pool = _POOLS.get(self.key)
        if pool is None:
            return
        pool.users -= 1
        if pool.users <= 0:
            del _POOLS[self.key]
            pool.close()
