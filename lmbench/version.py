"""The version of lmbench (the one place it is written; setup.cfg reads it)."""

__version__ = "0.3.0"
