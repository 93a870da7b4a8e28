"""A study's settings: a TOML preset (see load_preset), then the command line's flags on top."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomllib

from gic_common.errors import UserError
from search.data.options import DATA_SETTINGS, DataOptions
from search.places import PRESETS, studies_dir, synth_dir
from search.trial.choices import COMPILE_MODES, METRICS

__all__ = ["StudyConfig", "default_storage", "load_preset"]

SYNTH_KEYS = ("classes", "size", "train")  # what names the benchmark's folder; the rest have defaults
SYNTH_SETTINGS = {"classes", "size", "train", "val", "test", "seed", "difficulty"}  # search.data.synth.generate's


def default_storage() -> str:
    """One SQLite file in studies/: right for one process; many workers need an RDB or journal."""
    return f"sqlite:///{studies_dir() / 'search.db'}"


@dataclass(frozen=True)
class StudyConfig:
    space: str
    data: Path | None = None  # None: the embedded synthetic benchmark described by `synth`
    synth: dict[str, int] = field(default_factory=dict)
    study: str | None = None
    storage: str | None = None
    trials: int | None = 20
    timeout: float | None = None
    epochs: int = 10
    device: str = "auto"
    seed: int = 0
    metric: str = "auto"  # auto: the task's default (search.trial.choices.TASK_METRICS)
    # True when `metric` is the preset's rather than the user's: a preset is written for one kind of
    # data, so its metric gives way to the task's default where the task lacks it (run.resolve_metric)
    metric_from_preset: bool = False
    sampler: dict[str, Any] = field(default_factory=lambda: {"name": "tpe"})
    pruner: dict[str, Any] = field(default_factory=lambda: {"name": "hyperband"})
    preset: str = ""
    data_options: DataOptions = DataOptions()  # how the data is read and split; its split seed is `seed`
    heartbeat: int | None = 30  # seconds between a running trial's heartbeats; None: off (workers/storage.py)
    objectives: str | None = None  # "accuracy,params": multi-objective (search/trial/pareto.py); None: `metric`
    front: dict[str, Any] = field(default_factory=dict)  # multi-objective pruning (pareto.FrontRules)
    from_study: str | None = None  # warm start: enqueue the best `warm_start` trials of this study
    warm_start: int = 5
    max_mflops: float | None = None  # trials whose network costs more an image are rejected untrained
    # torch.compile mode for each trial's forward pass (search.trial.choices.COMPILE_MODES); None: eager. Compiling
    # costs seconds per architecture: bench/RESULTS.md says when a study's trials earn it back.
    compile: str | None = None
    # "on": the start-up trials draw from the space's priors and its recommended design is queued
    # (search/workers/prior_sampler.py); "off": uniform start-up draws, the seed designs only (for comparison)
    prior: str = "on"
    # `run --time T` (search/job/plan.py): the most of T the search may take, and how many trials without
    # a new best end it early; the rest of T goes to the winner's final run
    search_share: float = 0.4
    search_patience: int = 6
    # What that final run trains on: "train+val" gives it the validation images too (a quarter more data
    # on a GIC split, at the same steps: it beat "train" in pairs on both real sets tried, bench/RESULTS.md)
    # and its score is then not honest; "train" keeps that score held out (multi-label keeps it anyway)
    final_on: str = "train+val"
    # The settings the command line named: a continued study keeps its recorded value of every other
    # one (search/workers/resume.py). None: all of them are deliberate (a config built in code, a worker's).
    given: frozenset[str] | None = None

    def __post_init__(self) -> None:  # one seed: the splits move with the study's seed, as they always did
        if self.data_options.split_seed != self.seed:
            object.__setattr__(self, "data_options", replace(self.data_options, split_seed=self.seed))

    def data_dir(self) -> Path:
        if self.data is not None:
            return self.data
        missing = [k for k in SYNTH_KEYS if k not in self.synth]
        if missing:
            raise UserError(f"no --data, and preset {self.preset or self.space!r} describes no synthetic benchmark "
                            f"to make (its [synth] table lacks {', '.join(missing)}): give --data DIR")
        return synth_dir(self.synth)

    def study_name(self) -> str:
        return self.study or f"{self.space}-{self.data_dir().name}"

    def storage_url(self) -> str:
        if self.storage is None:  # `run` makes the default storage; `best` and the others only look for it
            studies_dir().mkdir(exist_ok=True)
        return self.storage or default_storage()

    def checked(self) -> StudyConfig:
        """These settings with every value checked (one line naming a wrong one), and a preset's
        ``compile = "off"`` (TOML has no None) read as eager."""
        if self.metric != "auto" and self.metric not in METRICS:
            raise UserError(f"unknown metric {self.metric!r}; known: auto, {', '.join(sorted(METRICS))}")
        checked = replace(self, compile=None) if self.compile == "off" else self
        if checked.compile is not None and checked.compile not in COMPILE_MODES:
            raise UserError(f"unknown compile mode {checked.compile!r}; known: off, {', '.join(COMPILE_MODES)}")
        if checked.prior not in ("on", "off"):
            raise UserError(f"prior must be on or off, not {checked.prior!r}")
        if not 0 < checked.search_share < 1:
            raise UserError(f"search_share must be between 0 and 1 (a share of --time), not {checked.search_share!r}")
        if checked.final_on not in ("train", "train+val"):
            raise UserError(f"final_on must be train or train+val, not {checked.final_on!r}")
        if checked.search_patience < 1:
            raise UserError(f"search_patience must be at least 1 trial, not {checked.search_patience!r}")
        return checked

    def to_attrs(self, task: str) -> dict[str, Any]:
        """What a study records of these settings (its user attributes), once the data have decided
        ``task`` and ``metric`` is resolved for it; ``of_study`` reads them back."""
        return {
            "space": self.space, "data": str(self.data_dir().resolve()), "metric": self.metric,
            "epochs": self.epochs, "seed": self.seed, "preset": self.preset, "task": task,
            "data_options": self.data_options.to_json(), "objectives": self.objectives, "trials": self.trials,
            "sampler": self.sampler, "pruner": self.pruner, "front": self.front, "max_mflops": self.max_mflops,
            "compile": self.compile, "prior": self.prior,
        }

    @classmethod
    def of_study(cls, study, **overrides: Any) -> StudyConfig:
        """The settings a study `run` made recorded (``to_attrs``), with ``overrides`` on top (a
        worker's own device, timeout, heartbeat). A setting the study does not record has its
        default, or for the few in RECORDED_BEFORE the value studies recorded before it meant."""
        attrs = study.user_attrs
        missing = [k for k in REQUIRED_ATTRS if k not in attrs]
        if missing:
            raise UserError(f"study {study.study_name!r} was not made by `run` (it records no {', '.join(missing)}); "
                            f"only a study `run` made can be retrained, rerun or joined")
        recorded = {k: attrs[k] for k in RECORDED if k in attrs}  # a recorded None (no trial limit) included
        values = {**RECORDED_BEFORE, **recorded, "data_options": DataOptions.from_json(attrs.get("data_options")),
                  "data": Path(attrs["data"]), "epochs": int(attrs["epochs"]), "study": study.study_name,
                  **overrides}
        if values.get("front") is None:
            values["front"] = {}
        return cls(**values)


# What `of_study` needs, what it reads back, and what a study that records none of a setting meant
# by it: no prior was recorded before priors existed, and a study with no metric was read as scored
# by accuracy (what `rerun` always assumed).
REQUIRED_ATTRS = ("space", "data", "epochs")
RECORDED = ("space", "epochs", "seed", "metric", "preset", "objectives", "trials", "sampler", "pruner", "front",
            "max_mflops", "compile", "prior")
RECORDED_BEFORE = {"prior": "off", "metric": "accuracy"}


# What a preset may set: every StudyConfig field but `preset` (the file's own name), `metric_from_preset` and
# `given` (where a value came from), with the data options as keys of their own, as their flags are.
SETTINGS = {*StudyConfig.__dataclass_fields__, *DATA_SETTINGS} - {"preset", "metric_from_preset", "given",
                                                               "data_options"}
KNOWN_KEYS = SETTINGS | {"cpu"}


def _check_keys(path: Path, table: dict, known: set[str], where: str = "") -> None:
    unknown = set(table) - known
    if unknown:
        raise UserError(f"{path}: unknown setting {where}{sorted(unknown)[0]!r}; known: {', '.join(sorted(known))}")


def load_preset(name: str, variant: str) -> StudyConfig:
    """Reads NAME.toml from studies/ of the working folder, else the package's own. ``variant`` "cpu" applies
    its [cpu] table on top of the rest (the quick study a laptop finishes); anything else ("gpu", or a device
    type such as "cuda") is the full study. The caller decides which: the hardware the trials will run on,
    not necessarily this machine's (`run --for`)."""
    folders = (studies_dir(), PRESETS)  # the user's first: one of theirs replaces the shipped one of its name
    path = next((f / f"{name}.toml" for f in folders if (f / f"{name}.toml").is_file()), None)
    if path is None:
        known = sorted({p.stem for f in folders for p in f.glob("*.toml")})
        raise UserError(f"no study preset {name!r} in {folders[0]} or the package; known presets: {', '.join(known)}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML ({e})") from None
    _check_keys(path, raw, KNOWN_KEYS)
    cpu = raw.pop("cpu", {})
    if not isinstance(cpu, dict):
        raise UserError(f"{path}: `cpu` must be a table ([cpu]) of settings for the CPU variant")
    _check_keys(path, cpu, SETTINGS, "in [cpu] ")  # checked whatever the variant: a typo fails everywhere
    if not isinstance(raw.get("synth", {}), dict) or not isinstance(cpu.get("synth", {}), dict):
        raise UserError(f"{path}: `synth` must be a table ([synth]) describing the synthetic benchmark")
    for where, table in (("[synth]", raw.get("synth", {})), ("[cpu.synth]", cpu.get("synth", {}))):
        _check_keys(path, table, SYNTH_SETTINGS, f"in {where} ")
    if variant == "cpu":
        for key, value in cpu.items():
            # A table naming another sampler or pruner replaces the base one: options don't carry over.
            merge = isinstance(value, dict) and isinstance(raw.get(key), dict) and (
                value.get("name", raw[key].get("name")) == raw[key].get("name"))
            raw[key] = {**raw[key], **value} if merge else value
    if "data" in raw:
        raw["data"] = Path(raw["data"])
    try:  # the image size parsed here, once, as a study's record is
        options = DataOptions.from_json({k: raw.pop(k) for k in DATA_SETTINGS if k in raw})
    except ValueError as e:
        raise UserError(f"{path}: {e}") from None
    return replace(StudyConfig(space=raw.pop("space", name)), preset=name, metric_from_preset=True,
                   data_options=options, **raw)
