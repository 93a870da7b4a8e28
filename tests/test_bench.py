"""The speed harness runs end to end on tiny data, so its scripts cannot rot between GPU sessions.
Its timings are not checked here (bench/RESULTS.md holds them): its bookkeeping is."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
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


def test_harness_counts_as_the_engine_budgets():
    """An out-of-memory trial and one that diverged in its first epoch took budget though they record no
    epochs: only a trial the engine rejected (search/trial/budget.py) is "rejected untrained"."""
    import optuna
    from harness import StudyRun

    from search.trial.budget import reject

    study = optuna.create_study(direction="maximize")
    pruned = optuna.trial.TrialState.PRUNED
    study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={"epochs": 2}))
    study.add_trial(optuna.trial.create_trial(state=pruned, user_attrs={"epochs": 1}))  # the pruner's
    study.add_trial(optuna.trial.create_trial(state=pruned, user_attrs={"oom": True}))
    study.add_trial(optuna.trial.create_trial(state=pruned, user_attrs={"pruned_reason": "diverged in epoch 1"}))
    untrained = study.ask()
    reject(untrained, "too slow")
    study.tell(untrained, state=pruned)
    run = StudyRun(1.0, study, "")
    assert (run.trained, run.stopped, run.rejected) == (4, 3, 1)


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


def test_textbook_arm_trains_as_the_engine_does(tiny_data, monkeypatch):
    """The ratio is the pipeline's only if precision, layout and optimizer are the engine's in both arms:
    the textbook arm builds its optimizer and casts its forward pass through the engine's own functions."""
    import epoch_speed
    import torch

    from gic_common.configs import TrainConfig
    from search.data import load_dataset
    from search.trial import device as device_mod
    from search.trial import train

    built, casts = [], []
    monkeypatch.setattr(epoch_speed, "make_optimizer", lambda m, c: built.append(c) or train.make_optimizer(m, c))
    monkeypatch.setattr(epoch_speed, "autocast", lambda d: casts.append(d) or device_mod.autocast(d))
    ds = load_dataset(tiny_data)
    names = [line.split(",")[0] for line in (tiny_data / "train.csv").read_text().splitlines()[1:65]]
    paths = [tiny_data / "train_images" / n for n in names]
    mean, std = ds.stats()
    cfg = TrainConfig(optimizer="adam", lr=1e-3, batch_size=32, schedule="constant")
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, ds.num_classes))
    times = epoch_speed.textbook_epochs(model, paths, ds.train_y[:64], mean, std, cfg, 1, torch.device("cpu"), 0)
    assert len(times) == 1 and built == [cfg] and len(casts) == 2  # one cast a step, 2 steps of 32


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

    from search.trial.budget import reject

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


@pytest.fixture(scope="module")
def seed_sized_data(tmp_path_factory) -> Path:
    """48px images, the smallest side seed 000's valid convolutions fit: the check times that CNN."""
    from search.data.synth import generate

    root = tmp_path_factory.mktemp("data48") / "tiny48"
    generate(root, classes=5, size=48, train=128, val=64, test=16, seed=0)
    return root


def gpu_check(out: Path, *args: str, data: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "bench/gpu_check.py", *args, "--out", str(out), "--data", str(data),
         "--study-timeout", "120", "--study-flags", "--device cpu --trials 2 --epochs 1",
         "--batch", "32", "64", "--epochs", "2", "--limit", "96", "--workers", "0", "--compile", "--copy-mib", "8",
         "--device", "cpu", "--conc-data", str(data), "--conc-trials", "2", "--conc-epochs", "1", "--per-gpu", "1", "2",
         "--conc-flags", "--device cpu"],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300)


def figures(md: str) -> dict[tuple[str, str], float]:
    """A part's markdown table as (setting, measure) -> its median, read back as a number."""
    out = {}
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 6 and cells[0] != "item":
            out[(cells[1], cells[2])] = float(cells[3].rstrip("x").replace(",", ""))
    return out


def test_gpu_check_takes_the_first_verdict_epoch_from_the_study_preset():
    """The epoch the pruner first judges at is the preset's, for the variant the study's flags pick."""
    import gpu_check

    from search.config import load_preset

    quick, full = load_preset("cnn", "cpu").pruner, load_preset("cnn", "gpu").pruner
    assert gpu_check.first_verdict_epoch(["--device", "cpu", "--trials", "2"]) == quick["n_warmup_steps"]
    assert gpu_check.first_verdict_epoch(["--device", "cpu", "--for=gpu"]) == full["min_resource"]
    assert gpu_check.first_verdict_epoch(["--device", "cpu", "--pruner", "median"]) == quick["n_warmup_steps"]
    assert gpu_check.first_verdict_epoch(["--device", "cpu", "--pruner", "asha"]) == 1  # its defaults: no warm-up


def test_gpu_check_writes_every_part_table_from_a_real_run(seed_sized_data, tmp_path):
    import optuna
    from floor import activation_values, seed_cnn

    from search.workers.storage import load_study

    done = gpu_check(tmp_path, data=seed_sized_data)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["concurrency.md", "epoch.md", "study-output.log",
                                                          "study.log", "study.md"]
    for part in ("study", "epoch", "concurrency"):  # each table is also printed as its part ends
        assert (tmp_path / f"{part}.md").read_text().strip() in done.stdout

    study = figures((tmp_path / "study.md").read_text())
    run = "run cnn --timeout 120 --device cpu --trials 2 --epochs 1"
    assert study[(run, "trials trained (the budget)")] == 2
    assert study[(run, "epochs trained")] == 2  # one epoch for each trained trial
    best, seed = study[(run, "best value")], study[(run, "seed 000 design's value")]
    assert best >= seed
    assert study[(run, "best minus seed design, points")] == pytest.approx(100 * (best - seed), abs=0.06)
    beat = study[(run, "s until a trial first beat the seed design")]
    assert (0 < beat <= study[(run, "wall s, launch to exit")] + 1) if best > seed else math.isnan(beat)
    assert 0 <= study[(run, "share of trained trials near chance")] <= 1
    assert math.isnan(study[(run, "first-verdict rank correlation (epoch 3)")])  # the quick preset's; 2 trials
    # the storage the table was read from: the retrained trial is its best, and on the CPU retraining it
    # for the study's epochs with its own seed gives back its validation accuracy
    stored = load_study("gpu-check-cnn", f"journal://{tmp_path / 'study.log'}")
    assert stored.best_trial.number == study[("retrain the best", "trial retrained")]
    assert stored.best_value == pytest.approx(best, abs=5e-5)
    assert study[("retrain the best", "epochs")] == 1
    assert study[("retrain the best", "validation accuracy")] == pytest.approx(best, abs=5e-5)
    assert [t.user_attrs["design"] for t in stored.trials[:2]] == ["recommended", "seed000-cnn"]
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in stored.trials)

    epoch = figures((tmp_path / "epoch.md").read_text())
    bandwidth = epoch[("8 MiB copy", "bandwidth TB/s, read + written")]
    values, _ = activation_values(seed_cnn((3, 48, 48), 5), (3, 48, 48))
    floor = epoch[("seed CNN, 96 images of 48x48", "memory floor s/epoch at that bandwidth")]
    assert floor == pytest.approx(96 * values * 2 * 4 / (bandwidth * 1e12), rel=0.01)
    for batch in (32, 64):
        book = epoch[(f"seed CNN, batch {batch}, textbook", "s/epoch")]
        eager = epoch[(f"seed CNN, batch {batch}, engine eager", "s/epoch")]
        assert book > 0 and eager > 0
        assert epoch[(f"seed CNN, batch {batch}, engine eager", "x textbook")] == pytest.approx(book / eager, abs=0.06)
        assert epoch[(f"seed CNN, batch {batch}, engine eager", "x memory floor")] == pytest.approx(eager / floor,
                                                                                                    rel=0.01)
        assert epoch[(f"seed CNN, batch {batch}, textbook", "x memory floor")] == pytest.approx(book / floor, rel=0.01)

    conc = figures((tmp_path / "concurrency.md").read_text())
    rates = {m: conc[(f"2 trials of 1 epochs, {m} per GPU", "trials/hour")] for m in (1, 2)}
    for m, rate in rates.items():
        wall = conc[(f"2 trials of 1 epochs, {m} per GPU", "wall s")]
        assert rate == pytest.approx(2 * 3600 / wall, rel=0.1)  # the wall time is shown to the second
        assert conc[(f"2 trials of 1 epochs, {m} per GPU", "speed-up over 1 per GPU")] == pytest.approx(
            rate / rates[1], abs=0.006)


def test_gpu_check_part_cut_short_keeps_its_table_and_leaves_no_process(seed_sized_data, tmp_path):
    done = gpu_check(tmp_path, "study", "epoch", "--study-limit", "3", "--epoch-limit", "2", data=seed_sized_data)
    assert done.returncode == 1
    for part, limit in (("study", 3), ("epoch", 2)):
        md = (tmp_path / f"{part}.md").read_text()
        assert f"The {part} part was cut short at its {limit} s limit" in md and md.strip() in done.stdout
    assert not (tmp_path / "concurrency.md").exists()  # not asked for
    # the part's whole process group went: its `search run` too, whose command names this folder
    time.sleep(1)
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and str(tmp_path) in _cmdline(p)]
    assert not left, [_cmdline(p) for p in left]


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:  # it ended while we looked
        return ""


@pytest.mark.parametrize(("kind", "classes", "mode"), [("where", 12, "RGB"), ("late", 6, "RGB"), ("gray", 10, "L"),
                                                          ("count", 7, "RGB")])
def test_real_sets_build_each_kind_as_the_engine_loads_it(tmp_path, kind, classes, mode):
    import csv

    import real_sets
    from PIL import Image

    from search.data.options import DataOptions
    from search.trial.inputs import load_data

    out = tmp_path / kind
    answers = real_sets.build(kind, out, train=36, val=12, test=12, classes=6 if kind == "late" else None)
    assert answers == tmp_path / f"{kind}-answers.csv"  # beside the folder, where search_quality.py looks
    ds = load_data(out, DataOptions(), quiet=True)  # as search_quality.py's plain_answer loads it
    assert ds.num_classes == classes and ds.in_shape == (3, 48, 48)  # any PNG mode becomes RGB
    assert (len(ds.train_x), len(ds.val_x), len(ds.test_x)) == (36, 12, 12)
    assert ds.train_x.std() > 10  # real content, not flat colour
    assert Image.open(out / "train_images" / "train_00000.png").mode == mode
    with (out / "test.csv").open() as f:
        listed = [r["Image"] for r in csv.DictReader(f)]
    with answers.open() as f:
        truth = list(csv.DictReader(f))
    assert [r["Image"] for r in truth] == listed and all(r["Class"].isdigit() for r in truth)
    if kind != "gray":  # balanced by construction (gray draws its digits, so its counts vary)
        assert sorted(set(ds.train_y.tolist())) == list(range(classes))
    again = tmp_path / "again" / kind
    real_sets.build(kind, again, train=36, val=12, test=12, classes=6 if kind == "late" else None)
    assert (again / "val_images" / "val_00003.png").read_bytes() == (out / "val_images" / "val_00003.png").read_bytes()


def test_real_sets_where_is_decided_by_position_alone():
    """The same content at other places is another class, and every class draws its content alike,
    so a model blind to position cannot beat chance."""
    import numpy as np
    import real_sets

    content = real_sets.where_content(48, np.random.default_rng(3))
    pairs = real_sets.WHERE_PAIRS
    assert len(pairs) == 12 and sorted(real_sets.where_class(a, b) for a, b in pairs) == list(range(12))
    images = [real_sets.where_render(content, a, b) for a, b in pairs]
    for i in range(len(pairs)):  # identical content, 12 arrangements: 12 different images and classes
        for j in range(i):
            assert not np.array_equal(images[i], images[j])
    # swapping the two objects' places swaps nothing else: the pixels are the same multiset up to the
    # background they cover, and the class differs
    assert real_sets.where_class(0, 3) != real_sets.where_class(3, 0)
    # the digit and the photo patch keep their pixels wherever they go
    photo = content["photo"]
    a = real_sets.where_render(content, 1, 2)
    h = 24
    y, x = content["photo_at"]
    assert np.array_equal(a[h + y : h + y + photo.shape[0], x : x + photo.shape[1]], photo)
    b = real_sets.where_render(content, 2, 1)
    assert np.array_equal(b[y : y + photo.shape[0], h + x : h + x + photo.shape[1]], photo)


def test_real_sets_count_places_as_many_things_as_its_class_none_touching(tmp_path):
    import numpy as np
    import real_sets

    rng = np.random.default_rng(5)
    sides = set()
    for many in range(1, real_sets.COUNT_MOST + 1):
        for _ in range(20):
            things = real_sets.count_things(48, many, rng)
            assert len(things) == many
            for i, (y, x, side) in enumerate(things):
                assert min(y, x) >= 0 and max(y, x) + side <= 48
                sides.add(side)
                for py, px, ps in things[:i]:  # a pixel's gap at least: two things never read as one
                    assert y + side < py or py + ps < y or x + side < px or px + ps < x
    assert sides == set(range(*real_sets.COUNT_SIDES))  # every size, for every count: area is no sure cue
    with pytest.raises(SystemExit, match="do not fit"):  # a canvas too small is one line, not a loop for ever
        real_sets.count_things(16, real_sets.COUNT_MOST, rng)
    with pytest.raises(SystemExit, match="fixed"):  # refused before anything is written
        real_sets.build("count", tmp_path / "three", classes=3)
    assert not (tmp_path / "three").exists()


def test_question_table_keeps_the_latest_run_and_takes_margins_over_the_better_fixed_design(tmp_path):
    from question_table import latest, tables

    def row(arm, seed, acc, **more):
        return json.dumps({"data": "set", "arm": arm, "seed": seed, "accuracy": acc, "seconds": 700,
                           "limit": 720, **more})

    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    old.write_text("\n".join([row("engine in 720s (1 core)", 0, 0.50), row("seed", 0, 0.60),
                              row("recommended", 0, 0.70), row("seed", 1, None)]) + "\n")
    new.write_text("\n".join([row("engine", 0, 0.80), row("engine", 0, 0.90, flags="--final-on train+val"),
                              row("engine", 1, 0.40), row("recommended", 1, 0.55),
                              row("recommended-tv", 1, 0.45)]) + "\n")
    rows = latest([old, new])
    assert rows[("set", "engine", 0)]["accuracy"] == 0.80  # the rerun replaced the first run
    assert ("set", "engine --final-on train+val", 0) in rows and ("set", "seed", 1) not in rows
    summary = tables(rows).splitlines()[-1]
    # seed 0 has all three arms: 80 - max(60, 70); seed 1 lacks the seed arm, so only its margin over
    # the recommended design (40 - 55) counts beside seed 0's (80 - 70); only seed 1 ran the
    # recommended design on train+val (40 - 45).
    assert summary == ("| set | 1 of 2 | 60.0 (40.0 to 80.0) | 60.0 | 62.5 (55.0 to 70.0) | +10.0 | "
                       "-2.5 (-15.0 to +10.0) | 45.0 | -5.0 |")


def test_question_table_reads_each_engine_run_against_every_plain_run_of_its_seed(tmp_path):
    from question_table import latest, plain_runs, pooled_table

    def row(arm, seed, acc):
        return json.dumps({"data": "set", "arm": arm, "seed": seed, "accuracy": acc, "seconds": 700, "limit": 720})

    earlier, now = tmp_path / "earlier.jsonl", tmp_path / "now.jsonl"
    earlier.write_text("\n".join([row("recommended-tv", 0, 0.90), row("recommended-tv", 0, 0.94),
                                  row("engine", 0, 0.10), row("recommended-tv", 1, None)]) + "\n")
    now.write_text("\n".join([row("engine", 0, 0.91), row("recommended-tv", 0, 0.93), row("engine", 1, 0.80),
                              row("seed", 1, 0.70)]) + "\n")
    runs = plain_runs([earlier, now])
    assert runs == {("set", "recommended-tv", 0): [90.0, 94.0, 93.0], ("set", "seed", 1): [70.0]}  # engines left out
    lines = pooled_table(latest([now]), runs).splitlines()
    # seed 0's engine (91) against the median of all three plain runs (93), not the one beside it alone;
    # the earlier engine run is not one of this batch's
    assert "| set | 0 | 91.0 | recommended-tv | 3 | 93.0 | -2.0 |" in lines
    assert "| set | 1 | 80.0 | seed | 1 | 70.0 | +10.0 |" in lines
    assert lines[-2:] == ["| set | recommended-tv | 1 | -2.0 |", "| set | seed | 1 | +10.0 |"]


def test_fidelity_scores_each_verdict_against_the_long_runs(tmp_path, capsys):
    import fidelity

    from search.data.synth import generate

    data = tmp_path / "tiny48"  # seed 000's valid convolutions need 48px
    generate(data, classes=4, size=48, train=96, val=48, test=8, seed=0)
    rows = tmp_path / "rows.jsonl"
    fidelity.main_args(["run", "--data", str(data), "--draws", "1", "--short", "3", "--long", "4", "--out", str(rows)])
    lines = [json.loads(x) for x in rows.read_text().splitlines()]
    runs = {(r["design"], r["run"]): r["epochs"] for r in lines}
    assert runs == {(d, k): n for d in ("seed", "recommended", "draw1") for k, n in (("short", 3), ("long", 4))}
    assert len(lines) == 3 * (3 + 4)
    first = [r for r in lines if r["epoch"] == 1]
    assert all("params" in r for r in first)
    draw = next(r["params"] for r in first if r["design"] == "draw1")
    assert draw["head"] == "avg" and draw["padding"] == "same"  # inside the priors' regions

    fidelity.main_args(["table", str(rows)])
    out = capsys.readouterr().out
    assert "| tiny48 | 0 | 3 | final at epoch 4 |" in out
    for fid in ("trial at epoch 3", "rung at epoch 2 of the long run", "extrapolated from epoch 3",
                "the 2 best trials at epoch 3, promoted"):
        assert fid in out


def test_fidelity_verdicts_and_extrapolation_on_known_curves():
    import fidelity

    law = [0.9 - 0.8 * e ** -0.7 for e in range(1, 7)]
    assert abs(fidelity.extrapolate(law, 30) - (0.9 - 0.8 * 30 ** -0.7)) < 0.01
    curves = {("a", "short"): [0.1, 0.2, 0.5, 0.5], ("a", "long"): [0.1, 0.1, 0.2, 0.3, 0.4, 0.9],
              ("b", "short"): [0.1, 0.3, 0.4, 0.6], ("b", "long"): [0.2, 0.3, 0.4, 0.5, 0.5, 0.6]}
    v = fidelity.verdicts(curves, short=4, long=6)
    assert v["trial at epoch 3"] == {"a": 0.5, "b": 0.4}
    assert v["trial at epoch 4"] == {"a": 0.5, "b": 0.6}
    assert v["rung at epoch 3 of the long run"] == {"a": 0.2, "b": 0.4}


@pytest.mark.parametrize("argv, says", [
    (["run", "--data", "{tmp}", "--short", "2", "--out", "{tmp}/r"], "--short 2: must be at least 3"),
    (["run", "--data", "{tmp}", "--short", "6", "--long", "4", "--out", "{tmp}/r"], "--long 4: must be at least"),
    (["run", "--data", "{tmp}/nothing", "--out", "{tmp}/r"], "no such folder"),
    (["table", "{tmp}/nothing.jsonl"], "no such rows file"),
])
def test_fidelity_refuses_bad_arguments_in_one_line(tmp_path, capsys, argv, says):
    import fidelity

    with pytest.raises(SystemExit):
        fidelity.main_args([a.format(tmp=tmp_path) for a in argv])
    assert says in capsys.readouterr().err


def test_fidelity_table_names_the_line_that_is_not_a_row(tmp_path):
    import fidelity

    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"data": "x", "seed": 0, "design": "a", "run": "short", "epochs": 6, "epoch": 1, '
                    '"accuracy": 0.1}\n{"data": "x"\n')
    with pytest.raises(SystemExit, match=r"rows.jsonl:2: not a row"):
        fidelity.main_args(["table", str(rows)])


def test_challenger_rules_replays_the_jobs_pruner_at_each_lead(tmp_path, capsys):
    import challenger_rules

    # photos-48px's recorded 6-epoch curves (500 validation images): draw1 leads the recommended design
    # at every epoch, once by less than one standard error; the seed design is level at epoch 1
    short = {"recommended": [0.148, 0.334, 0.358, 0.384, 0.460, 0.504],
             "draw1": [0.216, 0.344, 0.428, 0.494, 0.542, 0.572], "seed": [0.148, 0.198, 0.252, 0.254, 0.280, 0.338]}
    long = {"recommended": 0.610, "draw1": 0.654, "seed": 0.474}
    rows = [{"data": "photos", "design": d, "run": "short", "epoch": e, "accuracy": a, "chance": 1 / 64,
             "seconds": 12.0 * e} for d, curve in short.items() for e, a in enumerate(curve, start=1)]
    rows += [{"data": "photos", "design": d, "run": "long", "epoch": 16, "accuracy": a, "chance": 1 / 64,
              "seconds": 192.0} for d, a in long.items()]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "val.csv").write_text("Image,Class\n" + "x.png,0\n" * 500)
    challenger_rules.main([str(tmp_path / "rows.jsonl"), "--leads", "1", "0", "--data-root", str(tmp_path)])
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| photos")]
    assert table == ["| photos | 1 | draw1 2, seed 1 | 3.0 | recommended (+0.0) |",
                     "| photos | 0 | draw1 -, seed 1 | 7.0 | draw1 (+4.4) |"]
    # a set whose files are missing is named in one line
    with pytest.raises(SystemExit, match="val.csv is missing"):
        challenger_rules.main([str(tmp_path / "rows.jsonl"), "--data-root", str(tmp_path / "nowhere")])
