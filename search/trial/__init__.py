"""One trial: its inputs, the training loop, its metrics and the objective that reports it to Optuna."""
