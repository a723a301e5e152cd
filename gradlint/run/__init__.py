"""Running the stages: the parent's pipeline, the fork server and the process per file."""
