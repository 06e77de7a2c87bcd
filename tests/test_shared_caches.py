"""The dashboard's shared caches (ui/cached.py) under concurrent browser sessions (issue 16).

Every browser session runs its script in its own thread; what does not depend on the session (fitted members,
live sessions, the fused result of a configuration, its ablation) is built once and shared. These tests start
many threads at once on one key and count the builds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from reco_core.experiment import MemberSpec, Protocol
from ui import cached, lab, state
from ui.cached import BoundedStore

N_THREADS = 12


def _run_at_once(n: int, fn: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    """Run ``fn(i)`` in ``n`` threads released together; their results and exceptions."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive(), "a thread is still waiting: a build deadlocked"
    return results, errors


def test_concurrent_requests_for_one_key_build_it_once_and_share_the_object() -> None:
    store = BoundedStore(4)
    calls = []

    def build() -> object:
        calls.append(threading.get_ident())
        time.sleep(0.2)  # every other thread arrives while this one builds
        return object()

    results, errors = _run_at_once(N_THREADS, lambda i: store.get_or_build("key", build))
    assert not errors
    assert len(calls) == 1
    assert all(r is results[0] for r in results)
    stats = store.stats
    assert stats["builds"] == 1
    assert stats["waits"] + stats["hits"] == N_THREADS - 1


def test_different_keys_build_in_parallel_not_one_after_the_other() -> None:
    store = BoundedStore(8)
    inside = threading.Semaphore(0)

    def build(i: int) -> int:
        inside.release()
        time.sleep(0.3)
        return i

    start = time.perf_counter()
    results, errors = _run_at_once(4, lambda i: store.get_or_build(("k", i), lambda: build(i)))
    assert not errors and results == [0, 1, 2, 3]
    assert time.perf_counter() - start < 1.0  # 4 x 0.3 s one after the other would take 1.2 s


def test_a_failed_build_raises_in_its_own_caller_and_a_waiter_builds_again() -> None:
    store = BoundedStore(4)
    started = threading.Event()
    release = threading.Event()
    calls = []

    def failing() -> str:
        calls.append("fail")
        started.set()
        release.wait(5)
        raise RuntimeError("this session's script was stopped")

    def good() -> str:
        calls.append("ok")
        return "value"

    out: dict[str, Any] = {}

    def first() -> None:
        try:
            store.get_or_build("k", failing)
        except RuntimeError as exc:
            out["first"] = exc

    t1 = threading.Thread(target=first)
    t1.start()
    assert started.wait(5)
    waiter = threading.Thread(target=lambda: out.setdefault("second", store.get_or_build("k", good)))
    waiter.start()
    time.sleep(0.1)  # the waiter is waiting on the failing build
    release.set()
    t1.join(5)
    waiter.join(5)
    assert isinstance(out["first"], RuntimeError)
    assert out["second"] == "value"
    assert calls == ["fail", "ok"]
    assert store.get("k") == "value"


def test_waiters_get_the_built_value_even_when_the_lru_evicted_it_at_once() -> None:
    store = BoundedStore(1)
    gate = threading.Event()

    def slow() -> str:
        gate.wait(5)
        store.put("other", "evicts k")  # another key arrives before the waiters wake up
        return "k-value"

    holder: dict[str, str] = {}
    builder = threading.Thread(target=lambda: holder.setdefault("b", store.get_or_build("k", slow)))
    builder.start()
    time.sleep(0.05)
    waiter = threading.Thread(target=lambda: holder.setdefault("w", store.get_or_build("k", lambda: "rebuilt")))
    waiter.start()
    time.sleep(0.05)
    gate.set()
    builder.join(5)
    waiter.join(5)
    assert holder == {"b": "k-value", "w": "k-value"}
    assert len(store) == 1


def test_a_build_that_asks_for_its_own_key_does_not_deadlock() -> None:
    store = BoundedStore(4)
    inner = lambda: "inner"  # noqa: E731
    assert store.get_or_build("k", lambda: store.get_or_build("k", inner) + "+outer") == "inner+outer"


def test_the_store_stays_within_its_bound() -> None:
    store = BoundedStore(3)
    for i in range(10):
        store.get_or_build(i, lambda i=i: i)
    assert len(store) == 3
    assert store.get(9) == 9 and store.get(0) is None


# ------------------------------------------------------------------------------------------ the dashboard's results


class _CountingSession:
    """Stands in for a LiveSession: counts the fusions asked of it; each takes a while, like a real one."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def apply(self, weights: list[float], spec: Any, rerank: Any = None) -> tuple:
        with self._lock:
            self.calls += 1
        time.sleep(0.1)
        return ("result", tuple(weights), spec, rerank)


@pytest.fixture
def fresh_stores(monkeypatch: pytest.MonkeyPatch) -> dict[str, BoundedStore]:
    fresh = {kind: BoundedStore(store.max_entries) for kind, store in cached.stores().items()}
    monkeypatch.setattr(cached, "stores", lambda: fresh)
    return fresh


def _lab(session: _CountingSession, cfg: state.LabConfig) -> lab.Lab:
    outcomes = tuple(lab.FitOutcome(m, object(), None, 0.0) for m in cfg.members)  # type: ignore[arg-type]
    key = ("session", cfg.protocol, False, cfg.members)
    return lab.Lab(Protocol(), "test", None, None, None, outcomes, session, key)  # type: ignore[arg-type]


def test_ten_sessions_on_one_configuration_cost_one_fusion(fresh_stores: dict[str, BoundedStore]) -> None:
    cfg = state.config_from_values({})
    session = _CountingSession()
    the_lab = _lab(session, cfg)
    results, errors = _run_at_once(10, lambda i: lab.current_result(the_lab, cfg))
    assert not errors
    assert session.calls == 1
    assert all(r is results[0] for r in results)
    # Another configuration is its own entry; the first stays shared.
    moved = cfg.with_weights([0.5, 0.4, 0.2])
    assert lab.current_result(the_lab, moved) != results[0]
    assert lab.current_result(the_lab, cfg) is results[0]
    assert session.calls == 2
    assert fresh_stores["result"].stats["builds"] == 2


def test_a_lab_built_by_hand_is_not_shared(fresh_stores: dict[str, BoundedStore]) -> None:
    cfg = state.config_from_values({})
    session = _CountingSession()
    outcomes = tuple(lab.FitOutcome(MemberSpec.of(m.model), object(), None, 0.0) for m in cfg.members)  # type: ignore[arg-type]
    the_lab = lab.Lab(Protocol(), "test", None, None, None, outcomes, session)  # type: ignore[arg-type]
    lab.current_result(the_lab, cfg)
    lab.current_result(the_lab, cfg)
    assert session.calls == 2
    assert len(fresh_stores["result"]) == 0
