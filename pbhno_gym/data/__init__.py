"""Episode datasets: format (atomic NPZ + JSON metadata), collection, policies."""

from .collect import collect_episodes
from .format import DATASET_VERSION, Dataset, DatasetError, load_dataset, save_dataset
from .policies import RandomPulsePolicy

__all__ = [
    "collect_episodes",
    "Dataset",
    "DatasetError",
    "DATASET_VERSION",
    "load_dataset",
    "save_dataset",
    "RandomPulsePolicy",
]
