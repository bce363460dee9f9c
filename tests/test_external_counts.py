"""N-gram fitting in bounded memory (lmbench.models.ngram.ondisk): the on-disk path against the in-memory one.

Tiny budgets force many sorted runs, several merge windows and many scoring slices on small corpora;
every table and every per-token score must be bit-for-bit the in-memory path's.
"""

from __future__ import annotations

import gc
import io
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmbench.errors import LmbenchError
from lmbench.models.ngram.interpolated import AbsoluteDiscount, KneserNey, WittenBell
from lmbench.models.ngram.counts import NGramCounts, line_chunks
from lmbench.models.ngram.ondisk import Budget, OnDiskCounts, Progress, parse_memory
from lmbench.models.ngram.ondisk.arrays import SAMPLE_EVERY, ArrayFile, write_array
from lmbench.models.ngram.ondisk.budget import BYTES_PER_CHUNK_TOKEN
from lmbench.models.ngram.ondisk.runs import SortedRuns
from lmbench.models.checkpoint import load_model
from lmbench.models.registry import resolve

from tests.conftest import SPILL_MEMORY, make_dataset

TINY = SPILL_MEMORY


@pytest.fixture
def corpus(spill_corpus):
    return spill_corpus


def fit(cls, ds, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # small-data discount fallbacks, the same on both paths
        return cls(**params).fit(ds.splits["train"], ds.splits["valid"], vocab=ds.vocab)


def test_tiny_budget_spills_many_runs(corpus):
    train = corpus.splits["train"]
    chunks = list(line_chunks(train, corpus.vocab.eos_id, Budget(TINY).chunk_tokens))
    assert len(chunks) >= 6


#: every n-gram family and form, by registry suffix ("": MLE).
FAMILIES = ["", "add1", "addk", "kn", "kn1", "wb", "abs", "katz", "interp", "stupid", "kn-bo", "kn1-bo", "wb-bo", "abs-bo"]


def fit_name(name, ds, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # small-data discount fallbacks, the same on both paths
        return resolve(name, params).build().fit(ds.splits["train"], ds.splits["valid"], vocab=ds.vocab)


def assert_same_scores(disk, memory, ds, history):
    assert disk.on_disk and not memory.on_disk
    for split in ("valid", "test"):
        assert np.array_equal(disk.logprobs(ds.splits[split]), memory.logprobs(ds.splits[split]))
    assert np.array_equal(disk.next_logprobs(history), memory.next_logprobs(history))
    assert disk.n_params == memory.n_params
    assert disk.fitted_summary() == memory.fitted_summary()


@pytest.mark.parametrize("suffix", FAMILIES)
def test_every_family_scores_the_same_on_and_off_disk(corpus, suffix):
    name = "4gram" + (f"-{suffix}" if suffix else "")
    memory = fit_name(name, corpus, storage="memory")
    disk = fit_name(name, corpus, storage="disk", memory=TINY)
    assert_same_scores(disk, memory, corpus, corpus.splits["test"][:7])


@settings(max_examples=100, deadline=None)
@given(lines=st.lists(st.lists(st.integers(0, 9), max_size=9), min_size=1, max_size=40),
       suffix=st.sampled_from(FAMILIES), order=st.integers(1, 5), memory=st.sampled_from([4096, 9000]),
       history=st.lists(st.integers(0, 12), max_size=5))
def test_on_and_off_disk_scores_are_equal_for_random_corpora_and_budgets(lines, suffix, order, memory, history):
    text = [" ".join(f"w{t}" for t in line) for line in lines]
    ds = make_dataset(text, text[::2], text[1::2] or text)
    name = f"{order}gram" + (f"-{suffix}" if suffix else "")
    history = np.array([h % len(ds.vocab) for h in history], dtype=np.int64)
    assert_same_scores(fit_name(name, ds, storage="disk", memory=memory), fit_name(name, ds, storage="memory"),
                       ds, history)


def test_on_disk_tables_equal_in_memory_tables(corpus):
    train, V, eos = corpus.splits["train"], len(corpus.vocab), corpus.vocab.eos_id
    ref = NGramCounts.from_ids(train, 4, V, eos)
    disk = OnDiskCounts.build(train, 4, V, eos, budget=Budget(TINY), continuation=True)
    whole = lambda values: values if isinstance(values, np.ndarray) else values.read(0, values.size)  # noqa: E731
    assert np.array_equal(disk.counts[1], ref.counts[1])
    for k in range(2, 5):
        assert np.array_equal(whole(disk.keys[k]), ref.keys[k])
        assert np.array_equal(whole(disk.counts[k]), ref.counts[k])
        assert np.array_equal(whole(disk.suffix_ids(k)), ref.suffix_ids(k))
        assert np.array_equal(whole(disk.context_totals(k)), ref.context_totals(k))
        assert disk.bos_start(k) == ref.bos_start(k)
        assert np.array_equal(np.arange(ref.n_types(k)) >= ref.bos_start(k), ref.first_token(k) == ref.bos_id)
        assert len(list(disk.context_windows(k))) > 1 or ref.n_types(k) < Budget(TINY).window_items
    for k in (1, 2, 3):
        assert np.array_equal(whole(disk.continuation(k)), ref.continuation(k))


@pytest.mark.parametrize("cls", [KneserNey, AbsoluteDiscount, WittenBell])
def test_orders_with_no_ngram_at_all_score_as_in_memory(cls):
    ds = make_dataset(["a", "b", "a"], ["a"], ["b a"])          # one-word lines: nothing above bigrams
    memory = fit(cls, ds, order=6, storage="memory")
    disk = fit(cls, ds, order=6, storage="disk", memory=4096)
    assert np.array_equal(disk.logprobs(ds.splits["test"]), memory.logprobs(ds.splits["test"]))
    history = np.array([2, 3, 2, 3, 2])
    assert np.array_equal(disk.next_logprobs(history), memory.next_logprobs(history))


def test_scoring_a_split_in_line_slices_equals_scoring_it_whole(corpus):
    memory = fit(KneserNey, corpus, order=3, storage="memory")
    disk = fit(KneserNey, corpus, order=3, storage="disk", memory=TINY)
    train = corpus.splits["train"]
    assert disk.counts_.scoring_chunk_tokens() < train.size / 4      # scored in several slices
    assert np.array_equal(disk.logprobs(train), memory.logprobs(train))


def test_auto_storage_goes_to_disk_only_when_the_estimate_exceeds_the_budget(corpus):
    assert fit(KneserNey, corpus, order=3, storage="auto", memory="1G").on_disk is False
    assert fit(KneserNey, corpus, order=3, storage="auto", memory=TINY).on_disk is True


def test_on_disk_model_saves_and_reloads_with_the_same_scores(corpus, tmp_path):
    disk = fit(KneserNey, corpus, order=3, storage="disk", memory=TINY)
    disk.save(tmp_path / "kn.model")
    loaded = load_model(tmp_path / "kn.model")
    assert np.array_equal(loaded.logprobs(corpus.splits["test"]), disk.logprobs(corpus.splits["test"]))


def test_a_reloaded_model_maps_its_large_arrays_and_survives_the_file_being_replaced(corpus, tmp_path, monkeypatch):
    import lmbench.models.checkpoint as base

    monkeypatch.setattr(base, "COPY_BELOW_BYTES", 0)  # this corpus's tables are small: map the checkpoint,
    monkeypatch.setattr(base, "MAP_BYTES", 4096)      # every array over 4 KB
    disk = fit(KneserNey, corpus, order=3, storage="disk", memory=TINY)
    disk.save(tmp_path / "kn.model")
    payload = base.payload_from_zip(zipfile.ZipFile(tmp_path / "kn.model"), tmp_path / "kn.model")
    mapped = [k for k, v in payload["state"].items() if isinstance(v, np.memmap)]
    big = [k for k in payload["numpy_keys"] if payload["state"][k].nbytes >= 4096]
    assert mapped and sorted(mapped) == sorted(big)
    with zipfile.ZipFile(tmp_path / "kn.model") as archive:  # mapped bytes equal the stored arrays
        for key in mapped:
            with archive.open(f"{key}.npy") as member:
                assert np.array_equal(np.lib.format.read_array(member), payload["state"][key])
    loaded = load_model(tmp_path / "kn.model")
    assert loaded.on_disk  # scored from the checkpoint's tables in bounded memory, not rebuilt in memory
    borrowed = [table.values for table in loaded.logp_[2:] + loaded.bow_[2:]] + loaded.counts_.keys[2:]
    assert any(f.handle is not None and f.path == tmp_path / "kn.model" for f in borrowed)
    want = disk.logprobs(corpus.splits["test"])
    assert np.array_equal(loaded.logprobs(corpus.splits["test"]), want)
    fit(KneserNey, corpus, order=2).save(tmp_path / "kn.model")  # replaced by rename: the map keeps the old file
    assert np.array_equal(loaded.logprobs(corpus.splits["test"]), want)


def test_temporary_folder_is_removed_when_the_model_is_dropped(corpus):
    disk = fit(KneserNey, corpus, order=3, storage="disk", memory=TINY)
    folder = disk.counts_.folder
    assert any(folder.iterdir())
    del disk
    gc.collect()
    assert not folder.exists()


def test_on_disk_tables_go_under_the_scratch_dir_when_one_is_given(corpus, tmp_path):
    model = KneserNey(order=2, storage="disk", memory=TINY)
    model.scratch_dir = str(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(corpus.splits["train"], vocab=corpus.vocab)
    assert model.counts_.folder.parent == tmp_path


def test_ptb_on_disk_kneser_ney_equals_in_memory_and_kenlm(ptb_dataset, ptb_kn5):
    """PTB 5-gram KN spilled in 4 sorted runs: the in-memory scores exactly, KenLM's 141.19 test perplexity."""
    ds = ptb_dataset
    train, test = ds.splits["train"], ds.splits["test"]
    budget = "32M"
    assert len(list(line_chunks(train, ds.vocab.eos_id, Budget(parse_memory(budget)).chunk_tokens))) == 4
    disk = KneserNey(order=5, storage="disk", memory=budget).fit(train, vocab=ds.vocab)
    scores = disk.logprobs(test)
    assert np.array_equal(scores, ptb_kn5.logprobs(test))
    assert abs(np.exp(-scores.mean()) - 141.19) < 0.01


def test_interpolation_terms_of_an_on_disk_model_is_a_one_line_error(corpus):
    disk = fit(KneserNey, corpus, order=2, storage="disk", memory=TINY)
    with pytest.raises(LmbenchError, match="storage='memory'"):
        disk.interpolation_terms()


# ---------------------------------------------------------------- parameters


@pytest.mark.parametrize("text,expected", [("4G", 4 << 30), ("512M", 512 << 20), ("1.5GB", 3 << 29),
                                           ("64k", 64 << 10), (1_000_000, 1_000_000), (None, 4 << 30)])
def test_memory_sizes_parse_in_binary_units(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize("bad", ["lots", "4X", "-1G", 100, True, float("nan")])
def test_bad_memory_budgets_are_one_line_errors(bad):
    with pytest.raises(LmbenchError, match="memory budget") as err:
        parse_memory(bad)
    assert "\n" not in str(err.value)


def test_bad_storage_is_refused_before_any_data_is_read():
    with pytest.raises(LmbenchError, match="storage must be one of auto, memory, disk"):
        KneserNey(order=3, storage="ssd").check_params()
    with pytest.raises(LmbenchError, match="memory budget"):
        WittenBell(order=3, memory="big").check_params()


# ---------------------------------------------------------------- building blocks


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 300), max_size=60), min_size=1, max_size=8), st.integers(8, 64))
def test_merged_runs_equal_one_unique_over_everything(tmp_path_factory, chunks, window):
    runs = SortedRuns(tmp_path_factory.mktemp("runs"), "r", window)
    for chunk in chunks:
        runs.add(np.array(chunk, dtype=np.int64))
    windows = list(runs.merged())
    keys = np.concatenate([w[0] for w in windows]) if windows else np.empty(0, np.int64)
    counts = np.concatenate([w[1] for w in windows]) if windows else np.empty(0, np.int64)
    expected_keys, expected_counts = np.unique(np.concatenate([np.array(c, np.int64) for c in chunks]),
                                               return_counts=True)
    assert np.array_equal(keys, expected_keys) and np.array_equal(counts, expected_counts)
    if windows and window >= 4 * len(runs.runs):
        assert max(w[0].size for w in windows) <= window
    runs.remove()


def test_merge_carries_the_payload_of_each_key(tmp_path):
    runs = SortedRuns(tmp_path, "r", 16, payload=True)
    runs.add_sorted(np.array([1, 5, 9]), np.array([1, 1, 2]), np.array([10, 50, 90]))
    runs.add_sorted(np.array([5, 6, 9]), np.array([3, 1, 1]), np.array([50, 60, 90]))
    keys, counts, payload = (np.concatenate(column) for column in zip(*runs.merged()))
    assert keys.tolist() == [1, 5, 6, 9] and counts.tolist() == [1, 4, 1, 3] and payload.tolist() == [10, 50, 60, 90]


@settings(max_examples=40, deadline=None)
@given(st.sets(st.integers(0, 10**6), max_size=3000), st.lists(st.integers(-5, 10**6 + 5), max_size=300),
       st.sampled_from([1, 600, 5000]))
def test_sorted_key_lookup_matches_searchsorted(tmp_path_factory, keys, queries, window):
    keys = np.array(sorted(keys), dtype=np.int64)
    queries = np.array(queries, dtype=np.int64)
    stored = write_array(tmp_path_factory.mktemp("keys") / "k", keys, sorted_keys=True)
    assert stored.sample.size == -(-keys.size // SAMPLE_EVERY)
    pos, found = stored.positions(queries, window)
    assert np.array_equal(pos, np.searchsorted(keys, queries))
    assert np.array_equal(found, np.isin(queries, keys))
    assert np.array_equal(stored.lookup(queries, window), np.where(np.isin(queries, keys), pos, -1))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5000), st.lists(st.integers(0, 10**9), max_size=500), st.sampled_from([1, 7, 1000]))
def test_array_file_take_equals_fancy_indexing(tmp_path_factory, n, raw_index, window):
    values = np.arange(n, dtype=np.float64) * 1.5
    stored = write_array(tmp_path_factory.mktemp("values") / "v", values)
    index = np.array(raw_index, dtype=np.int64) % n
    assert np.array_equal(stored.take(index, window), values[index])
    assert isinstance(stored, ArrayFile) and stored.size == n


def test_line_chunks_end_at_line_ends_and_keep_long_lines_whole():
    eos = 1
    ids = np.array([5, 5, 1, 7, 7, 7, 7, 7, 7, 1, 3, 1, 4, 4], dtype=np.int32)   # last line has no end
    chunks = list(line_chunks(ids, eos, 3))
    assert chunks == [(0, 3), (3, 10), (10, 14)]          # a slice grows to the end of its last line
    assert list(line_chunks(ids, eos, 100)) == [(0, 14)]


def test_progress_reports_each_long_step_with_throughput():
    stream = io.StringIO()
    progress = Progress("5gram-kn", min_seconds=0.0, stream=stream, interval_seconds=0.0)
    with progress.step("counting 3-grams", 2_500_000) as step:
        step.advance(1_000_000)
    during, done = stream.getvalue().strip().split("\n")
    assert during.startswith("[5gram-kn] counting 3-grams: 1.0M/2.5M tokens (40%), ") and during.endswith("tokens/s")
    assert done.startswith("[5gram-kn] counting 3-grams: 2.5M tokens in ") and done.endswith("tokens/s)")
    quiet = Progress("x", stream=io.StringIO())
    with quiet.step("fast", 10):
        pass
    assert quiet.lines == []


def test_chunk_size_follows_the_budget():
    assert Budget(BYTES_PER_CHUNK_TOKEN * 10_000).chunk_tokens == 10_000
    assert Budget(4096).chunk_tokens >= 1 and Budget(4096).window_items >= 1


def test_saving_streams_file_backed_tables_in_windows_into_ordinary_npy_members(corpus, tmp_path, monkeypatch):
    import lmbench.models.checkpoint as base

    monkeypatch.setattr(base, "STREAM_ITEMS", 7)  # many windows per table
    reads = []
    real_windows = ArrayFile.windows
    monkeypatch.setattr(ArrayFile, "windows", lambda self, n: (reads.append(n), real_windows(self, n))[1])
    disk = fit(KneserNey, corpus, order=3, storage="disk", memory=TINY)
    reads.clear()  # fitting reads windows too; count those of saving
    disk.save(tmp_path / "kn.model")
    assert len(reads) == 2 * 2 + 2 * 2 and set(reads) == {7}  # keys and counts of orders 2-3, p and gamma
    with zipfile.ZipFile(tmp_path / "kn.model") as archive:
        for name, table in (("keys.3", disk.counts_.keys[3]), ("p.3", disk.logp_[3].values),
                            ("gamma.2", disk.bow_[2].values)):
            with archive.open(f"{name}.npy") as member:
                stored = np.lib.format.read_array(member, allow_pickle=False)
            assert stored.dtype == table.dtype and np.array_equal(stored, table.read(0, table.size))
