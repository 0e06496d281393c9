"""In-process transformers backend: the CPU default.

Rows (one per sample) are batched with left padding and generated with
`model.generate`. Sampling happens in `RowSampler`, a logits processor with one
`torch.Generator` per row, so a sample depends only on its own prompt and seed,
not on what else shares its batch: that is what makes a cached sample
reproducible. Banned words go through transformers' `bad_words_ids`.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from lgt.engines.checkpoint import checkpoint_revision
from lgt.engines.messages import convert_messages, image_placeholder
from lgt.engines.types import Call, Sample


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


class RowSampler(LogitsProcessor):
    """Temperature, top-k and top-p per row, then a draw from the row's own generator.

    Returns scores that are -inf except at the drawn token, so generate's
    greedy step picks exactly that token.
    """

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
                if self.k[r]:
                    kth = torch.topk(s, min(self.k[r], s.numel())).values[-1]
                    s = s.masked_fill(s < kth, float("-inf"))
                if self.p[r] < 1.0:
                    sorted_s, idx = torch.sort(s, descending=True)
                    probs = torch.softmax(sorted_s, dim=-1)
                    drop = (probs.cumsum(-1) - probs) > self.p[r]  # keep the smallest prefix reaching top_p
                    s = s.index_fill(0, idx[drop], float("-inf"))
                tok = int(torch.multinomial(torch.softmax(s, dim=-1), 1, generator=self.gens[r]))
            out[r, tok] = 0.0
        return out


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
    def __init__(
        self,
        model: str,
        revision: str | None = None,
        batch_size: int = 16,
        vision: bool | None = None,
        device: str = "cpu",
        dtype: torch.dtype | None = None,
        threads: int | None = None,
        batch_tokens: int = 8192,
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

    # --- prompts ---------------------------------------------------------------

    def render(self, call: Call) -> str:
        """The exact text the model continues: chat template (+ prefill), or raw prompt + prefill."""
        req = call.request
        if req.prompt is not None:
            return req.prompt + req.prefill
        # a vision model's processor takes {"type": "image"} placeholders; the pixels go in separately
        msgs = convert_messages(req.messages, image_placeholder)
        templater = self.processor if self.processor is not None else self.tokenizer
        if req.prefill:
            msgs.append({"role": "assistant", "content": req.prefill})
            return templater.apply_chat_template(msgs, tokenize=False, continue_final_message=True)
        return templater.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)

    def bad_words_ids(self, words: list[str]) -> list[list[int]] | None:
        seqs = set()
        for w in words:
            for v in {w, " " + w, w.capitalize(), " " + w.capitalize(), w.lower(), " " + w.lower()}:
                ids = self.tokenizer(v, add_special_tokens=False).input_ids
                if ids:
                    seqs.add(tuple(ids))
        return [list(s) for s in sorted(seqs)] or None

    # --- generation ------------------------------------------------------------

    def run(self, calls: list[Call], on_result: Callable[[Call, Sample], None]) -> None:
        # rows that share generate-level settings can share a batch; similar lengths pad less
        groups: dict[tuple, list[tuple[Call, str]]] = {}
        for c in calls:
            s = c.request.sampling
            gkey = (s.max_new_tokens, tuple(s.stop), tuple(s.banned_words), s.repetition_penalty)
            groups.setdefault(gkey, []).append((c, self.render(c)))
        for rows in groups.values():
            rows.sort(key=lambda cr: len(cr[1]))
            for batch in self._batches(rows):
                if self.share is not None:
                    torch.set_num_threads(self.share.free_cores())
                try:
                    samples = self._generate(batch)
                except Exception as e:  # one bad batch must not lose the others
                    samples = [Sample.failed("backend", e)] * len(batch)
                for (c, _), smp in zip(batch, samples):
                    on_result(c, smp)

    def _batches(self, rows: list[tuple[Call, str]]) -> list[list[tuple[Call, str]]]:
        """Rows in order, at most `batch_size` per batch and at most `batch_tokens` padded prompt tokens.

        Long prompts make the prefill the cost, and it slows with big batches on CPU (1,000-token prompts:
        1,070 prompt tokens/s at 4 rows, 610 at 32; benchmarks/README.md); short ones gain from 32 rows.
        """
        out: list[list[tuple[Call, str]]] = []
        longest = 0
        for row in rows:
            n = len(self.tokenizer(row[1], add_special_tokens=False).input_ids)
            if out and len(out[-1]) < self.batch_size and max(longest, n) * (len(out[-1]) + 1) <= self.batch_tokens:
                out[-1].append(row)
                longest = max(longest, n)
            else:
                out.append([row])
                longest = n
        return out

    @torch.inference_mode()
    def _generate(self, batch: list[tuple[Call, str]]) -> list[Sample]:
        t0 = time.monotonic()
        calls = [c for c, _ in batch]
        texts = [t for _, t in batch]
        s = calls[0].request.sampling
        if self.processor is not None:
            from PIL import Image

            images = [Image.open(io.BytesIO(im.data)).convert("RGB") for c in calls for im in c.request.images()]
            enc = self.processor(text=texts, images=images or None, padding=True, return_tensors="pt")
            if not images:
                enc.pop("pixel_values", None)
        else:
            enc = self.tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False)
        enc = enc.to(self.device)
        sampler = RowSampler(
            [c.request.sampling.temperature for c in calls],
            [c.request.sampling.top_p for c in calls],
            [c.request.sampling.top_k for c in calls],
            [c.seed for c in calls],
        )
        out = self.model.generate(
            **enc,
            do_sample=False,
            max_new_tokens=s.max_new_tokens,
            repetition_penalty=s.repetition_penalty if s.repetition_penalty != 1.0 else None,
            bad_words_ids=self.bad_words_ids(s.banned_words) if s.banned_words else None,
            stop_strings=list(s.stop) or None,
            tokenizer=self.tokenizer if s.stop else None,
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
