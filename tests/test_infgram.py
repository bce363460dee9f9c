"""The ∞-gram: hand-worked values, a plain-Python brute force (both variants, both line conventions,
capped and unbounded contexts), the suffix array and its lcp against sorted(), equality with
Witten-Bell n-grams at a capped context, sums to one, match statistics, persistence and bad input."""

from __future__ import annotations

import math
import zipfile
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmbench.errors import LmbenchError
from lmbench.models.checkpoint import FORMAT, HEADER_MEMBER
from lmbench.models.ngram.infgram import InfiniGram, adjacent_lcp, suffix_array
from lmbench.models.ngram.interpolated import WittenBell
from lmbench.models.checkpoint import load_model
from lmbench.data.vocab import Vocabulary

EOS, UNK = 1, 0

# ---------------------------------------------------------------- hand-worked example
#
# train "a b" / "a c" / "b a b":  <s> a b </s>  <s> a c </s>  <s> b a b </s>
# vocabulary <unk>=0 </s>=1 a=2 b=3 c=4 (V = 5); unigrams a:3 b:3 c:1 </s>:3 (N = 10, 4 types)

A, B, C = 2, 3, 4
HAND_VOCAB = Vocabulary(["<unk>", "</s>", "a", "b", "c"])
HAND_TRAIN = np.array([A, B, EOS, A, C, EOS, B, A, B, EOS])


def test_raw_infgram_uses_the_longest_matching_context_by_hand():
    model = InfiniGram("none").fit(HAND_TRAIN, vocab=HAND_VOCAB)
    # "a b": a | <s> = c(<s> a)/c(<s>) = 2/3; b | <s> a = 1/2; </s> | <s> a b = 1/1
    # "b a c": b | <s> = 1/3; a | <s> b = 1; c | <s> b a: "<s> b a" was seen (once, before b) so the
    # estimate is c(<s> b a c) / c(<s> b a) = 0; </s> | <s> b a c: longest seen suffix "a c" -> 1/1
    got = np.exp(model.logprobs(np.array([A, B, EOS, B, A, C, EOS])))
    np.testing.assert_allclose(got, [2 / 3, 1 / 2, 1, 1 / 3, 1, 0, 1], rtol=1e-15)
    assert model.evaluate(np.array([B, A, C, EOS])).n_zero_prob == 1


def test_witten_bell_infgram_interpolates_every_matched_length_by_hand():
    model = InfiniGram("wb").fit(HAND_TRAIN, vocab=HAND_VOCAB)
    p0 = (1 + 4 / 5) / (10 + 4)          # c: unigram count 1, 4 types, uniform 1/5
    p1 = (1 + 2 * p0) / (3 + 2)          # after "a": b:2 c:1
    p2 = (0 + 1 * p1) / (1 + 1)          # after "b a": b:1
    p3 = (0 + 1 * p2) / (1 + 1)          # after "<s> b a": b:1
    assert p3 == pytest.approx(11 / 175)
    assert math.exp(model.next_logprobs(np.array([B, A]))[C]) == pytest.approx(11 / 175, rel=1e-14)
    assert math.exp(model.logprobs(np.array([B, A, C, EOS]))[2]) == pytest.approx(11 / 175, rel=1e-14)


# ---------------------------------------------------------------- brute force


class Brute:
    """The ∞-gram by definition, over Python lists: count every string by scanning the padded stream."""

    def __init__(self, train: list[int], V: int, smoothing: str, max_context, cross_lines: bool):
        self.V, self.smoothing, self.max_context, self.cross_lines = V, smoothing, max_context, cross_lines
        self.stream = pad(train, V)

    def followers(self, s: tuple) -> Counter:
        """c(s w) for every predictable w seen after s."""
        k, out = len(s), Counter()
        for i in range(len(self.stream) - k):
            if tuple(self.stream[i:i + k]) == s and self.stream[i + k] < self.V:
                out[self.stream[i + k]] += 1
        return out

    def context(self, padded: list[int], t: int) -> tuple:
        start = 0 if self.cross_lines else max(i for i in range(t) if padded[i] == self.V)
        context = padded[start:t]
        if self.max_context is not None:
            context = context[len(context) - min(len(context), self.max_context):]
        return tuple(context)

    def longest(self, context: tuple) -> int:
        return max(k for k in range(len(context) + 1) if sum(self.followers(context[len(context) - k:]).values()))

    def distribution(self, context: tuple) -> list[float]:
        L = self.longest(context)
        if self.smoothing == "none":
            f = self.followers(context[len(context) - L:])
            return [f[w] / sum(f.values()) for w in range(self.V)]
        P = [1 / self.V] * self.V
        for k in range(L + 1):
            f = self.followers(context[len(context) - k:])
            c, n = sum(f.values()), len(f)
            P = [(f[w] + n * P[w]) / (c + n) for w in range(self.V)]
        return P

    def score(self, ids: list[int]) -> tuple[list[float], list[int], list[bool]]:
        """(log-probabilities, matched lengths, argmax == target) of every token of a split."""
        padded = pad(ids, self.V)
        logp, lengths, right = [], [], []
        for t, w in enumerate(padded):
            if w == self.V:
                continue
            context = self.context(padded, t)
            P = self.distribution(context)
            logp.append(math.log(P[w]) if P[w] > 0 else -math.inf)
            lengths.append(self.longest(context))
            right.append(max(range(self.V), key=lambda v: (P[v], -v)) == w)
        return logp, lengths, right


def pad(ids: list[int], bos: int) -> list[int]:
    """<s> before every line (a last line without a line end is a line too)."""
    out, at_start = [], True
    for token in ids:
        if at_start:
            out.append(bos)
        out.append(int(token))
        at_start = token == EOS
    return out


def random_split(rng, n_lines: int, V: int, copy_from: list[list[int]] | None = None) -> list[int]:
    """Lines over a small alphabet (long repeats), some empty, some copied in part from other lines."""
    ids = []
    for _ in range(n_lines):
        if copy_from and rng.random() < 0.4:
            line = copy_from[rng.integers(len(copy_from))]
            cut = rng.integers(0, len(line) + 1)
            body = line[cut:] + [int(x) for x in rng.integers(2, V, size=rng.integers(0, 3))]
        else:
            body = [int(x) for x in rng.integers(2, V, size=rng.integers(0, 7))]
        if rng.random() < 0.15:
            body.insert(int(rng.integers(0, len(body) + 1)), UNK)
        ids += body + [EOS]
    return ids


def lines_of(ids: list[int]) -> list[list[int]]:
    out, line = [], []
    for token in ids:
        if token == EOS:
            out.append(line)
            line = []
        else:
            line.append(token)
    return out


def vocab_of(V: int) -> Vocabulary:
    return Vocabulary(["<unk>", "</s>"] + [f"w{i}" for i in range(2, V)])


CASES = [(smoothing, cap, cross) for smoothing in ("none", "wb") for cap in (None, 0, 1, 3) for cross in (False, True)]


@pytest.mark.parametrize("smoothing,max_context,cross_lines", CASES)
def test_scores_match_brute_force_token_by_token(smoothing, max_context, cross_lines):
    for seed in range(3):
        rng = np.random.default_rng(seed)
        V = 7                                             # w6 never occurs in train: an unseen token
        train = random_split(rng, 12, V - 1)
        if seed == 1:
            train = train[:-1]                            # an unterminated last line: its end has no next token
        test = random_split(rng, 8, V, copy_from=lines_of(train))
        if seed == 2:
            test = test[:-1]
        brute = Brute(train, V, smoothing, max_context, cross_lines)
        model = InfiniGram(smoothing, max_context, cross_lines).fit(np.array(train), vocab=vocab_of(V))
        logp, lengths, right = brute.score(test)
        np.testing.assert_allclose(model.logprobs(np.array(test)), logp, rtol=1e-12, atol=0)
        stats = model.match_stats(np.array(test))
        assert stats["match_length_histogram"] == np.bincount(lengths).tolist()
        assert stats["mean_match_length"] == pytest.approx(np.mean(lengths))
        assert stats["accuracy"] == pytest.approx(np.mean(right))
        assert stats["n_tokens"] == len(test)


@pytest.mark.parametrize("smoothing,cross_lines", [("none", False), ("wb", False), ("wb", True)])
def test_next_logprobs_match_brute_force_and_logprobs_bit_for_bit(smoothing, cross_lines):
    rng = np.random.default_rng(7)
    V = 7
    train = random_split(rng, 15, V - 1)
    test = np.array(random_split(rng, 6, V, copy_from=lines_of(train)))
    model = InfiniGram(smoothing, cross_lines=cross_lines).fit(np.array(train), vocab=vocab_of(V))
    brute = Brute(train, V, smoothing, None, cross_lines)
    scores = model.logprobs(test)
    padded = pad(list(test), V)
    at = [t for t, w in enumerate(padded) if w != V]
    for i in range(test.size):
        dist = model.next_logprobs(test[:i])
        assert dist[test[i]] == scores[i]
        with np.errstate(divide="ignore"):
            expected = np.log(brute.distribution(brute.context(padded, at[i])))
        np.testing.assert_allclose(dist, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("cross_lines", [False, True])
@pytest.mark.parametrize("max_context", [None, 2])
def test_witten_bell_variant_sums_to_one_for_random_histories(cross_lines, max_context):
    rng = np.random.default_rng(3)
    V = 8
    train = random_split(rng, 30, V - 2)                  # two vocabulary entries never seen in training
    model = InfiniGram("wb", max_context, cross_lines).fit(np.array(train), vocab=vocab_of(V))
    histories = [np.array([], dtype=np.int64), np.array([EOS]), np.array([V - 1, V - 2]), np.array([UNK])]
    histories += [rng.integers(0, V, size=rng.integers(1, 15)) for _ in range(40)]
    histories += [np.array(train[:k]) for k in rng.integers(1, len(train), size=20)]
    for history in histories:
        dist = model.next_logprobs(history)
        assert dist.shape == (V,) and np.isfinite(dist).all()
        assert np.exp(dist).sum() == pytest.approx(1.0, abs=1e-12)


def test_capped_witten_bell_infgram_equals_witten_bell_ngrams(tiny_dataset):
    ds = tiny_dataset
    train, test = ds.splits["train"], ds.splits["test"]
    for order in (1, 2, 3, 5):
        ngram = WittenBell(order=order).fit(train, vocab=ds.vocab)
        infgram = InfiniGram("wb", max_context=order - 1).fit(train, vocab=ds.vocab)
        np.testing.assert_allclose(infgram.logprobs(test), ngram.logprobs(test), rtol=1e-12)


def test_unbounded_context_scores_better_than_any_cap_on_repeated_text():
    # a test line seen verbatim in training: the unbounded model follows it, short caps cannot
    vocab = vocab_of(6)
    train = np.array([2, 3, 4, 5, 2, 3, 5, EOS, 2, 3, 4, 2, EOS, 3, 2, 3, 4, 5, 4, EOS])
    test = np.array([2, 3, 4, 5, 2, 3, 5, EOS])
    unbounded = InfiniGram("none").fit(train, vocab=vocab)
    # 2 | <s>: 2/3; then "<s> 2 3" is followed by 4 twice, "<s> 2 3 4" by 5 and 2, and "<s> 2 3 4 5" once
    assert np.exp(unbounded.logprobs(test)).tolist() == pytest.approx([2 / 3, 1, 1, 1 / 2, 1, 1, 1, 1])
    capped = InfiniGram("none", max_context=2).fit(train, vocab=vocab)
    assert capped.evaluate(test).nll_nats > unbounded.evaluate(test).nll_nats


def test_accuracy_finds_an_argmax_never_seen_after_the_context():
    # "<s> a" is followed once each by b, c, d, but "a" inside a line is followed by e 30 times. After
    # "<s> a" Witten-Bell leaves half the mass (3 types in 3 counts) to P(. | a), where e dominates
    a, b, c, d, e = 2, 3, 4, 5, 6
    train = np.array([a, b, EOS, a, c, EOS, a, d, EOS] + [c, a, e, EOS] * 30)
    model = InfiniGram("wb").fit(train, vocab=vocab_of(7))
    assert int(np.argmax(model.next_logprobs(np.array([a])))) == e
    brute = Brute(list(train), 7, "wb", None, False)
    test = np.array([a, e, EOS, a, b, EOS])
    _, _, right = brute.score(list(test))
    assert right[1] and not right[4]
    assert model.match_stats(test)["accuracy"] == pytest.approx(np.mean(right))
    raw = InfiniGram("none").fit(train, vocab=vocab_of(7)).match_stats(test)   # raw: b, the lowest of 3 ties
    assert raw["accuracy"] == pytest.approx(np.mean(Brute(list(train), 7, "none", None, False).score(list(test))[2]))


# ---------------------------------------------------------------- suffix array


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=40), st.one_of(st.none(), st.integers(1, 6)))
def test_suffix_array_sorts_suffixes_like_python(tokens, depth):
    tokens = np.array(tokens)
    sa, ranks = suffix_array(tokens, depth)
    suffixes = [tuple(tokens[i:]) for i in range(tokens.size)]
    if depth is None:
        assert sa.tolist() == sorted(range(tokens.size), key=lambda i: suffixes[i])
    else:
        prefixes = [suffixes[i][:depth] for i in sa]
        assert prefixes == sorted(prefixes)
    true_lcp = [next((k for k, (x, y) in enumerate(zip(suffixes[a], suffixes[b])) if x != y),
                     min(len(suffixes[a]), len(suffixes[b]))) for a, b in zip(sa[:-1], sa[1:])]
    cap = 2 ** len(ranks) - 1
    assert adjacent_lcp(sa, ranks).tolist() == [min(x, cap) for x in true_lcp]


def test_index_sorts_suffixes_only_as_deep_as_a_query_can_match():
    # a repeated 6-token line keeps prefixes tied up to 8 tokens, so sorting cannot finish early: it
    # must stop at the first power of two covering the longest padded line (8 >= 8), or max_context + 1
    line = [2, 3, 4, 5, 2, 3]
    train = np.array(line + [EOS] + line + [EOS] + [4, EOS])
    assert InfiniGram("wb").fit(train, vocab=vocab_of(6)).index_.sorted_depth == 8
    assert InfiniGram("wb", max_context=2).fit(train, vocab=vocab_of(6)).index_.sorted_depth == 4
    assert InfiniGram("wb", cross_lines=True).fit(train, vocab=vocab_of(6)).index_.sorted_depth == train.size + 4


# ---------------------------------------------------------------- persistence and input


@pytest.mark.parametrize("smoothing", ["none", "wb"])
def test_save_and_load_model_round_trip_without_torch_format(tmp_path, tiny_dataset, smoothing):
    ds = tiny_dataset
    model = InfiniGram(smoothing, max_context=4, cross_lines=True).fit(ds.splits["train"], vocab=ds.vocab)
    path = tmp_path / "infgram.pt"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        assert HEADER_MEMBER in archive.namelist()
        assert f'"format": "{FORMAT}"' in archive.read(HEADER_MEMBER).decode()
    loaded = load_model(path)
    assert type(loaded) is InfiniGram and loaded.get_params() == model.get_params()
    test = ds.splits["test"]
    np.testing.assert_array_equal(loaded.logprobs(test), model.logprobs(test))
    assert loaded.match_stats(test) == model.match_stats(test)


def test_damaged_index_in_a_checkpoint_is_a_one_line_error(tmp_path, tiny_dataset, monkeypatch):
    ds = tiny_dataset
    model = InfiniGram().fit(ds.splits["train"], vocab=ds.vocab)
    state = model.state_dict()
    state["sa"] = state["sa"][::-1].copy()                 # a permutation, but not sorted
    monkeypatch.setattr(model, "state_dict", lambda: state)
    path = tmp_path / "damaged.pt"
    model.save(path)
    with pytest.raises(LmbenchError) as err:
        load_model(path)
    assert "damaged" in str(err.value) and "suffix array" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("params", [{"smoothing": "kn"}, {"smoothing": None}, {"max_context": -1},
                                    {"max_context": 2.5}, {"max_context": True}, {"cross_lines": "yes"}])
def test_bad_parameters_are_one_line_errors(params):
    with pytest.raises(LmbenchError) as err:
        InfiniGram(**params).check_params()
    assert "\n" not in str(err.value) and "infinity-gram" in str(err.value)


def test_ids_outside_the_vocabulary_are_refused_in_one_line():
    model = InfiniGram().fit(HAND_TRAIN, vocab=HAND_VOCAB)
    for bad in (np.array([A, 5]), np.array([-1, EOS])):
        with pytest.raises(LmbenchError, match="outside 0..4") as err:
            model.logprobs(bad)
        assert "\n" not in str(err.value)
    with pytest.raises(LmbenchError, match="outside"):
        InfiniGram().fit(np.array([A, 9, EOS]), vocab=HAND_VOCAB)


def test_a_run_records_match_lengths_and_accuracy_per_split(tmp_path):
    """The runner asks every model for its split extras; the ∞-gram reports match length and accuracy."""
    import json
    import warnings

    from lmbench.runs.runner import RunConfig, run_benchmark

    from tests.conftest import random_lines

    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(random_lines(np.random.default_rng(4), 300)) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_benchmark(RunConfig(models=["infgram-wb", "trigram-kn"], corpus=str(corpus), out=str(tmp_path / "r"),
                                         bootstrap=0), echo=lambda *a: None)
    extras = json.loads((tmp_path / "r" / "config.json").read_text())["models"]["infgram-wb"]["extras"]
    model = result.model("infgram-wb")
    assert extras["test"] == model.match_stats(result.scores("infgram-wb", "test").ids)
    note = result.table.set_index(["model", "split"]).loc[("infgram-wb", "test"), "note"]
    assert "mean_match_length=" in note and "accuracy=" in note
