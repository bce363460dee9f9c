"""Statistical analysis of per-token scores: paired bootstrap intervals over lines and frequency-bucket breakdowns.

Modules: :mod:`~lmbench.scoring.lines` (line boundaries and per-line sums),
:mod:`~lmbench.analysis.bootstrap` (paired bootstrap of corpus perplexity),
:mod:`~lmbench.analysis.buckets` (perplexity by training frequency of the target token).
"""
