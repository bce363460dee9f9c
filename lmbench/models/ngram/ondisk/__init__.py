"""N-gram counts built and scored in bounded memory, on disk (sort-based, like KenLM's lmplz).

* :mod:`.budget`: the memory budget (``memory="4G"``), chunk and window sizes, progress lines.
* :mod:`.arrays`: raw files read through short-lived windows; sorted key files with binary search.
* :mod:`.runs`: sorted runs spilled to disk and merged with counts summed (external group-by).
* :mod:`.counts`: :class:`OnDiskCounts`, :class:`~lmbench.models.ngram.counts.NGramCounts` over files.
"""

from .budget import DEFAULT_MEMORY, Budget, Progress, estimated_in_memory_bytes, parse_memory
from .counts import OnDiskCounts

__all__ = ["DEFAULT_MEMORY", "Budget", "OnDiskCounts", "Progress", "estimated_in_memory_bytes", "parse_memory"]
