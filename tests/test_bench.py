"""The speed harness runs end to end on tiny data, so its scripts cannot rot between GPU sessions.
Its timings are not checked here (bench/RESULTS.md holds them): its bookkeeping is."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from harness import Row, merge, table  # noqa: E402

pytestmark = pytest.mark.slow


def test_repeated_rows_merge_into_medians():
    rows = [Row("x", "a", "s", [3.0]), Row("x", "b", "s", [1.0]), Row("x", "a", "s", [1.0]),
            Row("x", "a", "s", [2.0])]
    merged = merge(rows)
    assert [(r.setting, r.values) for r in merged] == [("a", [3.0, 1.0, 2.0]), ("b", [1.0])]
    assert "| x | a | s | 2 | 3 | 1 - 3 |" in table(rows)


def test_pruning_item_counts_what_each_arm_trained(tiny_data):
    import pruning

    rows = {(r.setting, r.measure): r for r in merge(
        pruning.measure(tiny_data, trials=3, epochs=2, repeats=2, flags=["--device", "cpu"]))}
    unpruned = "3 trials, no pruner"
    assert rows[(unpruned, "wall s")].values[0] > 0 and len(rows[(unpruned, "wall s")].values) == 2
    assert rows[(unpruned, "trials pruned while training")].values == [0, 0]
    trained = [3 - r for r in rows[(unpruned, "rejected untrained (cost ceiling)")].values]
    assert rows[(unpruned, "epochs trained")].values == [2 * n for n in trained]  # no pruner: every epoch
    assert len(rows[("pruned / unpruned", "epochs")].values) == 2
