"""Theory of learning rules that needs neither torch nor brian2: the ODEs of adaptive feedback
alignment in the online teacher–student task (Srinivasan et al. 2023, Sec. 4.2 and App. E)."""
