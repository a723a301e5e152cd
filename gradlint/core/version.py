"""The version, in the torch-free core so that every stage may print it."""

__version__ = "0.1.0"
