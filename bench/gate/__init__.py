"""The regression gate (``bench gate``): the committed baseline and its inventory
(baseline.py), and the checks of a run against it (gate.py)."""
