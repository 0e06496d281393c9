"""Independent oracles that tests/ and benchmarks/ both judge the engine against, so neither imports the other.

`checker.Checker` re-derives every gold answer from the scene truth with code of its own (none of lgt/'s question
logic); `coco_fixture.write_coco_fixture` writes a COCO-format data set with known flaws and that truth.
"""
