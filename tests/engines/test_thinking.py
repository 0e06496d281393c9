"""Thinking budgets (budget forcing): the chain's phases worked out by hand, then SmolLM2 through the engine."""

import sqlite3

import pytest
from pydantic import ValidationError

from lgt.engines import Request, Sample, Sampling
from lgt.engines.cache import CallCache
from lgt.engines.engine import Engine
from lgt.engines.settings import Thinking
from lgt.engines.thinking import Chain

ASK = [{"role": "user", "content": "Is a red circle left of a blue square at x=10 vs x=80? Options: (A) yes (B) no"}]


def budget(stop: tuple[str, ...] = (), **kw) -> Sampling:
    thinking = Thinking(**({"max_tokens": 10, "answer_max_tokens": 5} | kw))
    return Sampling(temperature=0.0, stop=list(stop), thinking=thinking)


def test_a_thought_that_runs_out_is_closed_and_answered():
    chain = Chain(Request(messages=ASK, prefill="<think>", sampling=budget(stop=("STOP",))))
    think = chain.first()
    assert think.prefill == "<think>"
    assert think.sampling.thinking is None and think.sampling.max_new_tokens == 10
    assert think.sampling.stop == ["</think>", "STOP"]
    answer = chain.step(Sample("Red is at 10, blue at 80 so", "length", prompt_tokens=30, completion_tokens=10))
    assert answer.prefill == "<think>Red is at 10, blue at 80 so</think>\n<answer>"
    assert answer.sampling.max_new_tokens == 5 and answer.sampling.stop == ["</answer>", "STOP"]
    done = chain.step(Sample("(A)", "stop", prompt_tokens=45, completion_tokens=2, key="k2"))
    assert done.text == "Red is at 10, blue at 80 so</think>\n<answer>(A)</answer>"
    assert (done.forced_close, done.forced_continue) == (True, False)
    assert (done.prompt_tokens, done.completion_tokens, done.key) == (75, 12, "k2")
    assert done.finish_reason == "stop" and not done.cached


def test_a_short_thought_is_made_to_go_on_then_closed_by_the_model():
    chain = Chain(Request(messages=ASK, prefill="<think>", sampling=budget(min_tokens=6, max_continues=1)))
    chain.first()
    more = chain.step(Sample("Left.", "stop", completion_tokens=2))
    assert more.prefill == "<think>Left.\nWait," and more.sampling.max_new_tokens == 8  # 10 - 2 left
    answer = chain.step(Sample(" x=10 is less than x=80.", "stop", completion_tokens=3))
    # still below 6 tokens, but the one continuation allowed is spent: the model's own close stands
    assert answer.prefill == "<think>Left.\nWait, x=10 is less than x=80.</think>\n<answer>"
    done = chain.step(Sample("(A", "length", completion_tokens=5))
    assert done.text == "Left.\nWait, x=10 is less than x=80.</think>\n<answer>(A</answer>"  # cut, and closed
    assert (done.forced_close, done.forced_continue, done.finish_reason) == (False, True, "length")


def test_a_failed_phase_fails_the_sample():
    chain = Chain(Request(messages=ASK, prefill="<think>", sampling=budget()))
    chain.first()
    chain.step(Sample("thinking", "length", completion_tokens=10))
    failed = chain.step(Sample.failed("timeout", TimeoutError("slow")))
    assert failed.error == "timeout" and failed.forced_close


def test_min_must_be_below_max():
    with pytest.raises(ValidationError, match="min_tokens"):
        Thinking(max_tokens=8, min_tokens=8)


# --------------------------------------------------------------- through the engine, SmolLM2


def _cache_rows(path) -> int:
    with sqlite3.connect(path) as c:
        return c.execute("SELECT COUNT(*) FROM calls").fetchone()[0]


def test_engine_forces_budgets_with_cached_phases_and_resumes_between_them(tf_backend, tmp_path):
    db = tmp_path / "calls.sqlite"
    req = Request(
        messages=ASK,
        prefill="<think>",
        sampling=Sampling(n=2, temperature=0.7, seed=3, thinking=Thinking(max_tokens=6, answer_max_tokens=8)),
    )
    engine = Engine(tf_backend, CallCache(db))
    (res,) = engine.generate([req])
    assert [s.ok for s in res.samples] == [True, True]
    for s in res.samples:
        thought, answer = s.text.split("</think>\n<answer>")
        # six tokens of thought are not enough for SmolLM2 to close it: the engine did
        assert s.forced_close and not s.forced_continue and "</think>" not in thought
        assert s.completion_tokens >= 7
    assert engine.stats.calls == 4 and _cache_rows(db) == 4  # two phases per sample, each cached
    assert engine.stats.forced_close == 2

    # the first phase is an ordinary call: the same key as the plain request it amounts to
    plain = Sampling(n=2, temperature=0.7, seed=3, max_new_tokens=6, stop=["</think>"])
    assert engine.keys([Request(messages=ASK, prefill="<think>", sampling=plain)]) == engine.keys([req])

    # a crash after the thoughts: the answers are not in the cache; the rerun makes only them
    with sqlite3.connect(db) as c:
        c.executemany("DELETE FROM calls WHERE key = ?", [(s.key,) for s in res.samples])
    again = Engine(tf_backend, CallCache(db))
    (res2,) = again.generate([req])
    assert again.stats.calls == 2 and again.stats.cache_hits == 2
    assert res2.texts == res.texts and [s.forced_close for s in res2.samples] == [True, True]

    # and a warm rerun makes no call at all
    warm = Engine(tf_backend, CallCache(db))
    (res3,) = warm.generate([req])
    assert warm.stats.calls == 0 and res3.texts == res.texts and all(s.cached for s in res3.samples)
