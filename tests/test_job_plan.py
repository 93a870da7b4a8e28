"""`run --time`'s plan: when the search has had enough, and how T is split (no training here)."""

from __future__ import annotations

import datetime
import subprocess
import sys
import time

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from gic_common.knobs import MIN_TRIALS
from search.job.plan import (
    JobPlan,
    after_run_seconds,
    at_equal_seconds,
    chance_level,
    final_choice,
    search_verdict,
    why_not_the_best,
)

LR = {"lr": FloatDistribution(1e-4, 1.0, log=True)}


def trial(number: int, curve: list[float], state: TrialState = TrialState.COMPLETE,
          seconds: float = 10) -> optuna.trial.FrozenTrial:
    t = create_trial(params={"lr": 0.01}, distributions=LR, state=state,
                     value=curve[-1] if state == TrialState.COMPLETE else None,
                     intermediate_values=dict(enumerate(curve, start=1)))
    t.number = number
    t.datetime_start = datetime.datetime(2026, 1, 1)
    t.datetime_complete = t.datetime_start + datetime.timedelta(seconds=seconds)
    return t


def test_the_search_goes_on_while_a_queued_design_waits():
    waiting = create_trial(params={}, distributions={}, state=TrialState.WAITING)
    assert search_verdict([trial(0, [0.01, 0.02]), trial(1, [0.01, 0.011]), waiting], chance=0.01, patience=6) is None


def test_designs_all_near_chance_end_the_search_the_final_run_is_where_they_learn():
    trials = [trial(0, [0.010, 0.012, 0.015]), trial(1, [0.01, 0.018])]
    why = search_verdict(trials, chance=0.01, patience=6)
    assert why is not None and "near chance after 3 epochs" in why
    # one design above twice chance: the verdicts rank something, the search goes on
    assert search_verdict([*trials, trial(2, [0.05])], chance=0.01, patience=6) is None
    # multi-label F1 has no such floor: the rule does not apply
    assert search_verdict(trials, chance=None, patience=6) is None
    # one trial is not evidence: a second design may learn where the first did not
    assert search_verdict(trials[:1], chance=0.01, patience=6) is None


def test_patience_counts_trained_trials_since_the_best_pruned_ones_included():
    trials = [trial(0, [0.3]), trial(1, [0.5]), trial(2, [0.4]), trial(3, [0.2, 0.3], TrialState.PRUNED)]
    assert search_verdict(trials, chance=0.1, patience=3) is None
    why = search_verdict([*trials, trial(4, [0.45])], chance=0.1, patience=3)
    assert why is not None and "no new best in the last 3 trials" in why and "trial 1" in why
    # a new best restarts the count
    assert search_verdict([*trials, trial(4, [0.6])], chance=0.1, patience=3) is None
    # rejected trials (pruned before any epoch) are no verdicts and do not count
    rejected = [trial(n, [0.1], TrialState.PRUNED) for n in range(4, 8)]
    for t in rejected:
        t.intermediate_values = {}
    assert search_verdict([*trials, *rejected], chance=0.1, patience=3) is None


def test_a_search_with_room_for_few_draws_after_the_designs_gives_its_time_to_the_final_run():
    trials = [trial(0, [0.3], seconds=100), trial(1, [0.5], seconds=80), trial(2, [0.4], seconds=120)]
    for t in trials:
        t.user_attrs["design"] = "a queued design"
    roomy, short = (MIN_TRIALS + 1) * 100, (MIN_TRIALS - 0.5) * 100  # the typical draw: 100 s, the median
    assert search_verdict(trials, chance=0.1, patience=6, window_left=roomy) is None
    why = search_verdict(trials, chance=0.1, patience=6, window_left=short)
    assert why is not None and f"fewer than {MIN_TRIALS} draws at 100s each" in why
    assert search_verdict(trials, chance=0.1, patience=6) is None  # no window: no such rule
    # once the search has begun, it runs to its share (or its patience): no trials are left unspent
    assert search_verdict([*trials, trial(3, [0.45], seconds=100)], chance=0.1, patience=6, window_left=150) is None


def test_draws_judged_against_a_design_near_chance_at_their_first_verdict_end_the_search():
    # the recommended design at chance after epoch 1, learning later; seed 000's CNN stopped at epoch 1
    recommended = trial(0, [0.0083, 0.0125, 0.02, 0.025], seconds=40)
    recommended.user_attrs["design"] = "recommended"
    seed = trial(1, [0.0063], TrialState.PRUNED, seconds=9)
    seed.user_attrs["design"] = "seed000-cnn"
    trials = [recommended, seed]
    window = 2 * MIN_TRIALS * 40  # room for draws: only the near-chance rule can end the search
    why = search_verdict(trials, chance=0.0104, patience=6, window_left=window, challenged_on=480)
    assert why is not None and "trial 0" in why and "near chance after epoch 1 (0.0083" in why
    # without a challenger judging draws (a multi-objective study) the rule does not apply
    assert search_verdict(trials, chance=0.0104, patience=6, window_left=window) is None
    # an incumbent past twice chance at epoch 1 can be challenged there: the search goes on
    recommended.intermediate_values[1] = 0.0225
    assert search_verdict(trials, chance=0.0104, patience=6, window_left=window, challenged_on=480) is None
    # once draws have begun, the search runs to its share or its patience
    recommended.intermediate_values[1] = 0.0083
    assert search_verdict([*trials, trial(2, [0.0125], TrialState.PRUNED)], chance=0.0104, patience=6,
                          window_left=window, challenged_on=480) is None


def test_the_plan_gives_the_search_its_share_and_the_final_run_the_rest():
    plan = JobPlan(600, share=0.4, start=time.monotonic() - 100)  # the command started 100 s ago
    assert 139 <= plan.search_seconds() <= 140  # 240 s share, 100 s spent
    assert plan.reserve == 18  # 3% of T, above the 15 s floor
    assert 481 <= plan.final_seconds() + plan.reserve <= 500
    late = JobPlan(600, share=0.4, start=time.monotonic() - 300)
    assert late.search_seconds() == 0 and 281 <= late.final_seconds() <= 282
    assert JobPlan(60).reserve == 15


def test_once_the_winner_is_known_its_own_scoring_pace_sets_what_is_kept_for_the_export_and_report():
    from gic_common.knobs import AFTER_RUN_MARGIN, AFTER_RUN_SECONDS

    winner = trial(0, [0.3, 0.5])
    assert after_run_seconds(winner, 480, 980, tta=True) is None  # it measured no scoring pass: the default stays
    winner.set_user_attr("eval_seconds", 0.48)  # 1 ms an image, its curve scored without flips
    plain = after_run_seconds(winner, 480, 980, tta=False)
    assert plain == AFTER_RUN_SECONDS + AFTER_RUN_MARGIN * 0.98
    assert after_run_seconds(winner, 480, 980, tta=True) - AFTER_RUN_SECONDS == 2 * (plain - AFTER_RUN_SECONDS)
    # a 12-minute job on 500 test and 480 validation images keeps seconds, not the default's 21.6
    assert plain < JobPlan(720).reserve / 2
    assert after_run_seconds(winner, 0, 980, tta=False) is None  # no validation images: no pace to read


def test_chance_levels_by_task():
    assert chance_level("multiclass", "accuracy", 20) == 0.05
    assert chance_level("binary", "roc_auc", 2) == 0.5
    assert chance_level("multilabel", "micro_f1", 14) is None


def test_the_recommended_design_keeps_the_final_run_unless_beaten_beyond_the_noise():
    seed, recommended = trial(0, [0.025]), trial(1, [0.017])
    seed.user_attrs["design"], recommended.user_attrs["design"] = "seed000-cnn", "recommended"
    # 0.8 points near chance on 480 images: noise (two standard errors of the difference are 1.9 points)
    assert final_choice([seed, recommended], val_images=480).number == 1
    # a clear lead wins it, whoever has it: a design or a draw
    assert final_choice([trial(0, [0.998]), recommended], val_images=480).number == 0
    assert final_choice([seed, recommended, trial(2, [0.09])], val_images=480).number == 2
    # with many more images the same lead is evidence
    assert final_choice([seed, recommended], val_images=20000).number == 0
    # no recommended design completed (priors off, or it was pruned): the best trial
    assert final_choice([seed, trial(2, [0.02])], val_images=480).number == 0


def test_a_slower_design_is_judged_at_the_seconds_the_recommended_design_took():
    # a grayscale set's trials: the draw leads by 21 points after 6 epochs, at twice the seconds an epoch
    recommended = trial(0, [0.105, 0.128, 0.212, 0.25, 0.333, 0.56])
    draw = trial(3, [0.092, 0.263, 0.403, 0.443, 0.627, 0.767])
    recommended.user_attrs.update(design="recommended", epoch_seconds=5.78)
    draw.user_attrs["epoch_seconds"] = 11.9
    # in the recommended design's 35 s the draw had trained 2 epochs: in T's seconds it trails
    assert at_equal_seconds(draw, recommended) == 0.263
    assert final_choice([recommended, draw], val_images=400).number == 0
    # the log says why the best score does not get the run: its lead at equal seconds, under the noise
    why = why_not_the_best(draw, recommended, val_images=400)
    assert "by 0.2070 at equal epochs and -0.2970 at equal training seconds" in why
    assert why.endswith("the recommended design gets the final run")
    # as fast per epoch, its lead at equal epochs is its lead at equal seconds, and it takes the run
    draw.user_attrs["epoch_seconds"] = 5.5
    assert at_equal_seconds(draw, recommended) == 0.767
    assert final_choice([recommended, draw], val_images=400).number == 3
    # a faster one that leads only at equal seconds is not read past its own last epoch
    fast = trial(4, [0.3, 0.58])
    fast.user_attrs["epoch_seconds"] = 2.0
    assert at_equal_seconds(fast, recommended) == 0.58
    # of several beyond the noise, the largest lead at equal seconds takes it
    slow_best = trial(5, [0.2, 0.3, 0.4, 0.6, 0.9, 0.95])
    slow_best.user_attrs["epoch_seconds"] = 30.0  # one epoch in the recommended design's 35 s
    assert final_choice([recommended, draw, slow_best], val_images=400).number == 3
    assert why_not_the_best(slow_best, draw, val_images=400).startswith("trial 3 leads the recommended design most")


def _study_with(*trials: optuna.trial.FrozenTrial) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for t in trials:
        study.add_trial(t)
    return study


def _running(curve: list[float], design: str | None = None) -> optuna.trial.FrozenTrial:
    t = create_trial(params={"lr": 0.01}, distributions=LR, state=TrialState.RUNNING,
                     intermediate_values=dict(enumerate(curve, start=1)),
                     user_attrs={"design": design} if design else {})
    t.number = 9
    return t


def test_a_challenger_stops_once_it_is_not_ahead_and_goes_on_while_it_is(capsys):
    from search.job.challenge import ChallengerPruner

    recommended = trial(0, [0.010, 0.008, 0.012, 0.017, 0.010, 0.021])
    recommended.user_attrs = {"design": "recommended"}
    pruner = ChallengerPruner(optuna.pruners.NopPruner(), val_images=480)
    study = _study_with(recommended)
    # ahead at epochs 1 and 2, it goes on; level at epoch 3, it stops
    assert not pruner.prune(study, _running([0.017, 0.017], "seed000-cnn"))
    assert pruner.prune(study, _running([0.017, 0.017, 0.012], "seed000-cnn"))
    said = capsys.readouterr().err
    assert "stops after epoch 3" in said and "not ahead of it" in said
    # its first epoch is judged too: level with the incumbent there, it stops; ahead, it goes on
    assert pruner.prune(study, _running([0.010], "seed000-cnn"))
    assert not pruner.prune(study, _running([0.012], "seed000-cnn"))
    # tens of standard errors ahead from the start, as seed 000's CNN on the compositional set
    assert not pruner.prune(study, _running([0.82, 0.988, 0.988, 0.998, 0.998]))


def test_a_challenger_ahead_by_less_than_the_noise_goes_on():
    from search.job.challenge import ChallengerPruner

    # the 6-epoch curves of photos-48px (500 validation images): the draw that ends 4.4 points ahead
    # of the recommended design led it by 6.8, 1.0 and 7.0 points at epochs 1-3; one standard error
    # is about 3 points, so asking for it at every epoch stopped this draw at epoch 2
    recommended = trial(0, [0.148, 0.334, 0.358, 0.384, 0.460, 0.504])
    recommended.user_attrs = {"design": "recommended"}
    pruner = ChallengerPruner(optuna.pruners.NopPruner(), val_images=500)
    study = _study_with(recommended)
    curve = [0.216, 0.344, 0.428, 0.494, 0.542, 0.572]
    assert not any(pruner.prune(study, _running(curve[:epoch])) for epoch in range(1, 7))
    # the seed design on the same set: level at epoch 1 (14.8 against 14.8), so it stops there
    assert pruner.prune(study, _running([0.148]))


def test_near_chance_a_challenger_must_lead_by_the_noise():
    from search.job.challenge import ChallengerPruner

    # the late-learning set: 480 validation images, about 1% chance, both designs near it
    recommended = trial(0, [0.008, 0.012, 0.010])
    recommended.user_attrs = {"design": "recommended"}
    study = _study_with(recommended)
    ahead_by_a_hair = _running([0.012, 0.015], "seed000-cnn")  # one standard error there is about 0.0066
    assert ChallengerPruner(optuna.pruners.NopPruner(), 480, chance=0.0104).prune(study, ahead_by_a_hair)
    assert not ChallengerPruner(optuna.pruners.NopPruner(), 480).prune(study, ahead_by_a_hair)  # no floor known
    # past twice chance, being ahead is enough again
    learning = _study_with(trial(0, [0.05, 0.10]))
    assert not ChallengerPruner(optuna.pruners.NopPruner(), 480, chance=0.0104).prune(learning, _running([0.052]))


def test_a_challenger_is_judged_against_the_trial_the_final_run_would_get():
    from search.job.challenge import ChallengerPruner

    recommended = trial(0, [0.1, 0.2, 0.3])
    recommended.user_attrs = {"design": "recommended"}
    pruner = ChallengerPruner(optuna.pruners.NopPruner(), val_images=480)
    # before any trial completes there is no incumbent: nothing stops
    assert not pruner.prune(_study_with(), _running([0.0, 0.0]))
    # a draw that beat the recommended design beyond the noise is the incumbent now
    study = _study_with(recommended, trial(1, [0.3, 0.5, 0.6]))
    assert pruner.prune(study, _running([0.3, 0.45]))
    # a draw that led it within the noise is not: the recommended design still holds the final run
    close = _study_with(recommended, trial(1, [0.1, 0.21, 0.31]))
    assert not pruner.prune(close, _running([0.1, 0.3]))
    # the study's own pruner still judges first
    assert ChallengerPruner(optuna.pruners.ThresholdPruner(upper=0.9), 480).prune(study, _running([0.95, 0.95]))


def test_the_job_clock_starts_with_the_process_not_with_main():
    # what the interpreter does before the job's code runs is the user's wait too: here a 1 s sleep
    code = ("import time; time.sleep(1.0); from search.job.clock import process_started; "
            "print(time.monotonic() - process_started())")
    ran = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert 1.0 <= ran < 30
    # a process that ran longer than BEFORE_MAIN_LIMIT before asking (here 1 s against a limit lowered to
    # 0.5 s) is a host program, not a start-up: its call is the start
    late = code.replace("time.sleep(1.0); from search.job.clock import process_started",
                        "from search.job import clock; clock.BEFORE_MAIN_LIMIT = 0.5; time.sleep(1.0); "
                        "process_started = clock.process_started")
    assert float(subprocess.run([sys.executable, "-c", late], capture_output=True, text=True,
                                check=True).stdout) < 0.5


def test_the_plan_says_where_each_phases_seconds_went():
    plan = JobPlan(600, start=time.monotonic() - 2.0)
    plan.mark("search")
    time.sleep(0.05)
    plan.mark("final run")
    assert list(plan.phases) == ["search", "final run"]
    assert 2.0 <= plan.phases["search"] < 3 and 0.05 <= plan.phases["final run"] < 1
    assert plan.spent().startswith("search 2.0s, final run 0.")
