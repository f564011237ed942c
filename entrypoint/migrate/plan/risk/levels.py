"""The risk levels an operation is judged at (``judge`` says which; see its docstring)."""

NONE, LOW, HIGH, UNKNOWN = "none", "low", "high", "unknown"
ORDER = (NONE, LOW, UNKNOWN, HIGH)  # a high statement outweighs one that cannot be read
