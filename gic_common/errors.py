"""The exception types that are not crashes: the user's to fix, and a search's verdicts on a trial."""

__all__ = ["TrialVerdict", "UserError"]


class UserError(Exception):
    """Something the user gave (a file, a flag, a name) is wrong; the message says what and where."""


class TrialVerdict(Exception):
    """A configuration that cannot be trained here (its network cannot take these images, say). A
    search prunes the trial with this reason so that the sampler learns from it; it is neither a
    crash nor the user's to fix. Outside a search (retraining such a trial) the CLI prints its
    message as one line, as it does a UserError's."""
