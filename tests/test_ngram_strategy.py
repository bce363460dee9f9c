"""A smoothing method added from outside lmbench: one small strategy class and one registry line.

The toy (docs/smoothing.md's worked example) is additive smoothing written as an interpolated
strategy, P(w | h) = (c(h w) + k P(w | h')) / (c(h) + k): k pseudo-counts spread by the lower order.
Nothing else is written for it, yet it gets both storages, both forms, checkpoints, the registry and runs.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import lmbench
from lmbench.errors import LmbenchError
from lmbench.models import registry
from lmbench.models.checkpoint import load_model
from lmbench.models.ngram import SmoothedNGram, Smoothing

from tests.conftest import make_dataset, random_lines


#: a budget of ~500 entries per window: several windows of this module's corpus.
SMALL_BUDGET = 50_000


class AddKInterpolated(Smoothing):
    """alpha(h w) = c(h w) / (c(h) + k), gamma(h) = k / (c(h) + k)."""

    name = "toy-addk"

    def __init__(self, k: float = 0.5):
        self.k = k

    def terms(self, order, a, context, n_contexts):
        total = np.bincount(context, weights=a, minlength=n_contexts)
        return a / (total + self.k)[context], self.k / (total + self.k)


@pytest.fixture
def toy_registered(monkeypatch):
    """The one registry line: ``<order>-toy`` names the strategy."""
    monkeypatch.setitem(registry.NGRAM_SMOOTHING, "toy",
                        registry.Family(SmoothedNGram, {"smoothing": "toy-addk"}, "toy interpolated add-k"))


@pytest.fixture(scope="module")
def ds():
    rng = np.random.default_rng(4)
    return make_dataset(random_lines(rng, 400, words=20), random_lines(rng, 40, words=22), random_lines(rng, 40, words=22))


def test_the_toy_is_the_formula_it_states():
    hand = make_dataset(["a b", "a c", "b a b"], ["a b"], ["a b"])      # c(a .) = 3: a b 2, a c 1
    model = SmoothedNGram(order=2, smoothing="toy-addk", params={"k": 2.0}).fit(hand.splits["train"], vocab=hand.vocab)
    a, b = hand.vocab.stoi["a"], hand.vocab.stoi["b"]
    # unigrams: N = 10, c(b) = 3: P1(b) = (3 + 2/5) / (10 + 2);  P(b | a) = (2 + 2 P1(b)) / (3 + 2)
    p1_b = (3 + 2 / 5) / 12
    assert math.exp(model.next_logprobs(np.array([a]))[b]) == pytest.approx((2 + 2 * p1_b) / 5, rel=1e-12)


@pytest.mark.parametrize("form", ["interpolated", "backoff"])
def test_the_toy_gets_both_storages_and_both_forms(ds, form):
    memory = SmoothedNGram(order=3, smoothing="toy-addk", form=form, storage="memory").fit(ds.splits["train"], vocab=ds.vocab)
    disk = SmoothedNGram(order=3, smoothing="toy-addk", form=form, storage="disk", memory=SMALL_BUDGET).fit(
        ds.splits["train"], vocab=ds.vocab)
    assert len(list(disk.counts_.context_windows(3))) > 1
    assert disk.on_disk and not memory.on_disk
    assert np.array_equal(disk.logprobs(ds.splits["test"]), memory.logprobs(ds.splits["test"]))
    for history in (ds.splits["test"][:5], np.array([ds.vocab.eos_id])):
        dist = np.exp(memory.next_logprobs(history))
        assert dist.sum() == pytest.approx(1.0, abs=1e-12) and (dist > 0).all()


@pytest.mark.parametrize("storage", ["memory", "disk"])
def test_the_toy_gets_checkpoints(ds, tmp_path, storage):
    model = SmoothedNGram(order=3, smoothing="toy-addk", params={"k": 0.3}, storage=storage, memory=SMALL_BUDGET)
    model.fit(ds.splits["train"], vocab=ds.vocab).save(tmp_path / "toy.pt")
    loaded = load_model(tmp_path / "toy.pt")
    assert type(loaded) is SmoothedNGram and loaded.get_params() == model.get_params()
    assert loaded.on_disk == (storage == "disk")
    assert np.array_equal(loaded.logprobs(ds.splits["test"]), model.logprobs(ds.splits["test"]))


def test_the_toy_gets_the_registry_and_runs(toy_registered, ds, tmp_path):
    spec = registry.resolve("3gram-toy", {"params": {"k": 2.0}})
    assert spec.cls is SmoothedNGram and spec.params == {"order": 3, "smoothing": "toy-addk", "params": {"k": 2.0}}
    assert "4gram-toy" in registry.available_names()
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(random_lines(np.random.default_rng(9), 300)) + "\n")
    out = tmp_path / "run"
    lmbench.run("3gram-toy,trigram-kn,trigram-stupid", corpus=str(corpus), out=str(out), memory="4K", bootstrap=0,
                save_scores=False, progress=False, quiet=True)
    table = pd.read_csv(out / "perplexity.csv")
    toy, kn = (table[table.model == name].set_index("split").perplexity for name in ("3gram-toy", "trigram-kn"))
    assert np.isfinite(toy).all() and (toy > kn).all()       # a run's table; Kneser-Ney is the better smoother
    loaded = load_model(out / "models" / "3gram-toy.pt")
    assert loaded.on_disk                                     # --memory reached it: fitted and saved on disk
    # the runner's handling of a built-in that is not a distribution, in the same run
    stupid = table[table.model == "trigram-stupid"]
    assert len(stupid) == 2 and not stupid.comparable.any() and stupid.perplexity.isna().all()
    assert stupid.note.str.contains("not normalized").all() and table[table.model != "trigram-stupid"].comparable.all()


def test_an_unknown_strategy_name_is_a_one_line_error():
    with pytest.raises(LmbenchError, match="unknown n-gram smoothing strategy 'toy-adk'; did you mean 'toy-addk'"):
        SmoothedNGram(order=2, smoothing="toy-adk").check_params()
    with pytest.raises(LmbenchError, match="bad params for smoothing 'toy-addk'"):
        SmoothedNGram(order=2, smoothing="toy-addk", params={"kk": 1}).check_params()
