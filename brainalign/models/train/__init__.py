"""Train small models in brainalign, one checkpoint per epoch, to score alignment over training."""

from brainalign.models.train.datasets import DATASETS, TrainingData, augment, load_training_data
from brainalign.models.train.loop import TrainResult, train

__all__ = ["DATASETS", "TrainResult", "TrainingData", "augment", "load_training_data", "train"]
