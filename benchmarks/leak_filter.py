"""Our long-CoT leak filter against LPT's, on LPT's released continuations.

    python benchmarks/leak_filter.py PATH/Wait,_0_500.jsonl

PATH is LPT's `data_gen/example_outputs/stage_3_expand_cot/intermediate_df/qwen2.5_vl_instruct/r1_distilled_32b/`
(github.com/andrewliao11/LongPerceptualThoughts): 400 prompts x 3 R1 continuations from the cue "Wait,". LPT's
filter is `any(w in text for w in BAD_WORDS)` on the thought; ours is `lgt.traces.long_cots.leak_reason` with the
default `LongCotsSettings` lists. Prints how many each drops, and the entries behind the disagreements.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lgt.traces.long_cots import leak_reason  # noqa: E402
from lgt.traces.parse import leak_pattern  # noqa: E402
from lgt.traces.settings import LongCotsSettings  # noqa: E402

# LPT stage 3's BAD_WORDS, as released
LPT_BAD = (
    "description,descriptions,describe,describes,described,mention,mentions,mentioned,misread,text,state,states,"
    "stated,say,says,said,internal,mental,visualize,visualization,the image described,user's,detailed image"
).split(",")


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    thoughts = [p.split("</think>")[0] for line in Path(sys.argv[1]).open() for p in json.loads(line)["predict"]]
    stage = LongCotsSettings()
    pattern = leak_pattern(stage.banned_words, stage.leak_phrases, stage.leak_exempt)
    entries = [*stage.banned_words, *stage.leak_phrases]
    ours = [leak_reason(t, pattern, entries) for t in thoughts]
    lpt = [any(w in t for w in LPT_BAD) for t in thoughts]
    print(f"{len(thoughts)} continuations: LPT drops {sum(lpt)}, ours {sum(r is not None for r in ours)}")
    print("ours by reason:", dict(Counter(r for r in ours if r).most_common(12)))
    only_ours = Counter(r for r, theirs in zip(ours, lpt) if r and not theirs)
    only_lpt = Counter(w for t, r, theirs in zip(thoughts, ours, lpt) if theirs and not r for w in LPT_BAD if w in t)
    print(f"dropped only by ours ({sum(only_ours.values())}):", dict(only_ours.most_common(8)))
    print(
        f"dropped only by LPT ({sum(1 for r, theirs in zip(ours, lpt) if theirs and not r)}), its words:",
        dict(only_lpt),
    )
    alone = sum(1 for r, theirs in zip(ours, lpt) if theirs and not r)
    record_results(len(thoughts), sum(r is not None for r in ours), sum(lpt), sum(only_ours.values()), alone)


def record_results(thoughts: int, ours: int, lpt: int, ours_alone: int, lpt_alone: int) -> None:
    """The summary's figure (benchmarks/results.py); the file's folder is LPT's PATH of the docstring."""
    from results import record

    value = f"{ours} of {thoughts:,} (LPT's own: {lpt})"
    cmd = f"python benchmarks/leak_filter.py PATH/{Path(sys.argv[1]).name}"
    notes = f"ours alone {ours_alone}, LPT's alone {lpt_alone}"
    record("data quality", "LPT's R1 continuations dropped by the leak filter", value, command=cmd, notes=notes)


if __name__ == "__main__":
    main()
