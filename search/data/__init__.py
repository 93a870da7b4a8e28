"""Datasets: layouts on disk -> one in-memory uint8 array per split; the synthetic benchmark."""

from search.data.dataset import DataError, Dataset
from search.data.loader import load_dataset

__all__ = ["DataError", "Dataset", "load_dataset"]
