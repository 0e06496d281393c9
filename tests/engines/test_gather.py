"""Partitions of a ranged run share backend calls: several threads' requests, one dispatch, their own results."""

import threading

import pytest

from lgt.engines import Request, Sampling
from lgt.engines.engine import Engine
from lgt.engines.gather import Gather


def asks(k: int) -> list[Request]:
    return [
        Request(
            messages=[{"role": "user", "content": f"Name {k + i} colours."}],
            sampling=Sampling(n=2, temperature=0.8, max_new_tokens=8, seed=k),
        )
        for i in range(k)
    ]


def run_threads(gather: Gather, work) -> list:
    out, errors = [None] * 3, []

    def worker(i: int) -> None:
        try:
            out[i] = work(i)
        except Exception as e:
            errors.append(e)
        finally:
            gather.finished()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return out, errors


def test_three_partitions_make_one_dispatch_and_get_what_they_would_get_alone(tf_backend):
    shared = Engine(tf_backend)
    gather = Gather(3)
    # partition 2 makes no call at all: the others must not wait for it
    got, errors = run_threads(gather, lambda i: gather.engine(shared).generate(asks(i + 1)) if i < 2 else None)
    assert not errors and got[2] is None
    assert shared.stats.dispatches == 1 and shared.stats.calls == (1 + 2) * 2
    for i in range(2):
        alone = Engine(tf_backend).generate(asks(i + 1))
        assert [r.texts for r in got[i]] == [r.texts for r in alone]


def test_a_failing_batch_fails_every_caller_and_nobody_hangs(tf_backend):
    shared = Engine(tf_backend)
    gather = Gather(3)
    # a text part without its text: the backend fails rendering it, so the whole batch raises
    bad = Request(messages=[{"role": "user", "content": [{"type": "text"}]}], sampling=Sampling(max_new_tokens=4))

    def work(i: int):
        return gather.engine(shared).generate([bad] if i == 0 else asks(1))

    got, errors = run_threads(gather, work)
    assert len(errors) == 3 and got == [None, None, None]
    assert all(isinstance(e, KeyError) for e in errors)
    with pytest.raises(KeyError):
        shared.generate([bad])
