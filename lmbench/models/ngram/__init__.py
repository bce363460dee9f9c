"""Count-based language models over token ids: n-gram tables in memory or on disk, smoothing by strategy.

* :mod:`.counts` (memory) and :mod:`.ondisk` (bounded memory): the counts and their storage.
* :mod:`.smoothing`: the strategy interface, per-order terms (alpha, gamma); :mod:`.tables`: the one
  builder of back-off tables (interpolated or back-off form) and the back-off walk that scores with them.
* :mod:`.model`: :class:`NGramModel` (count, estimate, score, save) and :class:`SmoothedNGram` (a strategy's model).
* the methods, each a strategy and a named class: :mod:`.mle` (MLE, add-k), :mod:`.interpolated` (Kneser-Ney,
  absolute discounting, Witten-Bell), :mod:`.jelinek_mercer`, :mod:`.katz`, :mod:`.stupid_backoff`.
* :mod:`.arpa` (ARPA files in and out) and :mod:`.infgram` (the unbounded-order infinity-gram).
"""

from .interpolated import AbsoluteDiscount, KneserNey, WittenBell
from .jelinek_mercer import JelinekMercer
from .katz import Katz
from .mle import MLE, AddK
from .model import NGramModel, SmoothedNGram
from .smoothing import Smoothing
from .stupid_backoff import StupidBackoff

__all__ = ["AbsoluteDiscount", "AddK", "JelinekMercer", "Katz", "KneserNey", "MLE", "NGramModel", "SmoothedNGram",
           "Smoothing", "StupidBackoff", "WittenBell"]
