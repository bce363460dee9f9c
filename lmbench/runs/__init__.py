"""A run: its configuration, its jobs, the runner that fits and scores them, its directory and its results.

:mod:`.config` (the options and their defaults), :mod:`.jobs` (models resolved and ordered),
:mod:`.runner` (fit, score, save), :mod:`.summarize` (the analysis after the models),
:mod:`.rundir` (claiming the output directory), :mod:`.files` (what a run writes),
:mod:`.table` (perplexity.csv), :mod:`.result` (a run read back), :mod:`.suite` (TOML suites),
:mod:`.compare` (several runs in one table), :mod:`.zipf` (Zipf statistics written to a folder).
"""
