"""Every sampler and pruner by name: each runs a real 2-trial study on tiny data, and each pruner,
driven with ask/report and no training, stops a clearly bad trial."""

from __future__ import annotations

from dataclasses import replace

import optuna
import pytest

import search.workers.run
import spaces.mlp
from gic_common.configs import TrainConfig
from gic_models.mlp import MLPSpec
from search.config import StudyConfig, load_preset
from search.workers.run import run_study
from search.workers.samplers import PRUNERS, SAMPLERS, make_pruner, make_sampler
from search.workers.storage import open_storage, open_study
from spaces.common import TrialConfig

SAMPLER_CLASSES = {"tpe": "TPESampler", "random": "RandomSampler", "cmaes": "CmaEsSampler", "gp": "GPSampler",
                   "qmc": "QMCSampler", "grid": "PartialFixedSampler", "nsga2": "NSGAIISampler",
                   "nsga3": "NSGAIIISampler"}
PRUNER_CLASSES = {"median": "MedianPruner", "percentile": "PercentilePruner", "asha": "SuccessiveHalvingPruner",
                  "hyperband": "HyperbandPruner", "patient": "PatientPruner", "wilcoxon": "WilcoxonPruner",
                  "none": "NopPruner"}


def test_every_name_is_tested():
    assert set(SAMPLER_CLASSES) == set(SAMPLERS) and set(PRUNER_CLASSES) == set(PRUNERS)


class TinySpace:
    """The mlp family with a few narrow layers and fixed light training: every kind of parameter a
    sampler must handle (int, log-float, categorical, conditional), at a second a trial."""

    SEED_DESIGNS: dict = {}  # both trials are the sampler's own choice

    @staticmethod
    def suggest(trial: optuna.Trial) -> TrialConfig:
        n_layers = trial.suggest_int("n_layers", 1, 2)
        arch = MLPSpec(units=tuple(trial.suggest_int(f"units_l{i}", 8, 32, log=True) for i in range(n_layers)),
                       dropout=(0.0,) * n_layers)
        optimizer = trial.suggest_categorical("optimizer", ["adam", "sgd"])
        train = TrainConfig(optimizer=optimizer, lr=trial.suggest_float("lr", 1e-3, 1e-1, log=True),
                            momentum=trial.suggest_float("momentum", 0.8, 0.99) if optimizer == "sgd" else 0.9,
                            batch_size=100, schedule="constant")
        return TrialConfig("mlp", arch, train)


def tiny_study(tmp_path, tiny_data, monkeypatch, space=TinySpace, space_name="mlp", **settings) -> optuna.Study:
    monkeypatch.setattr(search.workers.run, "get_space", lambda name: space)
    cfg = StudyConfig(space=space_name, data=tiny_data, storage=f"sqlite:///{tmp_path / 's.db'}", study="t",
                      trials=2, epochs=1, device="cpu")
    return run_study(replace(cfg, **settings), progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in SAMPLER_CLASSES if n != "grid"])
def test_every_sampler_runs_a_study(name, tmp_path, tiny_data, monkeypatch):
    study = tiny_study(tmp_path, tiny_data, monkeypatch, sampler={"name": name})
    assert type(study.sampler).__name__ == SAMPLER_CLASSES[name]
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 2 and trials[0].params != trials[1].params
    for trial in trials:  # every sampled point is a point of the space
        TinySpace.suggest(optuna.trial.FixedTrial(trial.params))


@pytest.mark.slow
def test_grid_preset_walks_seed_003s_grid(tmp_path, tiny_data, monkeypatch):
    # The real mlp space: the grid preset must pin every parameter outside its grid.
    preset = load_preset("mlp-grid", "cpu")
    monkeypatch.setattr(spaces.mlp, "SEED_DESIGNS", {})
    study = tiny_study(tmp_path, tiny_data, monkeypatch, space=spaces.mlp, sampler=preset.sampler,
                       pruner=preset.pruner)
    grid = preset.sampler["search_space"]
    assert len(grid["units_l0"]) * len(grid["lr"]) * len(grid["optimizer"]) == preset.trials == 27
    points = set()
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert trial.params["n_layers"] == 1 and trial.params["batch_size"] == 32  # pinned
        point = (trial.params["units_l0"], trial.params["lr"], trial.params["optimizer"])
        assert point[0] in grid["units_l0"] and point[1] in grid["lr"] and point[2] in grid["optimizer"]
        points.add(point)
    assert len(points) == 2  # a grid never repeats a point


@pytest.mark.slow
@pytest.mark.parametrize("name", PRUNER_CLASSES)
def test_every_pruner_runs_a_study(name, tmp_path, tiny_data, monkeypatch):
    study = tiny_study(tmp_path, tiny_data, monkeypatch, pruner={"name": name}, epochs=2)
    assert type(study.pruner).__name__ == PRUNER_CLASSES[name]
    assert len(study.trials) == 2
    for trial in study.trials:
        assert trial.state.is_finished() and set(trial.intermediate_values) == {1, 2}  # reported each epoch


@pytest.mark.parametrize("name", [n for n in PRUNER_CLASSES if n != "none"])
def test_every_pruner_stops_a_clearly_bad_trial(name):
    settings = {"name": name, **({"patience": 2} if name == "patient" else {})}
    # A fixed name: Hyperband files each trial into a bracket by a hash of the study's name and the
    # trial's number, and with a random name the bad trial sometimes lands in a bracket of its own.
    study = optuna.create_study(study_name="pruners", direction="maximize", pruner=make_pruner(settings),
                                sampler=make_sampler({}, 0))
    epochs = 10
    curve = [0.2 + 0.5 * (1 - 0.7**e) for e in range(1, epochs + 1)]
    for i in range(8):  # healthy trials, each a little different, fill the pruner's history
        trial = study.ask()
        for epoch, value in enumerate(curve, start=1):
            trial.report(value + 0.001 * i, epoch)
            trial.should_prune()
        study.tell(trial, curve[-1] + 0.001 * i)
    trial = study.ask()
    for epoch in range(1, epochs + 1):
        trial.report(0.02 - 0.001 * epoch, epoch)  # chance level and sinking: below every healthy trial
        if trial.should_prune():
            break
    assert epoch < epochs, f"{name} let a chance-level trial train to the end"


def test_a_preset_setting_the_sampler_does_not_take_is_one_clear_error():
    from gic_common.errors import UserError

    with pytest.raises(UserError, match=r"sampler 'random': bad setting .*n_startup_trials"):
        make_sampler({"name": "random", "n_startup_trials": 3}, 0)
    with pytest.raises(UserError, match="grid needs a"):
        make_sampler({"name": "grid"}, 0)


@pytest.mark.slow
def test_sampler_and_pruner_flags(tmp_path, tiny_data, capsys):
    from search.cli import main

    common = ["--data", str(tiny_data), "--storage", f"sqlite:///{tmp_path / 's.db'}", "--device", "cpu",
              "--no-progress", "--epochs", "1", "--trials", "1"]
    assert main(["run", "mlp", *common, "--sampler", "nope"]) == 2
    assert "known samplers: tpe, random, cmaes, gp, qmc, grid, nsga2, nsga3" in capsys.readouterr().err
    assert main(["run", "mlp", *common, "--pruner", "nope"]) == 2
    assert "known pruners: hyperband, median, percentile, asha, patient, wilcoxon, none" in capsys.readouterr().err
    # The preset's TPE settings (n_startup_trials) are not handed to the random sampler the flag names.
    assert main(["run", "mlp", *common, "--sampler", "random", "--pruner", "percentile", "--study", "f"]) == 0
    study = optuna.load_study(study_name="f", storage=f"sqlite:///{tmp_path / 's.db'}")
    assert study.trials[0].user_attrs["design"] == "recommended"  # queued trials run under any sampler


@pytest.mark.slow
def test_a_resumed_study_samples_new_configurations(tmp_path, tiny_data, monkeypatch):
    # Both runs are in TPE's random start-up phase: seeded with the study seed again, the second run
    # would draw its first trial exactly as the first run drew its own, and train it a second time.
    tiny_study(tmp_path, tiny_data, monkeypatch, trials=1)
    study = tiny_study(tmp_path, tiny_data, monkeypatch, trials=2)
    first, second = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert first.params != second.params


def test_a_one_element_directions_list_keeps_its_direction(tmp_path):
    # A single cost objective is minimised; open_study used to drop a one-element list and maximise.
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = open_study("one", storage, optuna.samplers.RandomSampler(0), optuna.pruners.NopPruner(),
                       directions=["minimize"])
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    both = open_study("two", storage, optuna.samplers.RandomSampler(0),
                      optuna.pruners.NopPruner(), directions=["maximize", "minimize"])
    assert both.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
