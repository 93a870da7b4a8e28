"""How a study reads and splits its data, as plain values: recorded with the study and the retrained model,
so that `retrain` and `export` rebuild the search's splits and image size exactly."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["DATA_SETTINGS", "DataOptions", "parse_image_size"]

# What a flag or a preset key sets; the split seed is always the study's `seed` (search/config.py).
DATA_SETTINGS = ("layout", "image_size", "task", "val_fraction", "test_fraction")


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
        size = (raw or {}).get("image_size")  # a list in JSON
        return cls(**{**(raw or {}), "image_size": None if size is None else parse_image_size(size)})


def parse_image_size(value: int | str | list[int] | tuple[int, ...]) -> tuple[int, int]:
    """(width, height) from ``64`` (square), ``"96x64"`` or ``[96, 64]``: a flag, a preset or a study's record."""
    pair = isinstance(value, list | tuple)
    text = "x".join(map(str, value)) if pair else str(value)
    parts = text.lower().split("x")
    try:
        if len(parts) not in ((2,) if pair else (1, 2)):
            raise ValueError
        w, h = (int(parts[0]), int(parts[-1]))
    except ValueError:
        raise ValueError(f"image size {value!r} is not N or WIDTHxHEIGHT (e.g. 64 or 96x64)") from None
    if not (1 <= w <= 4096 and 1 <= h <= 4096):
        raise ValueError(f"image size {value!r} must be between 1 and 4096 pixels a side")
    return w, h
