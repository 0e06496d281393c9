"""Question yield per family and skips per reason on the demo's synthetic scenes, for before/after tables.

    python benchmarks/fidelity.py                      # 400 scenes of the demo source, this checkout
    python benchmarks/fidelity.py --root /tmp/before   # the same scenes through another checkout's code
    python benchmarks/fidelity.py --scenes 100 --json out.json
    python benchmarks/fidelity.py --write-coco /tmp/cocofx   # write the COCO-format fixture (this checkout's)
    python benchmarks/fidelity.py --coco /tmp/cocofx [--root /tmp/before]   # questions on it, checked against
                                                       # what the images show (crowds, group boxes, unboxed, tiny)

Stage 1 runs the programmatic families (no LLM writer), stage 2 composes from them (no LLM rewrite): the
parts of question synthesis whose rules decide what a person would agree with. The scenes come from the demo
recipe's source (seed 0), so two checkouts see the same images when the scene generator is unchanged.
Then the bias audit (lgt/questions/audit.py): per family, the best blind baseline's accuracy.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent, help="checkout to import")
    ap.add_argument("--scenes", type=int, default=400)
    ap.add_argument("--json", type=Path, help="also write the counts here")
    ap.add_argument("--write-coco", type=Path, help="write the COCO-format fixture (oracle/coco_fixture.py)")
    ap.add_argument("--coco", type=Path, help="a fixture folder from --write-coco: the source to question")
    args = ap.parse_args()
    here = Path(__file__).resolve().parent.parent
    if args.write_coco:
        sys.path.insert(0, str(here))
        from oracle.coco_fixture import write_coco_fixture

        fx = write_coco_fixture(args.write_coco)
        print(f"wrote {len(fx.truth)} images to {args.write_coco}; flaws {dict(fx.flaws)}")
        return
    # this checkout's independent checker, whatever checkout makes the questions
    spec = importlib.util.spec_from_file_location("fidelity_checker", here / "oracle" / "checker.py")
    checker_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checker_mod)
    sys.path.insert(0, str(args.root))

    from lgt.images.sources import read_shard
    from lgt.images.validate import Limits, build_shard
    from lgt.questions.composed import build_questions_composed
    from lgt.questions.grounded import template_rows
    from lgt.questions.rows import items_table
    from lgt.recipe import load_recipe

    recipe = load_recipe(args.root / "recipes" / "demo.yaml")
    if args.coco:
        from lgt.images.sources.coco import CocoSource

        d = args.coco
        src = CocoSource(
            kind="coco",
            name="coco_fx",
            images=d / "images",
            instances=d / "instances.json",
            captions=d / "captions.json",
        )
    else:
        src = recipe.sources[0].model_copy(update={"images_per_shard": args.scenes})
    images = build_shard(read_shard(src, 0), Limits()).images
    s1 = recipe.stages.questions_grounded
    s1 = s1.model_copy(update={"llm": s1.llm.model_copy(update={"enabled": False})})
    s2 = recipe.stages.questions_composed
    s2 = s2.model_copy(update={"rewrite": s2.rewrite.model_copy(update={"enabled": False})})

    if args.coco:  # COCO has no colour, texture or size
        s1 = s1.model_copy(update={"attributes": {}})
    skips1: Counter = Counter()
    rows = images.select(["image_id", "width", "height", "caption", "objects"]).to_pylist()
    exhaustive = getattr(src, "exhaustive", None)  # checkouts before the flag took every source as exhaustive
    extra = () if exhaustive is None else (exhaustive,)
    grounded = items_table(template_rows(rows, s1, src.name, skips1, *extra))
    composed = build_questions_composed(images, grounded, s2, s1, recipe.models, src.name, None, *extra)
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
    if args.coco:
        truth = json.loads((args.coco / "truth.json").read_text())
        names = {
            r["image_id"]: json.loads(r["metadata"])["file_name"]
            for r in images.select(["image_id", "metadata"]).to_pylist()
        }
        checker = checker_mod.Checker(vocab={}, margins=s1.margins.model_dump())
        all_rows = grounded.to_pylist() + composed.table.to_pylist()
        by_id = {r["question_id"]: r for r in all_rows if r["stage"] == 1}
        agree, total = Counter(), Counter()
        for r in all_rows:
            total[r["family"]] += 1
            agree[r["family"]] += not checker.check(
                r, {"image_id": r["image_id"], **truth[names[r["image_id"]]]}, by_id
            )
        out["agree_with_image"] = {f: [agree[f], total[f]] for f in sorted(total)}
        print("\nagree with what the image shows: " + ", ".join(f"{f} {agree[f]}/{total[f]}" for f in sorted(total)))
        a, t = sum(agree.values()), sum(total.values())
        print(f"  all: {a}/{t} ({a / max(1, t):.1%})")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    if args.root.resolve() == here:  # another checkout's code (--root) is that commit's figure, not this one's
        record_results(out, bool(args.coco))


def record_results(out: dict, coco: bool) -> None:
    """The summary's figure (benchmarks/results.py): on the COCO fixture, the golds that agree with the image; on
    the demo's scenes, the best blind baseline of the families with 100+ questions (the audit's limit: 35 %)."""
    from results import command_line, record

    if coco:
        a, t = (sum(x[i] for x in out["agree_with_image"].values()) for i in (0, 1))
        figure = "gold answers agreeing with the image, COCO-format fixture"
        cmd = "python benchmarks/fidelity.py --write-coco /tmp/cocofx && " + command_line()
        record("data quality", figure, f"{a} / {t} ({a / max(1, t) * 100:.1f} %)", command=cmd)
    elif "blind" in out:
        n = {f: out["stage1"].get(f, 0) + out["stage2"].get(f, 0) for f in out["blind"]}
        big = {f: max(b.items(), key=lambda kv: kv[1]) for f, b in out["blind"].items() if n[f] >= 100 and b}
        family, (feature, acc) = max(big.items(), key=lambda kv: kv[1][1])
        value = f"{acc * 100:.1f} % ({family}, {feature}), the highest of the {len(big)} families with 100+ questions"
        notes = f"{out['scenes']} demo scenes"
        figure = "best blind baseline, families with 100+ questions"
        record("data quality", figure, value + " (limit 35 %)", command=command_line(), notes=notes)


if __name__ == "__main__":
    main()
