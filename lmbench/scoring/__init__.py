"""From per-token log-probabilities to figures: corpus metrics, line sums, scores on disk, and new text.

:mod:`.metrics` (perplexity, bits, exp-or-inf: one of each), :mod:`.lines` (line boundaries and
per-line sums), :mod:`.tokens` (per-token scores on disk), :mod:`.text` (scoring new text; a model
with its run's tokenizer).
"""
