"""Conclusions from per-token scores and counts: paired bootstrap, frequency buckets, seeds, sweeps, Zipf's law.

Pure functions of tables and arrays: nothing here fits a model or writes a file.
"""
