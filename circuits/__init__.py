"""Brian2 circuits of two-compartment neurons running the learning rules as local plasticity.

Empty until the circuits are built (PEPITA with somatic/dendritic storage, DRTP and DFA as
three-factor rules, PFA with separate error populations); they will draw their weights and
feedback matrices from ``neurosim.feedback`` so that they share them with ``rate_models``.
"""
