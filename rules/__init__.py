"""Built-in rules: one folder per rule (check.py, README.md, bad.py, good.py)."""
