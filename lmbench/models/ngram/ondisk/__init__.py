"""N-gram tables built and scored in bounded memory, on disk (sort-based, like KenLM's lmplz).

* :mod:`.budget`: the memory budget (``memory="4G"``), chunk and window sizes, progress lines.
* :mod:`.arrays`: raw files read through short-lived windows; sorted key files with binary search.
* :mod:`.runs`: sorted runs spilled to disk and merged with counts summed (external group-by).
* :mod:`.counts`: :class:`OnDiskCounts`, the on-disk twin of :class:`~lmbench.models.ngram.counts.NGramCounts`.
* :mod:`.tables`: the backoff tables of interpolated models (Kneser-Ney, absolute discounting,
  Witten-Bell) in streaming passes, bit-for-bit those of the in-memory path.
"""

from .budget import DEFAULT_MEMORY, Budget, Progress, estimated_in_memory_bytes, parse_memory
from .counts import OnDiskCounts

__all__ = ["DEFAULT_MEMORY", "Budget", "OnDiskCounts", "Progress", "estimated_in_memory_bytes", "parse_memory"]
