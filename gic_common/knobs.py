"""The engine's tuning knobs, by phase: what each trades, then (after the ";") the modules that use it.
Knobs to turn per study are preset keys (search/presets/*.toml). Measured figures: bench/RESULTS.md. Imports nothing."""

# A trial's cost, known before it trains (search/trial/)
PROBE_STEPS = 3  # steps timed after the first (which pays start-up): a surer cost against time before a verdict; train
EVAL_COST = 1 / 3  # an evaluated image's time over a trained one's: a forward pass, no backward; time_budget, retrain
FAIR_SHARE = 3.0  # fair shares of the time left one draw may take: slow draws let in against the rest; time_budget
MAX_REJECTIONS_PER_TRIAL = 5  # rejections per --trials that end a study: redraws against a hopeless space's end; worker
LATENCY_BATCH = {"cpu": 32}  # batch latency is timed at, by device type: a GPU filled, a CPU timed briefly; pareto
LATENCY_BATCH_DEFAULT = 256  # the same, for a device type LATENCY_BATCH does not name
EVAL_BATCH = {"cpu": 64}  # images a forward pass when scoring, by device type: a CPU's caches, a GPU filled; train
EVAL_BATCH_DEFAULT = 1024  # the same, for a device type EVAL_BATCH does not name

# Where a study starts (spaces/, search/workers/)
PRIOR_DECAY = 40  # d: the k-th draw after the start-up is the prior's with chance d/(d+k); prior_sampler
SHORT_RUN_EPOCHS = 10  # under this many epochs, priors leave out regularisers that pay back late; spaces/priors

# Workers on one storage (search/workers/, search/journal.py)
GRACE_BEATS = 3  # beats missed before a trial is stale: a late beat against a dead worker's wait; storage, journal
STALE_RETRIES = 2  # reruns of a stale trial: a dead worker's trial redone against a design that kills each; storage
MAX_CRASHES = 3  # crashes in a row that stop a worker: one design's bug let pass against the code's; worker
TRACEBACK_CHARS = 8000  # the end of a crashed trial's traceback it keeps: what failed, in a small attribute; worker

# `run --time`: the whole job in the user's time (search/job/plan.py)
NEAR_CHANCE = 2.0  # under this many times chance a score ranks nothing: every design's best, or the incumbent's score
                   # at a draw's first verdict; the search ends and the final run gets the time; plan
MIN_TRIALS = 8  # a share with room for fewer draws rarely beats the designs: the final run gets the time (at 4,
                # one-core 12-minute jobs ran 5-7 draws on photos-48px and synth, none won, and the final run lost
                # up to 30 epochs: -4.0 on photos; at 8 they end after the designs, and make run's two threads
                # still leave room for about 10); plan
RESERVE_SECONDS = 15.0  # kept for export and report until a trial measured them (or RESERVE_SHARE of T, if more)
RESERVE_SHARE = 0.03
AFTER_RUN_SECONDS = 6.0  # export's and report's fixed part (loading, plots, files) and the process's exit; plan
EXIT_SECONDS = 3.0  # of AFTER_RUN_SECONDS, the interpreter's exit after the job's last line (1.4-2.8 s measured): the
                   # report stops drawing this long before T, or the user's wait ends past it; whole
AFTER_RUN_MARGIN = 1.5  # the scoring passes' measured time times this: a late pass against seconds of training; plan
FINAL_RUN_EVALS = 10  # validation passes in a long final run: a curve to watch against epochs lost to scoring; retrain
FINAL_RUN_LEAD = 2.0  # standard errors a trial must lead the recommended design by, at equal seconds, to take the run
CHALLENGE_FROM = 1  # the first epoch a challenger is judged at: a design that wins led by then; challenge
CHALLENGE_LEAD = 0.0  # standard errors a challenger must lead the incumbent by at each epoch to go on (at 1, the
                      # 6-epoch curves stopped the draw that ends 4.4 ahead on photos-48px at epoch 2; at 0, it
                      # goes on and the losers still stop at epochs 1-4); challenge
CHALLENGE_LEAD_NEAR_CHANCE = 1.0  # the same where the incumbent is under NEAR_CHANCE times chance at that epoch:
                                  # being ahead of a guess is noise (seed 000's CNN, level with the recommended design
                                  # near chance on real-late and real-gray, ran on there for 6-8 epochs); challenge
FRESH_FROM = 0  # 0: a final run continues its trial; N: one of N or more times its trial's epochs starts afresh
                # (a plain schedule; at 2: +0.9 real-late, -1.4 real-gray, -0.6 and -5.8 synth); whole
TRIAL_DECAY = 1 / 3  # of a job's trial, the last epochs that bring its rate down; before, it holds the peak; objective

# What a person reads (search/shown/)
TRUSTED_FROM = 10  # completed trials before importances are trusted (PED-ANOVA compares the best tenth); importance
PARALLEL_AXES = 8  # parameters in the report's parallel coordinates: more, and their labels overlap; report
SLICES = 4  # parameters in the report's slice plots, the most important first; report
