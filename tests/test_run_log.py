"""The run log's one line per partition: the funnel, then the largest drop reasons with their counts."""

from lgt.preview import funnel_line


def test_reasons_largest_first_with_counts():
    funnel = {"images": 73, "template/rendered": 956}
    rejects = {"skip/near_tie": 28, "skip/ambiguous_reference": 5015, "verifier_failed": 0}
    assert funnel_line(funnel, rejects) == (
        "images 73 -> template/rendered 956; dropped 5,043: skip/ambiguous_reference 5,015, skip/near_tie 28"
    )


def test_at_most_limit_reasons_then_how_many_more():
    rejects = {f"r{i}": 10 + i for i in range(11)}  # r10 largest (20), r0 smallest (10)
    line = funnel_line({"rows": 500}, rejects, limit=8)
    assert line == ("rows 500; dropped 165: r10 20, r9 19, r8 18, r7 17, r6 16, r5 15, r4 14, r3 13 and 3 more")


def test_ties_are_ordered_by_name_and_nothing_dropped_says_so():
    assert funnel_line({"a": 2}, {"z": 1, "b": 1}) == "a 2; dropped 2: b 1, z 1"
    assert funnel_line({"rows": 3, "images": 3}, {}, dropped="quarantined") == "rows 3 -> images 3; nothing quarantined"
