"""The command line's grammar: every subcommand, its flags and their checks. The choices come from
the registries (spaces, layouts, samplers, pruners, metrics, tasks, compile modes)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["build_parser"]

DESCRIPTION = "`python -m search ...`: the command line. Each subcommand is a thin layer over one module."


def _bounded(kind: type, ok: Callable[[Any], bool], message: str) -> Callable[[str], Any]:
    """An argparse ``type``: ``kind(text)`` refused with ``message`` (formatted with ``value`` and
    ``text``) unless ``ok(value)``. Text that is no number at all gets the same message: argparse's
    own would name this function ("invalid parse value: 'abc'")."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(message.format(value=repr(text), text=repr(text))) from None
        if not ok(value):
            raise argparse.ArgumentTypeError(message.format(value=value, text=text))
        return value

    return parse


_positive_int = _bounded(int, lambda v: v >= 1, "must be a whole number, at least 1, got {value}")
_count = _bounded(int, lambda v: v >= 0, "must be a whole number, 0 or more, got {value}")
_fraction = _bounded(float, lambda v: 0 <= v < 1, "must be a number in [0, 1), got {value}")
# NaN fails v > 0; infinity is refused too: --time plans its split and the final run's epochs from it
_seconds = _bounded(float, lambda v: 0 < v < math.inf, "must be a finite number of seconds, more than 0, got {text}")
# the socket's own refusal of a port out of range is an OverflowError with a traceback
_port = _bounded(int, lambda v: 0 <= v <= 65535, "must be a port number from 0 to 65535, got {value}")


def _image_size(text: str) -> tuple[int, int]:
    from search.data.options import parse_image_size

    try:
        return parse_image_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class _Parser(argparse.ArgumentParser):
    """Every parser and subparser (add_subparsers makes them of the parent's class). No abbreviations:
    `retrain --seed 2` was taken for `--seeds 2`, and a flag added later can change what an old
    abbreviation means."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        # argparse's usage of `run` alone is 18 lines, above the one line that says what is wrong.
        fmt = self._get_formatter()
        positionals = " ".join(fmt._format_args(a, a.dest) for a in self._get_positional_actions())
        self.exit(2, f"usage: {self.prog} [options] {positionals}".rstrip() + " (--help lists the options)\n"
                     f"{self.prog}: error: {message}\n")


def _study_args(p: argparse.ArgumentParser, default: str = "the study run last, whose latest trial started last; "
                                                         "its name goes to stderr") -> None:
    p.add_argument("--study", help=f"study name (default: {default})")
    p.add_argument("--storage", help="Optuna storage URL (default: SQLite in studies/ of the working folder)")


def build_parser() -> argparse.ArgumentParser:
    # The choices come from the registries themselves (imported here, not at the top, so that an
    # error in `python -m search` before this point stays quick).
    from gic_common.registry import either
    from search.data.dataset import TASKS
    from search.data.loader import LAYOUTS
    from search.trial.choices import COMPILE_MODES, METRICS
    from search.workers.samplers import PRUNERS, SAMPLERS
    from spaces import SPACES

    parser = _Parser(prog="python -m search", description=DESCRIPTION)
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="dataset tools").add_subparsers(dest="data_command", required=True)
    synth = data.add_parser("synth", help="write the synthetic benchmark in the GIC layout")
    synth.add_argument("--out", type=Path, required=True, help="folder to create (must not exist)")
    synth.add_argument("--classes", type=_positive_int, default=100, help="number of classes")
    synth.add_argument("--size", type=_positive_int, default=64, help="image side in pixels")
    synth.add_argument("--train", type=_positive_int, default=13000, help="training images")
    synth.add_argument("--val", type=_positive_int, default=2000, help="validation images")
    synth.add_argument("--test", type=_positive_int, default=5000, help="test images")
    synth.add_argument("--seed", type=int, default=0, help="random seed (same seed, same files)")

    run = sub.add_parser("run", help="search a space on a dataset (continues the study if it exists)")
    run.add_argument("space", help=f"search space: {either(SPACES)}")
    run.add_argument("--data", type=Path, help="dataset folder (default: the embedded synthetic benchmark)")
    _study_args(run, "SPACE-DATASET, the space and the data folder's name; the same command continues it")
    run.add_argument("--preset", help="preset: studies/NAME.toml here, else the shipped one (default: the space's)")
    run.add_argument("--for", dest="variant", choices=["cpu", "gpu"],
                     help="the preset's variant: cpu (its quick [cpu] study) or gpu (the full one); default: "
                          "this machine's device, or gpu with --workers 0 (the workers run elsewhere)")
    run.add_argument("--trials", type=_positive_int,
                     help="finished trials the study should have in all (trials rejected untrained take none)")
    budget = run.add_mutually_exclusive_group()
    budget.add_argument("--time", type=_seconds, metavar="SEC",
                        help="the whole job in SEC seconds: the search (at most the preset's search_share of it), "
                             "then the winner's final run for the time left, the submission and the report")
    budget.add_argument("--timeout", type=_seconds, help="stop starting trials after this many seconds")
    run.add_argument("--final-on", choices=["train", "train+val"],
                     help="with --time: what the winner's final run trains on (default: the preset's final_on, "
                          "train+val: the validation images too, whose score is then no longer held out; train "
                          "keeps it held out)")
    run.add_argument("--epochs", type=_positive_int, help="epochs per trial (the most a trial may train)")
    run.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    run.add_argument("--seed", type=int, help="study seed: the sampler's and, with trial numbers, each trial's")
    run.add_argument("--metric", choices=["auto", *METRICS],
                     help="validation metric to maximise (auto: accuracy, or micro_f1 for multilabel); "
                          "multiclass: accuracy, macro_f1; binary: accuracy, roc_auc; "
                          "multilabel: micro_f1, macro_f1, samples_f1")
    run.add_argument("--task", choices=["auto", *TASKS],
                     help="auto (default): multilabel for the Helsinki layout, binary for 2 classes, else multiclass")
    run.add_argument("--layout", choices=["auto", *LAYOUTS],
                     help="dataset layout (default: detected from the files)")
    run.add_argument("--image-size", type=_image_size, metavar="N|WxH",
                     help="resize every image to N x N or W x H pixels, stretching (no crop) when the aspect "
                          "ratio differs (default: the data's own size, which must then be uniform)")
    run.add_argument("--val-fraction", type=_fraction,
                     help="share of train split off (stratified, seeded) as validation when the data has "
                          "no validation split (default 0.1)")
    run.add_argument("--test-fraction", type=_fraction,
                     help="share of train kept as a labelled held-out test part, scored only by retrain "
                          "(default 0; seed 004's 90/5/5 is --val-fraction 0.05 --test-fraction 0.05)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar (the per-trial lines stay)")
    run.add_argument("--workers", type=_count,
                     help="local worker processes sharing the study (default 1; with --gpus: GPUs x --trials-per-gpu; "
                          "0: only create the study, for `worker` processes elsewhere)")
    run.add_argument("--gpus", help="GPU numbers for the workers, e.g. 0,1,2,3 (each worker sees one)")
    run.add_argument("--trials-per-gpu", type=_positive_int, help="workers (trials at once) per GPU (default 1)")
    _heartbeat_arg(run)
    run.add_argument("--sampler", help=f"{either(SAMPLERS)} (default: the preset's; "
                     "its [sampler] settings apply only to the sampler it names)")
    run.add_argument("--pruner", help=f"{either(PRUNERS)} "
                     "(default: the preset's)")
    run.add_argument("--objectives", help="multi-objective: a metric then costs, e.g. accuracy,params or "
                     "accuracy,latency (latency: inference images/s)")
    run.add_argument("--compile", choices=["off", *COMPILE_MODES],
                     help="torch.compile each trial's network (reduce-overhead: with CUDA graphs); costs seconds "
                          "a trial, repaid only by long trials (bench/RESULTS.md); default: the preset's, else off")
    run.add_argument("--prior", choices=["on", "off"],
                     help="on (default): start-up trials drawn from the space's priors, its recommended design "
                          "queued beside the seed designs; off: uniform start-up draws, for comparison")
    run.add_argument("--from-study", help="warm start from this study (same storage and space): its finished "
                     "trials copied in as history if it measured alike (data, metric, epochs), else its best run first")
    run.add_argument("--warm-start", type=_positive_int, help="how many configurations --from-study runs first "
                     "when it measured otherwise (default 5)")

    best = sub.add_parser("best", help="print the best trial: value, parameters, attributes")
    _study_args(best)

    retrain = sub.add_parser("retrain", help="train the best (or --trial) configuration and save it")
    _study_args(retrain)
    retrain.add_argument("--trial", type=int, help="trial number (default: the best trial)")
    retrain.add_argument("--train-on", choices=["train", "train+val"], default="train",
                         help="training data (train+val leaves no held-out validation)")
    retrain.add_argument("--out", type=Path,
                         help="model folder (default: runs/STUDY/trial-N, or trial-N-trainval with train+val)")
    retrain.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    retrain.add_argument("--seeds", type=_positive_int, default=1,
                         help="train N times (the trial's seed, then the next) and report mean and spread")
    length = retrain.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=_positive_int, help="epochs (default: the study's epochs a trial)")
    length.add_argument("--time", type=_seconds, metavar="SEC",
                        help="train for as many epochs as fit in SEC seconds, at the pace the trial ran "
                             "(a short search, then a long retrain of its winner)")

    export = sub.add_parser("export", help="write the submission CSV from a retrained model")
    _study_args(export)
    export.add_argument("--model", type=Path, help="model folder (default: the study's last retrain)")
    export.add_argument("--data", type=Path, help="dataset with test.csv (default: the model's own)")
    export.add_argument("--out", type=Path, help="submission file (default: submissions/STUDY.csv)")
    export.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    export.add_argument("--ensemble", type=_positive_int, metavar="K",
                        help="average the probabilities of the top K trials (retrained now if not saved yet)")
    export.add_argument("--train-on", choices=["train", "train+val"], default="train",
                        help="with --ensemble: the data members are retrained on")
    export.add_argument("--tta", action="store_true", help="also average each model over the mirrored image")

    dash = sub.add_parser("dashboard", help="serve optuna-dashboard on the study, with its artifacts")
    _study_args(dash)
    dash.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    dash.add_argument("--port", type=_port, default=8080, help="port (0: any free one)")

    report = sub.add_parser("report", help="write one self-contained HTML report of the study and final model")
    _study_args(report)
    report.add_argument("--out", type=Path, help="HTML file (default: runs/STUDY/report.html)")
    report.add_argument("--model", type=Path, help="model folder (default: the study's last retrain)")
    report.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")

    worker = sub.add_parser("worker", help="join a study from any machine; run trials until its budget is met")
    worker.add_argument("--study", required=True, help="study name")
    worker.add_argument("--storage", required=True, help="the study's storage: postgresql://... or journal://PATH")
    worker.add_argument("--trials", type=_positive_int, help="finished trials for the whole study (default: its own)")
    worker.add_argument("--timeout", type=_seconds, help="stop starting trials after this many seconds")
    worker.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    worker.add_argument("--no-progress", action="store_true", help="no progress bar (the per-trial lines stay)")
    _heartbeat_arg(worker)

    rerun = sub.add_parser("rerun", help="train one trial again and compare its learning curve with the stored one")
    _study_args(rerun)
    rerun.add_argument("--trial", type=int, required=True, help="trial number")
    rerun.add_argument("--device", default="cpu", help="cpu (default: reproduces exactly), cuda, cuda:N or mps")
    return parser


def _heartbeat_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--heartbeat", type=_count, metavar="SECONDS",
                   help="heartbeat interval (default 30; 0: off); a trial silent for 3 intervals is retried")
