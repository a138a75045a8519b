"""The rate-based PyTorch backend: networks, each rule's batch update, the training loop."""

from rate_models.network import FCNetwork
from rate_models.rules import build_rule
from rate_models.train import train_run

__all__ = ["FCNetwork", "build_rule", "train_run"]
