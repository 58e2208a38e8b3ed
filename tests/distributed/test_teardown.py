"""The process-group teardown petl registers at exit (`petl.training.launch`): a bounded
barrier, then `destroy_process_group`, then a pause that hands the GIL to gloo's worker
threads, so that none of them frees a collective's tensors during interpreter
finalization (which aborts the process after a finished run). In-process, on a
one-process gloo group; the two-process launches exercise it at every exit."""

from __future__ import annotations

import sys
from datetime import timedelta

import pytest
import torch.distributed as dist

from petl.training import launch


@pytest.fixture
def gloo_group():
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


@pytest.fixture
def calls(monkeypatch):
    seen: list[tuple[str, object]] = []
    barrier = dist.monitored_barrier

    def monitored_barrier(*args, timeout=None, **kwargs):
        seen.append(("barrier", timeout))
        return barrier(*args, timeout=timeout, **kwargs)

    monkeypatch.setattr(dist, "monitored_barrier", monitored_barrier)
    monkeypatch.setattr(launch.time, "sleep", lambda s: seen.append(("sleep", s)))
    return seen


def test_teardown_waits_for_every_rank_then_destroys_then_drains(gloo_group, calls):
    launch._destroy_process_group()
    assert not dist.is_initialized()
    assert calls == [
        ("barrier", timedelta(seconds=launch.TEARDOWN_WAIT_S)),
        ("sleep", launch.TEARDOWN_DRAIN_S),
    ]


def test_teardown_skips_the_barrier_when_dying_of_an_exception(gloo_group, calls, monkeypatch):
    # a rank that crashed never reaches the barrier: waiting for it would hang the others
    monkeypatch.setattr(sys, "last_value", RuntimeError("boom"), raising=False)
    launch._destroy_process_group()
    assert not dist.is_initialized()
    assert calls == [("sleep", launch.TEARDOWN_DRAIN_S)]


def test_teardown_without_a_group_does_nothing(calls):
    assert not dist.is_initialized()
    launch._destroy_process_group()
    assert calls == []
