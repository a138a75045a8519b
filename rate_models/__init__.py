"""The rate-based PyTorch backend: networks, each rule's batch update, the training loop.

Training: ``train.py`` (a run: run folder, each seed's model, the batch source) hands the model
and a batch source — ``data.py`` (resident data) or ``imagenet.py`` (streamed data: ImageNet,
``--stream``) — to ``loop.py``, the one training loop, which uses ``evaluation.py`` (loss,
accuracy, figures, metrics rows), ``divergence.py`` and ``checkpoints.py``; ``seed_batch.py``
batches seeds, ``distributed.py`` splits batches under torchrun. ``saved_runs.py`` loads a run
folder's trained models back.
"""

from rate_models.network import FCNetwork
from rate_models.rules import build_rule
from rate_models.saved_runs import load_run
from rate_models.train import train_run

__all__ = ["FCNetwork", "build_rule", "load_run", "train_run"]
