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
    # no pruner: every epoch of the 3 trials the budget counts (a rejected trial trains none)
    assert rows[(unpruned, "epochs trained")].values == [2 * 3, 2 * 3]
    assert len(rows[("pruned / unpruned", "epochs")].values) == 2


def test_space_draws_breaks_random_draws_down_by_parameter(tiny_data):
    import space_draws

    rows, draws = space_draws.measure("cnn", tiny_data, trials=4, epochs=1, chance=0.5, repeats=1,
                                      flags=["--device", "cpu"])
    rows = {r.measure: r.values for r in merge(rows)}
    trained = rows["random draws trained"][0]
    assert trained == len(draws) == 3  # the seed design is the 4th; rejected draws take no budget
    assert all(t.user_attrs.get("design") is None for t in draws)
    assert 0 <= rows["share near chance (< 1)"][0] <= 1
    groups = space_draws.groups(draws, "optimizer")
    assert sum(len(v) for v in groups.values()) == len(draws)
    assert set(groups) <= {"adam", "adamw", "sgd", "rmsprop"}
    lr = space_draws.groups(draws, "lr")  # a number: split at the drawn median
    assert all(label.startswith(("<", ">=")) for label in lr)
    assert space_draws.breakdown(draws, 1.0, top=3).startswith("| parameter |")


def test_floor_counts_every_layer_output_of_one_image():
    import floor
    from torch import nn

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 2))
    values, layers = floor.activation_values(model, (3, 8, 8))
    assert [n for *_, n in layers] == [4 * 6 * 6, 4 * 6 * 6, 4 * 3 * 3, 36, 2]
    assert values == 144 + 144 + 36 + 36 + 2


def test_photo_patches_builds_a_real_image_benchmark_in_the_gic_layout(tmp_path):
    import photo_patches

    from search.data.loader import load_dataset

    answers = photo_patches.build(tmp_path / "photos", classes=6, size=24, train=36, val=12, test=12)
    ds = load_dataset(tmp_path / "photos")
    assert ds.train_x.shape == (36, 24, 24, 3) or ds.train_x.shape == (36, 3, 24, 24)
    assert sorted(set(ds.train_y.tolist())) == list(range(6))  # balanced: every region is a class
    assert ds.train_x.std() > 10  # photographs, not flat colour
    assert answers.read_text().count("\n") == 13 and "Class" not in (tmp_path / "photos" / "test.csv").read_text()


def test_search_quality_reads_a_study_as_a_user_judges_it():
    """Best minus the seed design, trials near chance and the time to beat the design, from the storage."""
    import datetime

    import optuna
    import search_quality

    from search.budget import reject

    study = optuna.create_study(direction="maximize")
    start = datetime.datetime(2026, 1, 1)
    curves = {"seed000-cnn": [0.10, 0.20], None: [0.05, 0.08], "x": [0.25, 0.40]}  # 10 classes: chance 0.1
    for i, (design, curve) in enumerate(curves.items()):
        trial = optuna.trial.create_trial(
            value=curve[-1], intermediate_values=dict(enumerate(curve, 1)),
            user_attrs={"design": design, "per_class_f1": [0.0] * 10} if design else {})
        trial.datetime_start = start + datetime.timedelta(seconds=10 * i)
        trial.datetime_complete = start + datetime.timedelta(seconds=10 * i + 10)
        study.add_trial(trial)
    untrained = study.ask()
    reject(untrained, "too slow")
    study.tell(untrained, state=optuna.trial.TrialState.PRUNED)
    figures = search_quality.study_figures(study, timeout=60)
    assert figures["gain points"] == pytest.approx(20.0)
    assert figures["near chance share"] == pytest.approx(1 / 3)  # 0.08 only: under twice chance
    assert figures["seconds to beat seed"] == 30 and figures["share of budget to beat seed"] == 0.5
    assert (figures["trials trained"], figures["rejected untrained"]) == (3, 1)
