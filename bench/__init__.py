"""Benchmarks: ``python -m bench [--quick] [--only SECTION]`` (``make bench`` / ``make bench-quick``).

Sections, in order (each writes its part of ``bench/results.json`` and prints a table):

1. ``fit``        fit time of every registered model on MovieLens-100K (default protocol)
2. ``live``       the live loop (re-fuse, re-rank, every metric, all users) for 2, 3 and 5 members
3. ``metrics``    our metrics against ranx and Microsoft Recommenders on the same rankings
4. ``fusion``     our fusion against ``ranx.fuse`` on the same runs
5. ``embeddings`` text embeddings: items per second cold, load time from the disk cache
6. ``scale``      MovieLens-100K, MovieLens-1M, synthetic 10M and 20M: time and peak memory per phase
7. ``sessions``   10 browser sessions on one dashboard server, and a 500-change soak (not in --quick)

Times are medians over repeats; comparisons are ratios of medians measured side by side in the same
run (the repeats of the compared codes alternate), because absolute times drift on a shared machine.
docs/benchmarks.md explains every figure. Nothing here runs as part of the tests.
"""
