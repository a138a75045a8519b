"""The spiking mode of the rate backend: multi-layer LIF networks (snnTorch ``Leaky`` neurons)
trained by local rules, no backpropagation through time, with surrogate-gradient BPTT as the
baseline (``neurosim train --neuron lif``).

``lif.py`` simulates the network step by step (encoders, neurons, presynaptic traces, readout);
``updates.py`` holds the pure update functions each rule applies; ``rules.py`` the rules.
"""

from neurosim.config import ENCODERS
from rate_models.spiking.lif import LIFNetwork
from rate_models.spiking.rules import LIF_RULES, build_lif_rule

__all__ = ["ENCODERS", "LIFNetwork", "LIF_RULES", "build_lif_rule"]
