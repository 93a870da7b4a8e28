"""The settings a trial trains with, plain frozen dataclasses: a space makes them, search/trial/ reads them."""

from dataclasses import dataclass, field

__all__ = ["OPTIMIZERS", "SCHEDULES", "AugmentConfig", "TrainConfig"]

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine", "onecycle", "exp_decay")


@dataclass(frozen=True)
class AugmentConfig:
    flip: bool = False  # horizontal mirror; seed 004 found it helped
    translate: int = 0  # max shift in pixels (reflect-pad and crop); 0 = off
    cutout: int = 0  # side of the square zeroed at a random place; 0 = off
    jitter: float = 0.0  # brightness/contrast/saturation strength; 0 = off
    mix: str = "none"  # "mixup" or "cutmix" mix pairs of images and their labels
    mix_alpha: float = 1.0  # Beta(alpha, alpha) draws the mixing weight


@dataclass(frozen=True)
class TrainConfig:
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd and rmsprop only
    nesterov: bool = False  # sgd only
    batch_size: int = 64
    schedule: str = "cosine"  # per step; "exp_decay" is Keras' x0.9 every 10,000 steps (seed 000)
    warmup: float = 0.0  # fraction of all steps spent warming up linearly before "cosine"
    label_smoothing: float = 0.0
    # binary and multilabel: weigh each label's positives by its negatives/positives on the training
    # split (BCE-with-logits' pos_weight), for labels far rarer than their absence
    pos_weight: bool = False
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # An exponential moving average of the weights (and BN statistics) is what gets evaluated and kept;
    # its half-life is a tenth of the run's steps, so it smooths the end of training, not its start.
    ema: bool = False
    tta: bool = False  # evaluation averages each image's logits with its mirror image's
