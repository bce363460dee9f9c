"""Jelinek-Mercer smoothing: linear interpolation of maximum-likelihood orders, weights tuned by EM on valid.

Jelinek & Mercer (1980), in Chen & Goodman's (1998, sec. 2.3) recursion; the weights maximize the
likelihood of the validation split by EM (Dempster, Laird & Rubin 1977).
"""

from __future__ import annotations

from .model import SmoothedNGram
from .strategies import JelinekMercerSmoothing


class JelinekMercer(SmoothedNGram):
    """Deleted (linear) interpolation of maximum-likelihood estimates (Jelinek & Mercer 1980).

    The recursion of Chen & Goodman (1998, sec. 2.3), ending in the uniform distribution::

        P(w | h) = lambda_k(h) c(h w) / c(h) + (1 - lambda_k(h)) P(w | h'),     P_0 = 1 / V

    where k is the order of "h w"; a context never seen in training skips its order. With
    ``buckets`` > 1, lambda_k(h) also depends on the context's count (bucket b: 2^b <= c(h) < 2^(b+1)),
    as in Bahl et al.'s bucketing. With ``lambdas=None`` the weights maximize the likelihood of the
    validation split by EM (each token's posterior over the order that generated it), clipped to
    [0, 1 - 1e-4] so that no lower order is switched off; valid perplexity is then in-sample.

    Args:
        order: n-gram order.
        lambdas: None (EM on valid), or ``order`` numbers in [0, 1), lambda_1 (unigram vs uniform)
            .. lambda_n, one per order (no buckets).
        buckets: number of context-count buckets per order for EM (1 to 64).
        max_iter: EM iterations at most.
        tol: stop when the valid log-likelihood per token improves by less than this (nats).
        form: "interpolated" or "backoff".
        memory, storage: where the tables are kept (see :class:`~lmbench.models.ngram.model.NGramModel`).
    """

    def __init__(self, order: int = 3, lambdas=None, buckets: int = 8, max_iter: int = 1000, tol: float = 1e-9,
                 form: str = "interpolated", memory=None, storage: str = "auto"):
        super().__init__(order, form=form, memory=memory, storage=storage)
        self.lambdas = lambdas
        self.buckets = buckets
        self.max_iter = max_iter
        self.tol = tol

    def make_smoothing(self):
        return JelinekMercerSmoothing(self.lambdas, self.buckets, self.max_iter, self.tol)
