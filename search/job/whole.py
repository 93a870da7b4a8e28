"""`run --time T`: the whole job inside T. The search (at most its share of T, ended early by
search/job/plan.py's rules), then the winner's final run for the time left (a plain run from
scratch where that time trains it well beyond its trial; otherwise continued from the weights its
trial left), then the submission and the report."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import optuna
import torch
from tqdm import tqdm

from gic_common.errors import UserError
from gic_common.knobs import EXIT_SECONDS, FRESH_FROM
from search.after.export import export
from search.after.retrain import epochs_in, eval_share, retrain
from search.config import StudyConfig
from search.console import log
from search.job.challenge import ChallengerPruner
from search.job.plan import JobPlan, after_run_seconds, chance_level, final_choice, search_verdict, why_not_the_best
from search.places import runs_dir, submission_file
from search.workers.run import SearchPhase, prepare_study, run_trials

__all__ = ["JobResult", "run_job"]


@dataclass(frozen=True)
class JobResult:
    study: optuna.Study
    model_dir: Path
    metrics: dict
    submission: Path | None
    report: Path | None
    verdict: float  # the winner's trial's own validation score: held out even when the final run is not


class KeptWeights:
    """The weights of the trials the final run may continue, on the host: every queued design's (the
    recommended design is the final run's default) and the best drawn trial's so far, each as its trial
    ended and, where it held its schedule's peak, as they were there (the final run continues
    those; with no time for an epoch, the weights as the trial ended are the model)."""

    def __init__(self) -> None:
        self.states: dict[int, dict[str, torch.Tensor]] = {}
        self.peaks: dict[int, dict[str, torch.Tensor]] = {}
        self.best_draw: tuple[float, int] | None = None  # value and number

    def __call__(self, trial: optuna.Trial, state: dict[str, torch.Tensor], value: float,
                 peak: dict[str, torch.Tensor] | None = None) -> None:
        if "design" not in trial.user_attrs:
            if self.best_draw is not None and value <= self.best_draw[0]:
                return
            if self.best_draw is not None:  # the previous best draw is no longer a candidate
                self.states.pop(self.best_draw[1], None)
                self.peaks.pop(self.best_draw[1], None)
            self.best_draw = (value, trial.number)
        self.states[trial.number] = {k: v.detach().to("cpu", copy=True) for k, v in state.items()}
        if peak is not None:
            self.peaks[trial.number] = peak


def _left(plan: JobPlan) -> str:
    return f"; whole job {tqdm.format_interval(plan.left())} left"


def run_job(settings: StudyConfig, seconds: float, plan: JobPlan | None = None, progress: bool = True,
            report: bool = True) -> JobResult:
    """The best model ``settings``' study can give in ``seconds`` of wall time, from this call on."""
    plan = plan or JobPlan(seconds, share=settings.search_share, patience=settings.search_patience)
    prepared = prepare_study(settings)
    settings = replace(prepared.settings, timeout=max(1.0, plan.search_seconds()))
    study = prepared.study
    data = prepared.data
    val_images = 0 if data.val_x is None else len(data.val_x)
    chance = chance_level(prepared.data.task, settings.metric, prepared.data.num_classes)
    if len(study.directions) == 1:  # Optuna prunes no multi-objective study
        study.pruner = ChallengerPruner(study.pruner, val_images, chance)
    challenged = len(study.directions) == 1 and val_images > 0  # draws are judged against the incumbent
    log(f"the whole job has {seconds:.0f}s: the search at most {plan.share:.0%} of it "
        f"({settings.timeout:.0f}s left for it now), then the winner's final run, then the submission")
    kept = KeptWeights()
    ends = plan.start + plan.total
    run_trials(replace(prepared, settings=settings), progress, SearchPhase(
        stop=lambda s: search_verdict(s.get_trials(deepcopy=False), chance, plan.patience, plan.search_seconds(),
                                      val_images if challenged else None),
        on_complete=kept,
        job_ends=ends, designs_until=ends - plan.reserve))
    plan.mark("data and search")
    trials = study.get_trials(deepcopy=False)
    if not any(t.state == optuna.trial.TrialState.COMPLETE for t in trials):  # not even a queued design fitted
        raise UserError(f"no trial of {study.study_name!r} finished in {seconds:.0f}s, so there is no model to "
                        f"give the final run; give --time more seconds")
    winner = final_choice(trials, val_images)
    lead = study.best_trial
    if winner.number != lead.number:
        log(why_not_the_best(lead, winner, val_images))
    train_on = settings.final_on
    if train_on == "train+val" and data.task == "multilabel":
        log("the final run trains on train only: a multi-label model's thresholds are tuned on the validation "
            "images, which must not be images it trained on")
        train_on = "train"
    test_images = 0 if data.test_x is None else len(data.test_x)
    measured = after_run_seconds(winner, val_images, test_images + (val_images if report else 0),
                                 bool(winner.params.get("tta")))
    if measured is not None:  # the winner's own scoring pace, not the cautious default, sets what is kept
        plan.reserve = measured
    final = plan.final_seconds()
    state = kept.states.get(winner.number)  # a winner from an earlier run of the study starts afresh
    more = 1 + val_images / len(data.train_x) if train_on == "train+val" else 1.0
    epochs = epochs_in(winner, final, more, eval_share(len(data.train_x), val_images, bool(winner.params.get("tta"))),
                       end_passes=None if train_on == "train" else 0)  # train+val: unscored (score_trained)
    if FRESH_FROM and epochs >= FRESH_FROM * int(winner.user_attrs.get("epochs", 0)):
        # A plain schedule over the whole run, not the trial's quick warm-up and held peak: it won a
        # point on real-late, whose designs learn late, and lost on real-gray and synth, which keep
        # what their trial learned (bench/RESULTS.md, "The final run from scratch"), so it is off.
        state = None
    if epochs == 0 and state is None:
        raise UserError(f"no time is left for a final run of trial {winner.number} ({final:.0f}s); give --time "
                        f"more than {seconds:.0f}s")
    log(f"final run: trial {winner.number} ({winner.value:.4f} after {winner.user_attrs.get('epochs')} epochs) "
        f"on {train_on} for the {final:.0f}s left to it ({plan.reserve:.0f}s kept for the submission and the "
        f"report), about {epochs} {'epochs from scratch' if state is None else 'more epochs'}: its schedule "
        f"follows the clock{_left(plan)}" if epochs else
        f"final run: no time left for another epoch; trial {winner.number}'s search weights are the model")
    if epochs and state is not None and winner.number in kept.peaks:  # its rate comes down from the trial's peak
        state = kept.peaks[winner.number]
    model_dir, metrics = retrain(study, winner.number, train_on, None, settings.device,
                                 storage_url=settings.storage_url(), epochs=epochs, init_state=state,
                                 note=lambda: _left(plan), deadline=ends - plan.reserve, score_trained=False)
    plan.mark("final run")
    submission = _submission(study, model_dir, settings)
    plan.mark("submission")
    page = _report(study, model_dir, settings, plan) if report else None
    if report:
        plan.mark("report")
    return JobResult(study, model_dir, metrics, submission, page, winner.value)


def _submission(study: optuna.Study, model_dir: Path, settings: StudyConfig) -> Path | None:
    out = submission_file(study.study_name)
    try:
        return export(model_dir, out, None, settings.device, study=study, storage_url=settings.storage_url())
    except UserError as e:  # data with no test split: the model is the result
        log(f"no submission written: {e}")
        return None


def _report(study: optuna.Study, model_dir: Path, settings: StudyConfig, plan: JobPlan) -> Path | None:
    from search.shown.report import write_report

    out = runs_dir(study.study_name) / "report.html"
    # The report stops before T by the interpreter's exit, which the user waits for too: a report
    # drawing to T ended `make run` 0.9 s past it (bench/RESULTS.md).
    if plan.left() <= EXIT_SECONDS:
        log(f"no time left for the report; `python -m search report --study {study.study_name}` writes it")
        return None
    return write_report(study, out, model_dir=model_dir, device_name=settings.device,
                        storage_url=settings.storage_url(), deadline=plan.start + plan.total - EXIT_SECONDS)
