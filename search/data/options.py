"""How a study reads and splits its data, as plain values: stored with the study (and the retrained
model), so that `retrain` and `export` rebuild exactly the same splits and image size as the search
saw, and read by the settings without importing what decodes or splits."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["DataOptions", "parse_image_size"]


@dataclass(frozen=True)
class DataOptions:
    layout: str = "auto"  # gic, helsinki, folders, or auto: detected from the files
    image_size: tuple[int, int] | None = None  # (width, height); None: the data's own, uniform size
    task: str = "auto"  # auto: multilabel for Helsinki, binary for two classes, else multiclass
    val_fraction: float = 0.1  # share of train made the validation split when the data has none
    test_fraction: float = 0.0  # share of train kept as a labelled held-out test part (seed 004: 0.05)
    split_seed: int = 0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict | None) -> DataOptions:
        raw = dict(raw or {})
        if raw.get("image_size"):
            raw["image_size"] = tuple(raw["image_size"])
        return cls(**raw)


def parse_image_size(text: str) -> tuple[int, int]:
    """``64`` (square) or ``WIDTHxHEIGHT`` such as ``96x64``."""
    parts = text.lower().split("x")
    try:
        if len(parts) not in (1, 2):
            raise ValueError
        w, h = (int(parts[0]), int(parts[-1]))
    except ValueError:
        raise ValueError(f"image size {text!r} is not N or WIDTHxHEIGHT (e.g. 64 or 96x64)") from None
    if not (1 <= w <= 4096 and 1 <= h <= 4096):
        raise ValueError(f"image size {text!r} must be between 1 and 4096 pixels a side")
    return w, h
