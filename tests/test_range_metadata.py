"""A ranged step's one materialization: counts summed, each partition's funnel kept for the dataset card."""

import dagster as dg

from lgt_assets.factory import range_metadata


def test_range_metadata_sums_counts_and_keeps_each_partitions_funnel():
    a = {
        "dagster/row_count": 3,
        "funnel_counts": dg.MetadataValue.json([["questions", 10], ["kept", 3]]),
        "rejects_by_reason": dg.MetadataValue.json({"x": 1}),
        "by_family": dg.MetadataValue.json({"f": 2}),
        "seconds": 4.0,
        "preview": dg.MetadataValue.md("A"),
        "model": "m",
    }
    b = {
        "dagster/row_count": 5,
        "funnel_counts": dg.MetadataValue.json([["questions", 7], ["kept", 5]]),
        "rejects_by_reason": dg.MetadataValue.json({"x": 2, "y": 1}),
        "by_family": dg.MetadataValue.json({"f": 1, "g": 4}),
        "seconds": 6.5,
        "preview": dg.MetadataValue.md("B"),
        "model": "m",
    }
    out = range_metadata({"s/0": a, "s/1": b})
    assert out["partitions"].value == ["s/0", "s/1"]
    assert out["dagster/row_count"] == 8
    assert out["funnel_counts"].value == [["questions", 17], ["kept", 8]]
    assert out["funnel_counts_by_partition"].value == {
        "s/0": [["questions", 10], ["kept", 3]],
        "s/1": [["questions", 7], ["kept", 5]],
    }
    assert out["rejects_by_reason"].value == {"x": 3, "y": 1}
    assert out["rejects_by_reason_by_partition"].value == {"s/0": {"x": 1}, "s/1": {"x": 2, "y": 1}}
    assert out["by_family"].value == {"f": 3, "g": 4}
    assert out["seconds"] == 6.5  # side by side: the slowest partition
    assert out["preview"].value == "**s/0**\n\nA\n\n**s/1**\n\nB"
    assert out["model"] == "m"
