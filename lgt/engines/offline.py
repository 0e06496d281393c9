"""vLLM and SGLang in process (the `gpu` extra), imported only when a role asks for them.

Both get every call of a run at once, so their schedulers keep the GPU busy,
with prefix caching on (shared system prompts and prefills are computed once).
Images go in as multi-modal data. A missing package or GPU is a clear error,
not an import failure deep inside a run.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable

from lgt.engines.messages import convert_messages, image_placeholder, image_url
from lgt.engines.types import Call, Sample


def _require(package: str, backend: str) -> None:
    import importlib.util

    if importlib.util.find_spec(package) is None:
        raise RuntimeError(f"backend {backend!r} needs the {package} package: pip install -e '.[gpu]' on a GPU machine")
    try:
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError(
                f"backend {backend!r} needs a CUDA GPU and this machine has none; use 'transformers' or 'openai'"
            )
    except ImportError:
        raise RuntimeError(f"backend {backend!r} needs torch") from None


def _openai_messages(call: Call) -> list[dict]:
    """vLLM's chat input: OpenAI-style messages, the prefill as a final assistant turn."""
    out = convert_messages(call.request.messages, image_url)
    if call.request.prefill:
        out.append({"role": "assistant", "content": call.request.prefill})
    return out


class VLLMBackend:
    def __init__(self, model: str, revision: str | None = None, vision: bool | None = None, **engine_args):
        _require("vllm", "vllm")
        from vllm import LLM

        self.model_id, self.revision = model, revision
        self.llm = LLM(model=model, revision=revision, enable_prefix_caching=True, **engine_args)
        config = self.llm.llm_engine.model_config.hf_config
        self.vision = vision if vision is not None else hasattr(config, "vision_config")

    def _params(self, call: Call):
        from vllm import SamplingParams

        s = call.request.sampling
        return SamplingParams(
            n=1,
            temperature=s.temperature,
            top_p=s.top_p,
            top_k=s.top_k or -1,
            repetition_penalty=s.repetition_penalty,
            max_tokens=s.max_new_tokens,
            seed=call.seed,
            stop=list(s.stop) or None,
            bad_words=list(s.banned_words) or None,
        )

    def run(self, calls: list[Call], on_result: Callable[[Call, Sample], None]) -> None:
        raw = [c for c in calls if c.request.prompt is not None]
        fresh = [c for c in calls if c.request.prompt is None and not c.request.prefill]
        prefilled = [c for c in calls if c.request.prompt is None and c.request.prefill]
        for group, kind in ((raw, "raw"), (fresh, "chat"), (prefilled, "prefill")):
            if not group:
                continue
            t0 = time.monotonic()
            params = [self._params(c) for c in group]
            try:
                if kind == "raw":
                    prompts = [c.request.prompt + c.request.prefill for c in group]
                    outs = self.llm.generate(prompts, params, use_tqdm=False)
                else:
                    outs = self.llm.chat(
                        [_openai_messages(c) for c in group],
                        params,
                        use_tqdm=False,
                        add_generation_prompt=kind == "chat",
                        continue_final_message=kind == "prefill",
                    )
            except Exception as e:
                for c in group:
                    on_result(c, Sample.failed("backend", e))
                continue
            latency = time.monotonic() - t0
            for c, o in zip(group, outs):
                seq = o.outputs[0]
                on_result(
                    c,
                    Sample(
                        seq.text,
                        "length" if seq.finish_reason == "length" else "stop",
                        len(o.prompt_token_ids or []),
                        len(seq.token_ids),
                        latency,
                    ),
                )

    def close(self) -> None:
        self.llm = None


class SGLangBackend:
    def __init__(self, model: str, revision: str | None = None, vision: bool | None = None, **engine_args):
        _require("sglang", "sglang")
        import sglang
        from transformers import AutoConfig, AutoProcessor, AutoTokenizer

        self.model_id, self.revision = model, revision
        config = AutoConfig.from_pretrained(model, revision=revision)
        self.vision = vision if vision is not None else hasattr(config, "vision_config")
        self.templater = (AutoProcessor if self.vision else AutoTokenizer).from_pretrained(model, revision=revision)
        self.engine = sglang.Engine(model_path=model, revision=revision, **engine_args)  # radix cache: prefix caching

    def _prompt(self, call: Call) -> str:
        req = call.request
        if req.prompt is not None:
            return req.prompt + req.prefill
        msgs = convert_messages(req.messages, image_placeholder)
        if req.prefill:
            msgs.append({"role": "assistant", "content": req.prefill})
            return self.templater.apply_chat_template(msgs, tokenize=False, continue_final_message=True)
        return self.templater.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)

    def run(self, calls: list[Call], on_result: Callable[[Call, Sample], None]) -> None:
        from PIL import Image

        t0 = time.monotonic()
        params = []
        for c in calls:
            s = c.request.sampling
            params.append(
                {
                    "temperature": s.temperature,
                    "top_p": s.top_p,
                    "top_k": s.top_k or -1,
                    "repetition_penalty": s.repetition_penalty,
                    "max_new_tokens": s.max_new_tokens,
                    "stop": list(s.stop) or None,
                    "sampling_seed": c.seed,
                }
            )
        images = [[Image.open(io.BytesIO(i.data)).convert("RGB") for i in c.request.images()] or None for c in calls]
        try:
            outs = self.engine.generate(
                prompt=[self._prompt(c) for c in calls],
                sampling_params=params,
                image_data=images if any(images) else None,
            )
        except Exception as e:
            for c in calls:
                on_result(c, Sample.failed("backend", e))
            return
        latency = time.monotonic() - t0
        for c, o in zip(calls, outs):
            meta = o.get("meta_info", {})
            reason = (meta.get("finish_reason") or {}).get("type")
            on_result(
                c,
                Sample(
                    o["text"],
                    "length" if reason == "length" else "stop",
                    meta.get("prompt_tokens", 0),
                    meta.get("completion_tokens", 0),
                    latency,
                ),
            )

    def close(self) -> None:
        self.engine.shutdown()
