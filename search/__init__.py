"""GIC search: hyperparameter search for small-image classifiers, on Optuna and PyTorch."""

__version__ = "0.1.0"
