"""Jelinek-Mercer smoothing: linear interpolation of maximum-likelihood orders, weights tuned by EM on valid.

Jelinek & Mercer (1980), in Chen & Goodman's (1998, sec. 2.3) recursion; the weights maximize the
likelihood of the validation split by EM (Dempster, Laird & Rubin 1977).
"""

from __future__ import annotations

import numpy as np

from ...errors import LmbenchError, is_finite_number, is_whole
from .model import SmoothedNGram
from .smoothing import Smoothing

#: lambdas are kept inside [0, 1 - LAMBDA_MARGIN] so that every lower order keeps some weight.
LAMBDA_MARGIN = 1e-4
#: the most context-count buckets: bucket b holds counts 2^b <= c(h) < 2^(b+1), and counts are 64-bit.
MAX_BUCKETS = 64


def bucket_of(context_counts: np.ndarray, n_buckets: int) -> np.ndarray:
    """Bucket of each context count: b for 2^b <= c(h) < 2^(b+1), the last bucket for all larger (0 for 0 or 1)."""
    c = np.maximum(np.asarray(context_counts, dtype=np.float64), 1.0)
    return np.minimum(np.floor(np.log2(c)).astype(np.int64), n_buckets - 1)


class JelinekMercerSmoothing(Smoothing):
    """Jelinek-Mercer terms: alpha(h w) = lambda_k(h) c(h w) / c(h), gamma(h) = 1 - lambda_k(h).

    lambda_k(h) depends on the order and the context count's bucket (:func:`bucket_of`); given, or
    fitted by EM on the validation split (:meth:`estimate`).
    """

    name = "interp"
    fitted_keys = ("lambdas_", "lambdas_tuned_", "em_iterations_")

    def __init__(self, lambdas=None, buckets: int = 8, max_iter: int = 1000, tol: float = 1e-9):
        self.lambdas = lambdas
        self.buckets = buckets
        self.max_iter = max_iter
        self.tol = tol

    def check(self, order):
        if not is_whole(self.buckets) or not 1 <= self.buckets <= MAX_BUCKETS:
            raise LmbenchError(f"Jelinek-Mercer buckets must be a whole number from 1 to {MAX_BUCKETS} (bucket b "
                               f"holds context counts from 2^b; 64-bit counts need no more), got {self.buckets!r}")
        if not is_whole(self.max_iter) or self.max_iter < 1:
            raise LmbenchError(f"Jelinek-Mercer max_iter must be a whole number >= 1, got {self.max_iter!r}")
        if not is_finite_number(self.tol) or not self.tol > 0:
            raise LmbenchError(f"Jelinek-Mercer tol must be a finite number > 0, got {self.tol!r}")
        if self.lambdas is not None:
            values = self.lambdas
            if (isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) != order
                    or not all(is_finite_number(x) and 0 <= x < 1 for x in values)):
                raise LmbenchError(f"Jelinek-Mercer lambdas must be a list of {order} numbers in [0, 1) "
                                   f"(one per order, unigram first), got {values!r}")

    def estimate(self, counts, valid_ids, eos_id):
        if self.lambdas is not None:
            self.lambdas_ = np.asarray(self.lambdas, dtype=np.float64).reshape(counts.order, 1)
            self.lambdas_tuned_, self.em_iterations_ = False, 0
            return
        if valid_ids is None:
            raise LmbenchError("Jelinek-Mercer with lambdas=None tunes its weights on a validation split; "
                               "pass valid_ids or set lambdas")
        self.lambdas_, self.em_iterations_ = self._em(counts, valid_ids, eos_id)
        self.lambdas_tuned_ = True

    def _em(self, counts, valid_ids, eos_id) -> tuple[np.ndarray, int]:
        """(lambdas (order, buckets), iterations): EM on the validation split from lambda = 0.5."""
        c, n, nb = counts, counts.order, int(self.buckets)
        query = c.query_split(valid_ids, eos_id)
        M = query.tokens.size
        # p_ml[:, k]: ML estimate of order k (k = 0: uniform); usable[:, k]: the context was seen.
        p_ml = np.zeros((M, n + 1))
        usable = np.zeros((M, n + 1), dtype=bool)
        bucket = np.zeros((M, n + 1), dtype=np.int64)
        p_ml[:, 0], usable[:, 0] = 1.0 / c.vocab_size, True
        for k in range(1, n + 1):
            total = c.take(c.context_totals(k), query.contexts[k])
            gram = c.take(c.counts[k], query.grams[k])
            usable[:, k] = (total > 0) & (query.max_order >= k)
            p_ml[:, k] = np.where(usable[:, k], gram / np.maximum(total, 1), 0.0)
            bucket[:, k] = bucket_of(total, nb)
        lam = np.full((n, nb), 0.5)
        previous, iterations = -np.inf, 0
        for iterations in range(1, int(self.max_iter) + 1):
            # mixture weight of each order: lambda_k times (1 - lambda_j) of every usable higher order
            lam_tok = np.zeros((M, n + 1))
            for k in range(1, n + 1):
                lam_tok[:, k] = np.where(usable[:, k], lam[k - 1][bucket[:, k]], 0.0)
            weight = np.zeros((M, n + 1))
            through = np.ones(M)
            for k in range(n, 0, -1):
                weight[:, k] = through * lam_tok[:, k]
                through = through * (1.0 - lam_tok[:, k])
            weight[:, 0] = through
            joint = weight * p_ml
            p = joint.sum(axis=1)
            loglik = float(np.log(p).mean())
            post = joint / p[:, None]                       # who generated the token
            reached = np.cumsum(post, axis=1)               # reached[:, k]: generated at order <= k
            new = lam.copy()
            for k in range(1, n + 1):
                rows = usable[:, k]
                stopped = np.bincount(bucket[rows, k], weights=post[rows, k], minlength=nb)
                passed = np.bincount(bucket[rows, k], weights=reached[rows, k], minlength=nb)
                pooled = stopped.sum() / passed.sum() if passed.sum() > 0 else 0.5
                new[k - 1] = np.where(passed > 0, stopped / np.where(passed > 0, passed, 1.0), pooled)
            lam = np.clip(new, 0.0, 1.0 - LAMBDA_MARGIN)
            if loglik - previous < self.tol:
                break
            previous = loglik
        return lam, iterations

    def terms(self, k, a, context, n_contexts):
        total = np.bincount(context, weights=a, minlength=n_contexts).astype(np.int64).astype(np.float64)
        lam = self.lambdas_[k - 1][bucket_of(total, self.lambdas_.shape[1])]
        seen = total > 0
        alpha = lam[context] * a / np.where(seen, total, 1.0)[context]
        return alpha, np.where(seen, 1.0 - lam, 1.0)

    def valid_use(self) -> str:
        return "interpolation weights by EM on valid" if self.lambdas_tuned_ else ""

    def fitted_summary(self):
        lam = self.lambdas_
        return {"lambdas": [round(float(x), 6) for x in lam[:, 0]] if lam.shape[1] == 1
                else [[round(float(x), 6) for x in row] for row in lam],
                "lambdas_tuned_on_valid": bool(self.lambdas_tuned_), "em_iterations": int(self.em_iterations_)}


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
