"""The in-process transformers engine with the real SmolLM2-135M-Instruct."""

import os
import re
import time

import torch

from lgt.engines import Call, ImageInput, Request, Sampling
from lgt.engines.cache import CallCache
from lgt.engines.engine import Engine, ground
from lgt.engines.transformers_backend import (
    PrefillPlan,
    Row,
    RowSampler,
    TransformersBackend,
    common_prefix,
    plan_prefill,
)

ASK = [{"role": "user", "content": "Name three fruits."}]


def test_generates_n_distinct_samples_that_reproduce_by_seed(tf_backend):
    engine = Engine(tf_backend)
    req = Request(messages=ASK, sampling=Sampling(n=3, temperature=0.9, top_p=0.95, max_new_tokens=16, seed=5))
    (first,) = engine.generate([req])
    assert len(first.samples) == 3 and first.grounding == "text"
    assert all(s.ok and s.text.strip() and s.completion_tokens > 0 for s in first.samples)
    assert len(set(first.texts)) == 3  # three seeds, three samples
    (again,) = Engine(tf_backend).generate([req])
    assert again.texts == first.texts
    other = Request(messages=ASK, sampling=Sampling(n=3, temperature=0.9, top_p=0.95, max_new_tokens=16, seed=6))
    assert Engine(tf_backend).generate([other])[0].texts != first.texts


def test_a_sample_does_not_depend_on_its_batch(tf_backend):
    reqs = [
        Request(
            messages=[{"role": "user", "content": f"Count to {k}."}],
            sampling=Sampling(n=2, temperature=0.8, max_new_tokens=12, seed=k),
        )
        for k in range(2, 7)
    ]
    together = Engine(tf_backend).generate(reqs)
    alone = Engine(tf_backend).generate([reqs[3]])
    assert alone[0].texts == together[3].texts


def test_prefill_is_continued(tf_backend, smollm2):
    """Greedy with a prefill equals plain model.generate on the chat template ending in that prefill."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    req = Request(
        messages=[{"role": "user", "content": "What colour is the sky?"}],
        prefill="The sky is",
        sampling=Sampling(temperature=0, max_new_tokens=10),
    )
    (res,) = Engine(tf_backend).generate([req])
    tok = AutoTokenizer.from_pretrained(smollm2)
    model = AutoModelForCausalLM.from_pretrained(smollm2)
    text = tok.apply_chat_template(
        [*req.messages, {"role": "assistant", "content": "The sky is"}], tokenize=False, continue_final_message=True
    )
    assert text.rstrip().endswith("The sky is")
    ids = tok(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=10, do_sample=False)
    expected = tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    assert res.samples[0].text == expected
    assert not res.samples[0].text.startswith("The sky is")  # continued, not restated


def test_banned_words_never_appear(tf_backend):
    words = ["sun", "beach", "sand", "water", "ocean"]
    pattern = re.compile(r"\b(" + "|".join(words) + r")\b", re.IGNORECASE)
    msgs = [{"role": "user", "content": "Describe a sunny day at the beach, with sand and ocean water."}]
    free = Request(messages=msgs, sampling=Sampling(n=4, temperature=0.7, max_new_tokens=48, seed=1))
    banned = Request(
        messages=msgs, sampling=Sampling(n=4, temperature=0.7, max_new_tokens=48, seed=1, banned_words=words)
    )
    free_res, banned_res = Engine(tf_backend).generate([free, banned])
    assert any(pattern.search(t) for t in free_res.texts)  # the words do come without the ban
    for t in banned_res.texts:
        assert not pattern.search(t), t


def test_finish_reason_and_stop_strings(tf_backend):
    short = Request(messages=ASK, sampling=Sampling(temperature=0, max_new_tokens=3))
    stop = Request(prompt="1, 2, 3, 4, 5,", sampling=Sampling(temperature=0, max_new_tokens=20, stop=[" 8"]))
    r_short, r_stop = Engine(tf_backend).generate([short, stop])
    assert r_short.samples[0].finish_reason == "length" and r_short.samples[0].completion_tokens == 3
    assert r_stop.samples[0].finish_reason == "stop"
    assert r_stop.samples[0].text == " 6, 7,"  # raw continuation, cut before the stop string


def test_stop_criteria_are_built_once_and_stop_every_later_batch(tf_backend):
    """generate(stop_strings=) rescans the vocabulary per batch; the backend builds the criteria once per stop set,
    and they must still end decoding (not only cut the text) in every batch that reuses them."""
    assert tf_backend.stopping([" 8"]) is tf_backend.stopping([" 8"])
    assert tf_backend.stopping([" 8"]) is not tf_backend.stopping([" 9"]) and tf_backend.stopping([]) is None
    for prompt, text in (("1, 2, 3, 4, 5,", " 6, 7,"), ("3, 4, 5, 6,", " 7,")):
        r = Engine(tf_backend).generate(
            [Request(prompt=prompt, sampling=Sampling(temperature=0, max_new_tokens=20, stop=[" 8"]))]
        )[0]
        smp = r.samples[0]
        assert (smp.text, smp.finish_reason) == (text, "stop")
        # decoding ended with the " 8" token, not after 20 tokens
        assert smp.completion_tokens == len(tf_backend.tokenizer(text + " 8", add_special_tokens=False).input_ids)


def test_text_only_model_runs_caption_grounded(tf_backend):
    img = ImageInput(b"\x89PNG\r\n\x1a\n fake bytes", stand_in="Caption: a red circle left of a blue square.")
    msgs = [{"role": "user", "content": [{"type": "image", "image": img}, {"type": "text", "text": "What is left?"}]}]
    engine = Engine(tf_backend)
    (res,) = engine.generate([Request(messages=msgs, sampling=Sampling(temperature=0, max_new_tokens=8))])
    assert res.grounding == "caption" and res.samples[0].ok
    grounded, how = ground(Request(messages=msgs), tf_backend.vision)
    assert how == "caption" and "a red circle left of a blue square" in tf_backend.render(Call(0, 0, grounded, "k", 0))
    blind = [{"role": "user", "content": [{"type": "image", "image": ImageInput(b"x")}, {"type": "text", "text": "?"}]}]
    (res,) = engine.generate([Request(messages=blind, sampling=Sampling(n=2))])
    assert [s.error for s in res.samples] == ["no_vision", "no_vision"]


def test_cache_second_run_makes_no_calls(tf_backend, tmp_path):
    reqs = [
        Request(messages=[{"role": "user", "content": f"Say {w}."}], sampling=Sampling(n=2, max_new_tokens=6, seed=1))
        for w in ("yes", "no", "maybe")
    ]
    cache = CallCache(tmp_path / "calls.sqlite")
    first = Engine(tf_backend, cache)
    r1 = first.generate(reqs)
    assert first.stats.calls == 6 and first.stats.cache_hits == 0 and cache.count() == 6
    second = Engine(tf_backend, cache)
    r2 = second.generate(reqs)
    assert second.stats.calls == 0 and second.stats.cache_hits == 6
    assert [r.texts for r in r2] == [r.texts for r in r1] and all(s.cached for r in r2 for s in r.samples)
    # one changed request: only its samples are called again
    third = Engine(tf_backend, cache)
    third.generate(
        reqs[:2]
        + [
            Request(
                messages=[{"role": "user", "content": "Say perhaps."}], sampling=Sampling(n=2, max_new_tokens=6, seed=1)
            )
        ]
    )
    assert third.stats.calls == 2 and third.stats.cache_hits == 4


def test_batches_cap_rows_and_prompt_tokens(smollm2):
    backend = TransformersBackend(str(smollm2), batch_size=3, batch_tokens=100)
    rows = []
    for i, words in enumerate([5, 5, 5, 5, 30, 30, 60]):
        text = " ".join([f"w{i}"] + ["word"] * words)  # distinct first tokens: nothing shared
        rows.append(Row(Call(i, 0, Request(prompt=text), str(i), 0), text, backend.tokenizer(text).input_ids))
    n_tokens = {r.call.index: len(r.ids) for r in rows}
    batches = [[r.call.index for r in b] for b in backend._batches(rows)]
    assert [i for b in batches for i in b] == list(range(7))  # every row once, in order
    for b in batches:  # no batch over either cap (with nothing shared, the padded prompt), none that could grow
        assert len(b) <= 3 and len(b) * max(n_tokens[i] for i in b) <= 100
    for b, nxt in zip(batches, batches[1:]):
        assert len(b) == 3 or (len(b) + 1) * max(n_tokens[i] for i in b + nxt[:1]) > 100
    assert [len(b) for b in batches] == [3, 3, 1]


def test_plan_prefill_runs_each_shared_prefix_once():
    # three identical 10-token prompts (n samples): one group, 9 tokens once, then one token per row
    plan = plan_prefill([10, 10, 10], [10, 10])
    assert plan == PrefillPlan(9 + 3 * 1, [[0, 1, 2]], [9])
    # 10 and 12 tokens sharing 6: prefix 6 once, suffixes padded to 6
    assert plan_prefill([10, 12], [6]) == PrefillPlan(6 + 2 * 6, [[0, 1]], [6])
    # nothing shared: no cheaper than plain left padding (2 rows x 7 tokens)
    assert plan_prefill([5, 7], [0]).tokens == 14
    # one row: all but its last token is the prefix
    assert plan_prefill([4], []) == PrefillPlan(3 + 1, [[0]], [3])
    # two prompts, two samples each, plus a third prompt: never more than plain padding
    lengths, shared = [40, 40, 50, 50, 45], [40, 20, 50, 3]
    plan = plan_prefill(lengths, shared)
    assert plan.tokens <= len(lengths) * max(lengths) and sorted(i for g in plan.groups for i in g) == list(range(5))
    assert plan.groups[:2] == [[0, 1], [2, 3]]


def test_shared_prefixes_generate_what_each_prompt_generates_alone(tf_backend, smollm2):
    """Greedy rows that share prompts (n samples, answers after different thoughts) equal batch-1 model.generate."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    scene = "A scene: " + " ".join(f"a {c} cube at ({i}, {2 * i})," for i, c in enumerate(["red", "blue"] * 12))
    greedy = Sampling(n=2, temperature=0.0, max_new_tokens=10)
    ask = [{"role": "user", "content": f"{scene} How many {c} cubes are there?"} for c in ("red", "blue")]
    reqs = [Request(messages=[m], sampling=greedy) for m in ask]
    reqs += [
        Request(messages=ask[:1], prefill=f"<think>{t}</think>\n<answer>", sampling=greedy) for t in ("12", "I count")
    ]
    calls = [Call(i, k, r, f"{i}-{k}", 0) for i, r in enumerate(reqs) for k in range(2)]
    rows = [Row(c, tf_backend.render(c), tf_backend.tokenizer(tf_backend.render(c)).input_ids) for c in calls]
    rows.sort(key=lambda r: r.ids)
    for prev, row in zip(rows, rows[1:]):
        row.shared = common_prefix(prev.ids, row.ids)
    assert tf_backend._prefill_tokens(rows) < len(rows) * max(len(r.ids) for r in rows) / 3  # sharing happens
    got = {}
    tf_backend.run(calls, lambda c, s: got.__setitem__(c.key, s.text))
    tok = AutoTokenizer.from_pretrained(smollm2)
    model = AutoModelForCausalLM.from_pretrained(smollm2)
    for c in calls:
        ids = tok(tf_backend.render(c), return_tensors="pt", add_special_tokens=False).input_ids
        out = model.generate(ids, do_sample=False, max_new_tokens=10, pad_token_id=tok.eos_token_id)
        assert got[c.key] == tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True), c.key


def test_core_share_counts_the_cores_other_processes_used(tmp_path):
    from lgt.engines.transformers_backend import CoreShare

    stat = tmp_path / "stat"
    tick = os.sysconf("SC_CLK_TCK")

    def write(busy_jiffies: int) -> None:  # user, nice, system, idle, iowait, ...
        stat.write_text(f"cpu  {busy_jiffies} 0 0 100000 0 0 0 0 0 0\ncpu0 ...\n")

    write(1000)
    share = CoreShare(str(stat))
    time.sleep(0.5)
    write(1000 + int(0.5 * tick))  # a neighbour kept one core busy for the half second
    assert share.free_cores() == max(1, share.cores - 1)
    time.sleep(0.5)  # and then nothing else ran (this test's own CPU time is subtracted)
    assert share.free_cores() == share.cores
    assert CoreShare(str(tmp_path / "missing")).free_cores() == share.cores  # no /proc/stat: every core


def _reference_draw(scores: torch.Tensor, t: float, p: float, k: int | None, gen: torch.Generator) -> int:
    """Top-k, then top-p by sorting the whole row, then a draw: the textbook nucleus sampler."""
    s = scores.float() / t
    if k:
        s = s.masked_fill(s < torch.sort(s, descending=True).values[k - 1], float("-inf"))
    sorted_s, idx = torch.sort(s, descending=True)
    probs = torch.softmax(sorted_s, dim=-1)
    s = s.index_fill(0, idx[(probs.cumsum(-1) - probs) > p], float("-inf"))
    return int(torch.multinomial(torch.softmax(s, dim=-1), 1, generator=gen))


def test_row_sampler_draws_what_a_full_sort_nucleus_sampler_draws():
    # peaked rows (the nucleus among the 1,024 candidates) and flat ones (it is not: the full sort)
    torch.manual_seed(0)
    for scale, k in ((8.0, None), (8.0, 50), (0.2, None), (0.2, 20)):
        sampler = RowSampler([0.7] * 4, [0.8] * 4, [k] * 4, [11, 12, 13, 14])
        gens = [torch.Generator().manual_seed(s) for s in (11, 12, 13, 14)]
        for _ in range(10):
            scores = torch.randn(4, 5000) * scale
            drawn = sampler(None, scores).argmax(-1).tolist()
            assert drawn == [_reference_draw(scores[r], 0.7, 0.8, k, gens[r]) for r in range(4)], (scale, k)
