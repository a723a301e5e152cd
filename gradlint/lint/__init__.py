"""Stage 4, lint: the rule registry, the quantities rules share, suppressions, baseline, fixes."""
