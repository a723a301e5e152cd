"""Stage 5, report: one module per output format."""
