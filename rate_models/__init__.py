"""The rate-based PyTorch backend: networks, each rule's batch update, the training loop.

Layout of the rules:

* ``rules/<family>.py`` (``gradient``, ``feedback``, ``direct``, ``pepita``, ``pfa``): one file per
  rule family holds the family's update (pure functions, autograd functions), its layers for the
  convolutional architectures, its rule classes — a fully connected (dense) and, where it has
  one, a convolutional form — and ``FORMS``, rule name -> ``Forms(dense, conv)``.
* ``rules/base.py``: the ``Rule`` interface (``compute_grads``, ``feedback_parameters``,
  ``alignment``, ``connectivity_blocks``, ``layer_factory``), ``ConvRule`` and ``Forms``;
  ``rules/__init__.py`` gathers every family's ``FORMS`` into one registry and builds any
  architecture with its rule (``build_model``).
* ``layers.py``: the seeded conv/linear layers, the ``LayerFactory`` and the ``Pass``, from which
  ``architectures.py`` builds every architecture with the layers of a rule's form: the fully
  connected ``FCNetwork`` (``fc``; the dense forms' layers are plain, their feedback lives in the
  rule and their error routing in the hooks of ``FCNetwork.run``) and the convolutional networks.
  ``network.py``: what they share, the seed-batch ``linear`` and the per-step ``StepNoise``.
* ``spiking/``: the LIF forms (``spiking/rules.py``), which reuse the rate rules' feedback and
  signal definitions.

To add a rule: its ``RuleSpec`` in ``neurosim/rules.py`` (name, family, paper, backends, defaults)
and its classes plus a ``FORMS`` entry in ``rules/<family>.py``; ``tests/test_registry.py``
checks that the two agree. A new family is one new ``rules/<family>.py`` named by the spec.

Training: ``train.py`` (a run: run folder, each seed's model, the batch source) hands the model
and a batch source — ``data.py`` (resident data) or ``imagenet.py`` (streamed data: ImageNet,
``--stream``) — to ``loop.py``, the one training loop, which uses ``evaluation.py`` (loss,
accuracy, figures, metrics rows), ``divergence.py`` and ``checkpoints.py``; ``seed_batch.py``
batches seeds, ``distributed.py`` splits batches under torchrun. ``saved_runs.py`` loads a run
folder's trained models back.
"""

from rate_models.architectures import FCNetwork
from rate_models.rules import build_model, build_rule
from rate_models.saved_runs import load_run
from rate_models.train import train_run

__all__ = ["FCNetwork", "build_model", "build_rule", "load_run", "train_run"]
