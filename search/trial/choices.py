"""The names a study's settings choose among, apart from the modules that compute with them: the
settings (search/config.py) and the command line check a name here without importing torch."""

__all__ = ["COMPILE_MODES", "COSTS", "METRICS", "TASK_METRICS", "UNITS", "default_metric"]

# The metrics a study may maximise, per task; the first is the default (seed 000's contest score
# for single-label tasks; micro-F1 for multilabel, where accuracy of the whole label set is too harsh).
TASK_METRICS = {
    "multiclass": ("accuracy", "macro_f1"),
    "binary": ("accuracy", "roc_auc"),
    "multilabel": ("micro_f1", "macro_f1", "samples_f1"),
}
METRICS = tuple(dict.fromkeys(m for ms in TASK_METRICS.values() for m in ms))
# The costs a multi-objective study weighs against its metric (trial/pareto.py), and which way is better:
# "latency" is measured as throughput, inference images per second at a fixed batch on the trial's device.
COSTS = {"params": "minimize", "latency": "maximize"}
UNITS = {"params": "params", "latency": "images/s"}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")  # torch.compile's; reduce-overhead: CUDA graphs


def default_metric(task: str) -> str:
    return TASK_METRICS[task][0]
