"""In-process transformers backend: the CPU default.

Rows (one per sample) are batched and generated with `model.generate`. A prompt
shared by several rows (the n samples of a request, the answer phases after each
thought of a prompt) is prefilled once per batch and its KV cache copied to the
rows (`plan_prefill`): on CPU the prefill of long prompts is most of the cost.
Sampling happens in `RowSampler`, a logits processor with one
`torch.Generator` per row, so a sample depends only on its own prompt and seed,
not on what else shares its batch: that is what makes a cached sample
reproducible. Banned words go through transformers' `bad_words_ids`.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from transformers import DynamicCache, LogitsProcessor, LogitsProcessorList, StoppingCriteriaList
from transformers.generation.stopping_criteria import StopStringCriteria
from transformers.utils import logging as transformers_logging

from lgt.engines.checkpoint import checkpoint_revision
from lgt.engines.messages import render_prompt
from lgt.engines.types import Call, Sample, word_forms

# a bar per model load ("Loading weights") is noise in a run's log; the engine logs its own progress per batch
transformers_logging.disable_progress_bar()


class CoreShare:
    """The cores other processes leave free, measured over the time since the last call, at no cost.

    On Linux the machine's busy CPU time (/proc/stat) minus this process's own (`time.process_time`) over the wall
    time between two calls is what the others used. torch's OpenMP threads spin-wait: two threads on a 2-core
    machine whose other core is busy run 2-4x slower than one thread (benchmarks/threads.py), so each batch gets
    as many threads as there are free cores. Elsewhere (no /proc/stat) every core counts as free.
    """

    def __init__(self, stat: str = "/proc/stat"):
        self.stat = stat
        self.cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        self.last = self._sample()

    def _sample(self) -> tuple[float, float, float] | None:
        try:
            with open(self.stat) as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # all but idle and iowait
        return time.monotonic(), busy / os.sysconf("SC_CLK_TCK"), time.process_time()

    def free_cores(self) -> int:
        now = self._sample()
        last, self.last = self.last, now
        if now is None or last is None or now[0] - last[0] < 0.05:
            return self.cores if now is None else torch.get_num_threads()
        others = max(0.0, (now[1] - last[1]) - (now[2] - last[2])) / (now[0] - last[0])
        return max(1, min(self.cores, int(self.cores - others + 0.5)))


@dataclass
class Row:
    call: Call
    text: str
    ids: list[int]
    shared: int = 0  # tokens in common with the previous row (rows sorted by ids)


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class PrefillPlan(NamedTuple):
    tokens: int  # prompt tokens the batch computes, padding included
    groups: list[list[int]]  # consecutive rows that share a prefix
    prefixes: list[int]  # each group's shared prefix length, run once for the group


def plan_prefill(lengths: list[int], shared: list[int]) -> PrefillPlan:
    """Split sorted rows into groups with a common prefix, to prefill each prefix once.

    `shared[i]` is the common prefix of rows i and i+1. The rows become [prefix | suffix] with every suffix at
    most `width` tokens (padded to it) and every prefix at most longest - width: cost groups * (longest - width)
    + rows * width. A few widths are tried and the cheapest kept; width = longest is no sharing, so a plan never
    costs more than plain left padding. Every row keeps at least one token in its suffix.
    """
    longest, best = max(lengths), None
    # widths: doublings, and the ones that fit a shared prefix exactly under the longest row
    widths = {min(2**k, longest) for k in range(longest.bit_length() + 1)} | {
        longest - c for c in shared if c < longest
    }
    for width in sorted(widths):
        groups: list[list[int]] = []
        common = maxlen = 0
        for i, n in enumerate(lengths):
            if groups:
                c, m = min(common, shared[i - 1], n - 1), max(maxlen, n)
                if m - width <= c:  # one split leaves every suffix within width, and the prefix is common
                    groups[-1].append(i)
                    common, maxlen = c, m
                    continue
            groups.append([i])
            common, maxlen = n - 1, n
        prefixes = [max(max(lengths[i] for i in g) - width, 0) for g in groups]
        tokens = len(groups) * max(prefixes) + len(lengths) * width
        if best is None or tokens < best.tokens:
            best = PrefillPlan(tokens, groups, prefixes)
    return best


def _left_pad(seqs: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, width - len(s) :] = torch.tensor(s)
            mask[i, width - len(s) :] = 1
    return ids, mask


class RowSampler(LogitsProcessor):
    """Temperature, top-k and top-p per row, then a draw from the row's own generator.

    Returns scores that are -inf except at the drawn token, so generate's
    greedy step picks exactly that token. The nucleus is looked for among the
    row's best `CANDIDATES` tokens (a top-k, not a sort of the whole vocabulary:
    3x less time per decode step at 16 rows); only when those hold less than
    top_p of the mass is the whole row sorted.
    """

    CANDIDATES = 1024

    def __init__(self, temperatures: list[float], top_ps: list[float], top_ks: list[int | None], seeds: list[int]):
        self.t, self.p, self.k = temperatures, top_ps, top_ks
        self.gens = [torch.Generator().manual_seed(int(s) % (2**63)) for s in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        out = torch.full_like(scores, float("-inf"))
        for r in range(scores.shape[0]):
            s = scores[r].float()
            if self.t[r] <= 0:
                tok = int(torch.argmax(s))
            else:
                s = s / self.t[r]
                k = min(self.k[r] or 0, s.numel())
                top, top_ids = torch.topk(s, min(s.numel(), max(self.CANDIDATES, k)))  # descending
                if k:
                    s = s.masked_fill(s < top[k - 1], float("-inf"))
                if self.p[r] < 1.0:
                    s = self._nucleus(s, top[:k] if k else top, top_ids, whole=bool(k), p=self.p[r])
                tok = int(torch.multinomial(torch.softmax(s, dim=-1), 1, generator=self.gens[r]))
            out[r, tok] = 0.0
        return out

    @staticmethod
    def _nucleus(s: torch.Tensor, top: torch.Tensor, top_ids: torch.Tensor, whole: bool, p: float) -> torch.Tensor:
        """`s` with only the smallest set of best tokens whose mass reaches p; `whole`: `top` is every finite token."""
        probs = torch.softmax(top, dim=-1) if whole else torch.exp(top - torch.logsumexp(s, dim=-1))
        cum = probs.cumsum(-1)
        if whole or cum[-1] > p:  # the first token past the candidates would be dropped: the nucleus is inside
            keep = top_ids[: int(((cum - probs) <= p).sum())]
            return torch.full_like(s, float("-inf")).index_copy(0, keep, s[keep])
        sorted_s, ids = torch.sort(s, descending=True)
        probs = torch.softmax(sorted_s, dim=-1)
        return s.index_fill(0, ids[(probs.cumsum(-1) - probs) > p], float("-inf"))


class ImageTokenProcessor:
    """Qwen2-VL-style inputs from a tokenizer and an image processor.

    transformers' Qwen2-VL processor cannot be built without torchvision (for
    its video half), and torchvision has no CPU build here. This does what it
    does for images: each image placeholder token is repeated once per merged
    patch, and the image processor supplies pixel_values and image_grid_thw.
    """

    def __init__(self, tokenizer, image_processor, image_token: str = "<|image_pad|>"):
        self.tokenizer, self.image_processor, self.image_token = tokenizer, image_processor, image_token

    def apply_chat_template(self, messages, **kw):
        return self.tokenizer.apply_chat_template(messages, **kw)

    def __call__(self, text: list[str], images=None, padding=True, return_tensors="pt"):
        extra = {}
        if images:
            extra = dict(self.image_processor(images=images, return_tensors=return_tensors))
            merge = getattr(self.image_processor, "merge_size", 2) ** 2
            counts = iter(int(g.prod()) // merge for g in extra["image_grid_thw"])
            text = [self._expand(t, counts) for t in text]
        enc = self.tokenizer(text, padding=padding, return_tensors=return_tensors, add_special_tokens=False)
        enc.update(extra)
        return enc

    def _expand(self, text: str, counts) -> str:
        parts = text.split(self.image_token)
        return parts[0] + "".join(self.image_token * next(counts) + p for p in parts[1:])


def load_processor(model: str, revision: str | None):
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(model, revision=revision)
    except (ImportError, AttributeError) as e:  # see ImageTokenProcessor: no torchvision on CPU machines
        from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer

        if AutoConfig.from_pretrained(model, revision=revision).model_type not in ("qwen2_vl", "qwen2_5_vl"):
            raise RuntimeError(f"{model}: cannot build its processor ({e}); install torchvision") from e
        return ImageTokenProcessor(
            AutoTokenizer.from_pretrained(model, revision=revision),
            AutoImageProcessor.from_pretrained(model, revision=revision, backend="pil"),
        )


class TransformersBackend:
    bans_words = True  # bad_words_ids

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        batch_size: int = 16,
        vision: bool | None = None,
        device: str = "cpu",
        dtype: torch.dtype | None = None,
        threads: int | None = None,
        batch_tokens: int = 2048,
    ):
        from transformers import AutoConfig

        # threads: the role's, else $LGT_TORCH_THREADS, else as many as there are free cores, batch by batch
        threads = threads or int(os.environ.get("LGT_TORCH_THREADS") or 0) or None
        self.share = None if threads else CoreShare()
        torch.set_num_threads(threads or self.share.free_cores())
        self.model_id = model
        self.revision = revision or (checkpoint_revision(Path(model)) if Path(model).is_dir() else None)
        self.batch_size, self.batch_tokens = batch_size, batch_tokens
        self.device = device
        config = AutoConfig.from_pretrained(model, revision=revision)
        self.vision = vision if vision is not None else hasattr(config, "vision_config")
        if self.vision:
            from transformers import AutoModelForImageTextToText

            self.processor = load_processor(model, revision)
            self.tokenizer = self.processor.tokenizer
            self.model = AutoModelForImageTextToText.from_pretrained(model, revision=revision, dtype=dtype)
        else:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            self.processor = None
            self.tokenizer = AutoTokenizer.from_pretrained(model, revision=revision)
            self.model = AutoModelForCausalLM.from_pretrained(model, revision=revision, dtype=dtype)
        self.model.to(device).eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._stops: dict[tuple[str, ...], StoppingCriteriaList] = {}

    # --- prompts ---------------------------------------------------------------

    def render(self, call: Call) -> str:
        """The exact text the model continues: chat template (+ prefill), or raw prompt + prefill."""
        return render_prompt(self.processor if self.processor is not None else self.tokenizer, call.request)

    def bad_words_ids(self, words: list[str]) -> list[list[int]] | None:
        seqs = set()
        for w in words:
            for v in {x for f in word_forms(w) for x in (f, " " + f)}:
                ids = self.tokenizer(v, add_special_tokens=False).input_ids
                if ids:
                    seqs.add(tuple(ids))
        return [list(s) for s in sorted(seqs)] or None

    def stopping(self, stop: list[str]) -> StoppingCriteriaList | None:
        """generate's criteria for these stop strings, built once per backend.

        `generate(stop_strings=...)` builds a StopStringCriteria per call, and its own cache misses (its key is the
        vocabulary in `get_vocab()` order, which changes from call to call): 0.77 s of vocabulary scanning per batch
        for SmolLM2, a quarter of a scored question's time (benchmarks/HISTORY.md, "The main job within 15 minutes").
        """
        if not stop:
            return None
        key = tuple(stop)
        if key not in self._stops:
            self._stops[key] = StoppingCriteriaList([StopStringCriteria(self.tokenizer, list(key))])
        return self._stops[key]

    # --- generation ------------------------------------------------------------

    def run(self, calls: list[Call], on_result: Callable[[Call, Sample], None]) -> None:
        # rows that share generate-level settings can share a batch; sorted by token ids, rows with a common
        # prefix (the n samples of a prompt, the answers after each thought of a question) sit side by side
        groups: dict[tuple, list[Row]] = {}
        for c in calls:
            s = c.request.sampling
            gkey = (s.max_new_tokens, tuple(s.stop), tuple(s.banned_words), s.repetition_penalty)
            text = self.render(c)
            groups.setdefault(gkey, []).append(Row(c, text, self.tokenizer(text, add_special_tokens=False).input_ids))
        for rows in groups.values():
            rows.sort(key=lambda r: r.ids)
            for prev, row in zip(rows, rows[1:]):
                row.shared = common_prefix(prev.ids, row.ids)
            for batch in self._batches(rows):
                if self.share is not None:
                    torch.set_num_threads(self.share.free_cores())
                try:
                    samples = self._generate(batch)
                except Exception as e:  # one bad batch must not lose the others
                    samples = [Sample.failed("backend", e)] * len(batch)
                for row, smp in zip(batch, samples):
                    on_result(row.call, smp)

    def _prefill_tokens(self, batch: list[Row]) -> int:
        if self.processor is not None:  # image tokens are expanded by the processor: no shared prefix
            return len(batch) * max(len(r.ids) for r in batch)
        return plan_prefill([len(r.ids) for r in batch], [r.shared for r in batch[1:]]).tokens

    def _batches(self, rows: list[Row]) -> list[list[Row]]:
        """Rows in order, at most `batch_size` per batch and at most `batch_tokens` prompt tokens to compute.

        Long prompts make the prefill the cost, and it slows with big batches on CPU (1,000-token prompts:
        1,069 prompt tokens/s at 4 rows, 606 at 32; benchmarks/HISTORY.md); short ones gain from 32 rows.
        A shared prefix counts once (see plan_prefill). 2048 tokens (three or four ~600-token scene prompts) beat
        8192 by 17 % on the demo's scored questions and 9 % on its simple CoTs, float32 (benchmarks/HISTORY.md).
        """
        out: list[list[Row]] = []
        for row in rows:
            if out and len(out[-1]) < self.batch_size and self._prefill_tokens(out[-1] + [row]) <= self.batch_tokens:
                out[-1].append(row)
            else:
                out.append([row])
        return out

    def _inputs(self, batch: list[Row]) -> tuple[dict, DynamicCache | None]:
        """generate's inputs; for a text model, each shared prefix already run once into a KV cache.

        Row r is laid out as [pad, its group's prefix, pad, its suffix]: the prefixes (one row per group) go
        through the model first, their cache is copied to every row of the group, and generate runs the
        suffixes on top. Positions come from the attention mask (cumsum), so the inner padding changes nothing.
        """
        if self.processor is not None:
            from PIL import Image

            images = [Image.open(io.BytesIO(im.data)).convert("RGB") for r in batch for im in r.call.request.images()]
            enc = self.processor(text=[r.text for r in batch], images=images or None, padding=True, return_tensors="pt")
            if not images:
                enc.pop("pixel_values", None)
            return dict(enc.to(self.device)), None
        plan = plan_prefill([len(r.ids) for r in batch], [r.shared for r in batch[1:]])
        pad = self.tokenizer.pad_token_id
        heads = [batch[g[0]].ids[:p] for g, p in zip(plan.groups, plan.prefixes)]
        tails = [r.ids[p:] for g, p in zip(plan.groups, plan.prefixes) for r in (batch[i] for i in g)]
        head_ids, head_mask = _left_pad(heads, pad)
        tail_ids, tail_mask = _left_pad(tails, pad)
        cache = None
        if head_ids.shape[1]:
            cache = DynamicCache(config=self.model.config)
            position_ids = (head_mask.cumsum(-1) - 1).masked_fill(head_mask == 0, 0)
            self.model(
                input_ids=head_ids.to(self.device),
                attention_mask=head_mask.to(self.device),
                position_ids=position_ids.to(self.device),
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            of_row = torch.tensor([gi for gi, g in enumerate(plan.groups) for _ in g])
            cache.batch_select_indices(of_row.to(self.device))
            tail_ids = torch.cat([head_ids[of_row], tail_ids], dim=1)
            tail_mask = torch.cat([head_mask[of_row], tail_mask], dim=1)
        return {"input_ids": tail_ids.to(self.device), "attention_mask": tail_mask.to(self.device)}, cache

    @torch.inference_mode()
    def _generate(self, batch: list[Row]) -> list[Sample]:
        t0 = time.monotonic()
        calls = [r.call for r in batch]
        s = calls[0].request.sampling
        enc, cache = self._inputs(batch)
        sampler = RowSampler(
            [c.request.sampling.temperature for c in calls],
            [c.request.sampling.top_p for c in calls],
            [c.request.sampling.top_k for c in calls],
            [c.seed for c in calls],
        )
        out = self.model.generate(
            **enc,
            past_key_values=cache,
            do_sample=False,
            max_new_tokens=s.max_new_tokens,
            repetition_penalty=s.repetition_penalty if s.repetition_penalty != 1.0 else None,
            bad_words_ids=self.bad_words_ids(s.banned_words) if s.banned_words else None,
            stopping_criteria=self.stopping(list(s.stop)),
            logits_processor=LogitsProcessorList([sampler]),
            pad_token_id=self.tokenizer.pad_token_id,
            temperature=None,
            top_p=None,
            top_k=None,
        )
        latency = time.monotonic() - t0
        prompt_len = enc["input_ids"].shape[1]
        eos = set(self._eos_ids())
        samples = []
        for r in range(len(calls)):
            gen = out[r, prompt_len:].tolist()
            n_prompt = int(enc["attention_mask"][r].sum())
            cut = next((k for k, t in enumerate(gen) if t in eos), None)
            ended_eos = cut is not None
            toks = gen[: cut + 1] if ended_eos else gen  # rows pad only after their EOS
            text = self.tokenizer.decode(gen[:cut] if ended_eos else toks, skip_special_tokens=True)
            stop_at = min((text.find(x) for x in s.stop if x in text), default=-1)
            if stop_at >= 0:
                text, reason = text[:stop_at], "stop"
            elif ended_eos:
                reason = "stop"
            else:
                reason = "length" if len(toks) >= s.max_new_tokens else "stop"
            samples.append(Sample(text, reason, n_prompt, len(toks), latency))
        return samples

    def _eos_ids(self) -> list[int]:
        ids = self.model.generation_config.eos_token_id
        ids = ids if isinstance(ids, list) else [ids]
        tok_eos = self.tokenizer.eos_token_id
        return [i for i in ids if i is not None] + ([tok_eos] if tok_eos is not None else [])

    def close(self) -> None:
        self.model = None
