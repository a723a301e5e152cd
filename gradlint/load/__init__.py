"""Stage 1, load: which files, whether importing one is safe, importing it, building its models."""
