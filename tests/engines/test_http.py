"""The HTTP engine against a real `transformers serve` on loopback, with and without injected faults."""

import pytest

from lgt.engines import Request, Sampling
from lgt.engines.cache import CallCache
from lgt.engines.engine import Engine
from lgt.engines.openai_backend import OpenAIBackend
from tests.engines.faulty_proxy import FaultyProxy


def requests(k: int, n: int = 1, max_new_tokens: int = 6) -> list[Request]:
    return [
        Request(
            messages=[{"role": "user", "content": f"Give one word about the number {i}."}],
            sampling=Sampling(n=n, temperature=0.7, max_new_tokens=max_new_tokens, seed=i),
        )
        for i in range(k)
    ]


def test_http_engine_generates_in_order_with_prefill(served):
    backend = OpenAIBackend(served["base_url"], served["model"], max_concurrency=8)
    reqs = requests(6, n=2)
    reqs.append(
        Request(
            messages=[{"role": "user", "content": "What colour is the sky?"}],
            prefill="The sky is",
            sampling=Sampling(temperature=0, max_new_tokens=8),
        )
    )
    engine = Engine(backend)
    res = engine.generate(reqs)
    assert [len(r.samples) for r in res] == [2] * 6 + [1]
    assert all(s.ok and s.finish_reason in ("stop", "length") and s.prompt_tokens > 0 for r in res for s in r.samples)
    assert engine.stats.calls == 13 and engine.stats.completion_tokens > 0
    # the prefill is continued: the greedy in-process continuation of the same template is the same text
    assert res[-1].samples[0].text.startswith(" a ")


def test_every_request_completes_through_20_percent_faults(served, tmp_path):
    reqs = requests(40)
    with FaultyProxy(served["port"], fault_rate=0.2, seed=7) as proxy:
        backend = OpenAIBackend(f"http://127.0.0.1:{proxy.port}/v1", served["model"], max_concurrency=8, max_retries=8)
        engine = Engine(backend, CallCache(tmp_path / "c.sqlite"))
        res = engine.generate(reqs)
    assert all(s.ok for r in res for s in r.samples), engine.stats.errors
    assert engine.stats.calls == 40 and not engine.stats.errors
    faults = sum(v for k, v in proxy.counts.items() if k != "forwarded")
    assert faults >= 4 and {"drop", "500", "429"} <= set(proxy.counts), proxy.counts
    assert proxy.counts["forwarded"] + proxy.counts["delay"] == 40  # each request reached the server once


@pytest.mark.parametrize("kind, error", [("500", "http_5xx"), ("429", "http_429"), ("drop", "connection")])
def test_failures_after_retries_are_error_rows_never_cached(served, tmp_path, kind, error):
    with FaultyProxy(served["port"], fault_rate=1.0, kinds=(kind,)) as proxy:
        backend = OpenAIBackend(f"http://127.0.0.1:{proxy.port}/v1", served["model"], max_retries=1)
        cache = CallCache(tmp_path / "c.sqlite")
        engine = Engine(backend, cache)
        res = engine.generate(requests(3, n=2))
    samples = [s for r in res for s in r.samples]
    assert len(samples) == 6 and all(s.error == error and s.finish_reason is None for s in samples)
    assert engine.stats.errors == {error: 6} and cache.count() == 0
    assert proxy.counts[kind] == 12  # every call tried twice (one retry), none dropped silently


def test_api_key_comes_from_the_environment(monkeypatch):
    with pytest.raises(ValueError, match="LGT_TEST_KEY is not set"):
        OpenAIBackend("http://127.0.0.1:1/v1", "m", api_key_env="LGT_TEST_KEY")
    monkeypatch.setenv("LGT_TEST_KEY", "sk-secret")
    b = OpenAIBackend("http://127.0.0.1:1/v1", "m", api_key_env="LGT_TEST_KEY")
    assert "sk-secret" not in repr(b) and "sk-secret" not in repr(vars(b).get("base_url"))
