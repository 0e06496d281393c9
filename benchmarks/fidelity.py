"""Question yield per family and skips per reason on the demo's synthetic scenes, for before/after tables.

    python benchmarks/fidelity.py                      # 400 scenes of the demo source, this checkout
    python benchmarks/fidelity.py --root /tmp/before   # the same scenes through another checkout's code
    python benchmarks/fidelity.py --scenes 100 --json out.json

Stage 1 runs the programmatic families (no LLM writer), stage 2 composes from them (no LLM rewrite): the
parts of question synthesis whose rules decide what a person would agree with. The scenes come from the demo
recipe's source (seed 0), so two checkouts see the same images when the scene generator is unchanged.
Then the bias audit (lgt/questions/audit.py): per family, the best blind baseline's accuracy.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent, help="checkout to import")
    ap.add_argument("--scenes", type=int, default=400)
    ap.add_argument("--json", type=Path, help="also write the counts here")
    args = ap.parse_args()
    sys.path.insert(0, str(args.root))

    from lgt.images.sources import read_shard
    from lgt.images.validate import Limits, build_shard
    from lgt.questions.composed import build_questions_composed
    from lgt.questions.grounded import template_rows
    from lgt.questions.rows import items_table
    from lgt.recipe import load_recipe

    recipe = load_recipe(args.root / "recipes" / "demo.yaml")
    src = recipe.sources[0].model_copy(update={"images_per_shard": args.scenes})
    images = build_shard(read_shard(src, 0), Limits()).images
    s1 = recipe.stages.questions_grounded
    s1 = s1.model_copy(update={"llm": s1.llm.model_copy(update={"enabled": False})})
    s2 = recipe.stages.questions_composed
    s2 = s2.model_copy(update={"rewrite": s2.rewrite.model_copy(update={"enabled": False})})

    skips1: Counter = Counter()
    rows = images.select(["image_id", "width", "height", "objects"]).to_pylist()
    grounded = items_table(template_rows(rows, s1, src.name, skips1))
    composed = build_questions_composed(images, grounded, s2, s1, recipe.models, src.name, None)
    out = {
        "scenes": images.num_rows,
        "stage1": dict(sorted(Counter(grounded.column("family").to_pylist()).items())),
        "stage1_skips": dict(sorted(skips1.items())),
        "stage2": dict(sorted(Counter(composed.table.column("family").to_pylist()).items())),
        "stage2_rejects": dict(sorted(composed.rejects.items())),
    }
    print(f"{out['scenes']} scenes, code from {args.root}")
    for part in ("stage1", "stage1_skips", "stage2", "stage2_rejects"):
        print(f"  {part}: " + ", ".join(f"{k} {v}" for k, v in out[part].items()))
    try:  # the bias audit, where the checkout has it
        from lgt.questions.audit import audit, audit_table
    except ImportError:
        print("  (no bias audit in this checkout)")
    else:
        audits = audit(grounded.to_pylist() + composed.table.to_pylist())
        out["blind"] = {a.family: dict(a.blind) for a in audits}
        print("\n" + audit_table(audits))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
