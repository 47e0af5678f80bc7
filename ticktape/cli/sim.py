"""``ticktape sim``: placeholder module, replaced by the simulated exchange command."""
