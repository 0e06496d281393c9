"""Leaks into long CoTs: what the reasoner reads, the leak filter, and the decode-time ban over HTTP.

The stage runs through the real engine and call cache over the HTTP backend, pointed at a closed port: the
crafted continuations are recorded under the keys of the stage's own requests, so a request the test did not
record would fail its call and break the expected counts.
"""

import pyarrow as pa
import pytest
from pydantic import ValidationError

from lgt.engines import Call, Engine, ModelRole, Request, Sample, Sampling, make_backend
from lgt.engines.cache import CallCache, call_key
from lgt.engines.openai_backend import OpenAIBackend
from lgt.images.stand_in import object_lines
from lgt.traces.long_cots import build_long_cots, leak_reason, long_cot_requests
from lgt.traces.parse import leak, leak_pattern
from lgt.traces.settings import LongCotsSettings
from schemas.traces import SIMPLE_COTS_ARROW, LongCotsSchema
from tests.fixtures import question_shard

STAGE = LongCotsSettings()
PATTERN = leak_pattern(STAGE.banned_words, STAGE.leak_phrases, STAGE.leak_exempt)
ENTRIES = [*STAGE.banned_words, *STAGE.leak_phrases]
MODEL = "reasoner-under-test"

# (continuation after the cue, the reject reason or None when kept)
CRAFTED = [
    (" object 3 spans x 0.086 to 0.312, so it is on the left.", "object_id"),
    (" I visualized it once more: it is on the left.", "word:visualized"),
    (" Based on the descriptions, the star is purple.", "word:descriptions"),
    (" the user's question is about the left one.", "word:user's"),
    (" without mentioning the caption, it is purple.", "word:mentioning"),
    (" its corners sit at (0.12, 0.40), on the left.", "coordinates"),
    (" the text says it is purple.", "word:text"),
    (" the bounding box of the star is the largest.", "coordinates"),
    (" the red cube is left of the sphere, so (B).", None),
    (" the texture looks metallic; in this context that is the fundamental clue.", None),
]


@pytest.mark.parametrize("text, why", CRAFTED)
def test_crafted_continuations_are_rejected_with_their_reason_and_clean_ones_kept(text, why):
    assert leak_reason("Wait," + text, PATTERN, ENTRIES, ["0", "1", "2", "3"]) == why


def test_leak_words_match_from_a_word_start_case_insensitively():
    assert leak("Hmm, the Descriptions agree", PATTERN) == "Descriptions"
    assert leak("as VISUALIZED before", PATTERN) == "VISUALIZED"
    assert leak("it is said", PATTERN) == "said"
    assert leak("In the detailed image there", PATTERN) == "detailed image"
    # inside a word, or a word the recipe exempts: no leak (LPT's plain substring test dropped these)
    for clean in ("a fundamental, ornamental essay", "in this context", "a textured, textile textbook", "the estate"):
        assert leak(clean, PATTERN) is None, clean
    assert leak("nothing", leak_pattern([], [])) is None


def test_object_ids_as_the_rows_write_them_and_numbers_that_are_no_coordinates():
    assert leak_reason("so obj_7 is bigger", PATTERN, ENTRIES) == "object_id"
    assert leak_reason("so cube_a1 is bigger", PATTERN, ENTRIES, ["cube_a1"]) == "object_id"
    assert leak_reason("so x1 = 12 there", PATTERN, ENTRIES) == "coordinates"
    for clean in ("there are 3 objects and 2.5 times as many", "the 3 cubes; 1.25 is no box", "options (A) or (B)"):
        assert leak_reason(clean, PATTERN, ENTRIES, ["0", "1"]) is None, clean


@pytest.fixture(scope="module")
def shard():
    """Two real synthetic images and their stage-1/2 questions, LLM paths off."""
    return question_shard(2)


def simple_table(question: dict) -> pa.Table:
    """One correct simple CoT for `question`, as stage B writes it."""
    row = {
        "cot_id": "c" * 32,
        **{k: question[k] for k in ("question_id", "image_id", "source", "stage", "family")},
        "sample_index": 0,
        "response": "<think>The star is on the left.</think><answer>x</answer>",
        "thought": "The star is on the left",
        "answer": f"({question['gold_letter']})",
        "choice": question["gold_letter"],
        "gold_letter": question["gold_letter"],
        "correct": True,
        "category": "O",
        "grounding": "caption",
        "completion_tokens": 9,
        "forced_close": False,
        "forced_continue": False,
        "model": "vlm",
        "prompt_version": "v1",
        "call_key": "k" * 64,
    }
    return pa.Table.from_pylist([row], schema=SIMPLE_COTS_ARROW)


def test_reasoner_reads_the_caption_alone_unless_the_recipe_adds_objects(shard):
    images, questions, keys = shard
    q = questions.to_pylist()[0]
    image = next(r for r in images.to_pylist() if r["image_id"] == q["image_id"])
    lines = object_lines(image, keys)
    assert "- 0: " in lines and "[0." in lines  # what the object list would show: ids and boxes

    _, (req,) = long_cot_requests(simple_table(q), questions, images, LongCotsSettings(sampling=Sampling(n=1)), keys)
    user = req.messages[0]["content"]
    assert f"Image description: {image['caption']}\n" in user
    assert lines not in user and "Objects (" not in user and "[0." not in user and "object's id" not in user

    with_objects = LongCotsSettings(sampling=Sampling(n=1), reasoner_reads="caption+objects")
    _, (req,) = long_cot_requests(simple_table(q), questions, images, with_objects, keys)
    user = req.messages[0]["content"]
    assert f"Image description: {image['caption']}\n" in user and lines in user and "object's id" in user


def http(bad_words: bool) -> OpenAIBackend:
    return OpenAIBackend("http://127.0.0.1:9/v1", MODEL, max_retries=0, timeout_s=5, bad_words=bad_words)


@pytest.mark.parametrize("bad_words", [True, False])
def test_stage_drops_leaks_by_reason_and_each_row_says_whether_the_ban_was_enforced(shard, tmp_path, bad_words):
    images, questions, keys = shard
    q = questions.to_pylist()[0]
    stage = LongCotsSettings(sampling=Sampling(n=len(CRAFTED), temperature=0.7, max_new_tokens=96), seed=1)
    jobs, requests = long_cot_requests(simple_table(q), questions, images, stage, keys)
    engine = Engine(http(bad_words), CallCache(tmp_path / "calls.sqlite"))
    for call_keys, (text, _) in zip(engine.keys(requests), CRAFTED, strict=True):
        reply = f"{text}</think><answer>({q['gold_letter']})</answer>"
        engine.cache.put(MODEL, Sample(reply, "stop", completion_tokens=9, key=call_keys[0]))

    result = build_long_cots(simple_table(q), questions, images, stage, lambda role: engine, keys)
    assert engine.stats.calls == 0 and engine.stats.cache_hits == len(CRAFTED)
    assert dict(result.rejects) == {
        "leak/object_id": 1,
        "leak/word:visualized": 1,
        "leak/word:descriptions": 1,
        "leak/word:user's": 1,
        "leak/word:mentioning": 1,
        "leak/coordinates": 2,
        "leak/word:text": 1,
    }
    rows = result.table.to_pylist()
    assert [r["continuation"].split("</think>")[0] for r in rows] == [t for t, why in CRAFTED if why is None]
    assert all(r["ban_enforced"] is bad_words and r["category"] == "O->O" for r in rows)
    LongCotsSchema.validate(result.table.to_pandas())


def test_http_sends_bad_words_only_where_the_server_bans_and_keys_say_what_was_sent():
    banned = Sampling(max_new_tokens=8, banned_words=["visualize", "user's"])
    req = Request(messages=[{"role": "user", "content": "Where is the star?"}], sampling=banned)
    call = Call(0, 0, req, "k", 0)
    assert http(True)._params(call)["extra_body"]["bad_words"] == ["Visualize", "visualize", "User's", "user's"]
    assert "extra_body" not in http(False)._params(call)

    # a ban the server enforces leaves the key as it always was: the request's, banned words included
    payload = {
        "messages": req.messages,
        "prompt": None,
        "prefill": "",
        "sampling": banned.model_dump(mode="json", exclude={"n", "thinking"}),
        "sample_index": 0,
    }
    assert Engine(http(True)).keys([req]) == [[call_key(MODEL, None, payload)]]
    # where nothing is banned, the call is keyed as the unbanned request it is, so neither answers for the other
    unbanned = Request(messages=req.messages, sampling=banned.model_copy(update={"banned_words": []}))
    assert Engine(http(False)).keys([req]) == Engine(http(True)).keys([unbanned]) != Engine(http(True)).keys([req])


def test_roles_say_which_servers_take_bad_words():
    url = "http://127.0.0.1:9/v1"
    assert make_backend(ModelRole(backend="openai", model="m", base_url=url), "m").bans_words is False
    assert make_backend(ModelRole(backend="openai", model="m", base_url=url, bad_words=True), "m").bans_words is True
    assert make_backend(ModelRole(backend="vllm", launch=True, model="m"), "m", server_url=url).bans_words is True
    off = ModelRole(backend="vllm", launch=True, model="m", bad_words=False)
    assert make_backend(off, "m", server_url=url).bans_words is False
    assert make_backend(ModelRole(backend="sglang", launch=True, model="m"), "m", server_url=url).bans_words is False
    with pytest.raises(ValidationError, match="SGLang has no decode-time word ban"):
        ModelRole(backend="sglang", launch=True, model="m", bad_words=True)
    with pytest.raises(ValidationError, match="bans words itself"):
        ModelRole(backend="transformers", model="m", bad_words=True)
