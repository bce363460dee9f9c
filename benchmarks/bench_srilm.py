"""lmbench's smoothing methods in both forms, interpolated and back-off, side by side with SRILM's.

Usage (from the repository root, with the corpora in $LMBENCH_DATA)::

    python benchmarks/bench_srilm.py                                        # lmbench's figures only
    python benchmarks/bench_srilm.py --srilm-bin /path/to/srilm/bin         # and SRILM's (ngram-count, ngram)
    python benchmarks/bench_srilm.py --corpus wikitext-2 --order 4

For each method (Witten-Bell, Kneser-Ney with one discount and modified, absolute discounting) and
form (interpolated: SRILM's ``-interpolate``; back-off: without it), and Katz's Good-Turing back-off,
lmbench fits ``<order>gram-<method>[-bo]`` on the training split and reports valid and test
perplexity. SRILM's models are made with ``ngram-count -order N -text train <options> -gtKmin 1``
(no count cutoffs at any order K) and scored with ``ngram -order N -lm model.arpa -ppl split`` (its
``ppl=`` counts the words and the ``</s>`` of every line, as lmbench does). SRILM has no estimate of
the absolute discount, so it is given lmbench's fitted D per order (``-cdiscountK D``, n1 / (n1 + 2 n2),
all 17 digits).
As for KenLM (see bench_kn.py) every ``<unk>`` of the three files is renamed to an ordinary word in
SRILM's copies, so that both predict the same tokens over the same closed vocabulary.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import warnings
from pathlib import Path

UNK_RENAMED = "UNKWORD"
#: (lmbench suffix, method, form, SRILM discounting options); abs options are filled in from lmbench's fit.
METHODS = [
    ("wb", "Witten-Bell", "interpolated", ["-wbdiscount", "-interpolate"]),
    ("wb-bo", "Witten-Bell", "back-off", ["-wbdiscount"]),
    ("kn1", "Kneser-Ney, one discount", "interpolated", ["-ukndiscount", "-interpolate"]),
    ("kn1-bo", "Kneser-Ney, one discount", "back-off", ["-ukndiscount"]),
    ("kn", "modified Kneser-Ney", "interpolated", ["-kndiscount", "-interpolate"]),
    ("kn-bo", "modified Kneser-Ney", "back-off", ["-kndiscount"]),
    ("abs", "absolute discounting", "interpolated", ["-interpolate"]),
    ("abs-bo", "absolute discounting", "back-off", []),
    ("katz", "Katz (Good-Turing, max count 5)", "back-off", None),
]


def load(corpus: str):
    from lmbench.data.corpora import load_corpus
    from lmbench.data.dataset import build_dataset
    from lmbench.data.tokenizers import Tokenizer

    raw = load_corpus(corpus)
    return build_dataset(raw, Tokenizer(raw.tokenizer, raw.normalize))


def lmbench_figures(ds, order: int) -> dict:
    """{suffix: (valid ppl, test ppl, fitted discounts or None)} of every method and form."""
    from lmbench.models.registry import resolve

    out = {}
    for suffix, *_ in METHODS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = resolve(f"{order}gram-{suffix}").build().fit(ds.splits["train"], vocab=ds.vocab)
        out[suffix] = (model.perplexity(ds.splits["valid"]), model.perplexity(ds.splits["test"]),
                       getattr(model, "discounts_", None))
    return out


def srilm_files(corpus: str, folder: Path) -> dict:
    """The corpus's split files with <unk> renamed to an ordinary word."""
    from lmbench.data.corpora import NAMED_CORPORA, locate_named

    located = locate_named(NAMED_CORPORA[corpus])
    if located is None:
        raise SystemExit(f"{corpus} not found; set LMBENCH_DATA")
    out = {}
    for f in NAMED_CORPORA[corpus].files:
        path = folder / f"{f.split}.txt"
        path.write_text(re.sub(r"<unk>", UNK_RENAMED, (located[1] / f.filename).read_text(encoding="utf-8")),
                        encoding="utf-8")
        out[f.split] = path
    return out


def srilm_options(suffix: str, options, order: int, discounts) -> list[str]:
    if options is None:                                           # Katz: Good-Turing up to count 5 at every order
        return [x for k in range(1, order + 1) for x in (f"-gt{k}max", "5")]
    if suffix.startswith("abs"):                                  # lmbench's estimates, to the last digit
        return options + [x for k, row in enumerate(discounts, start=1) for x in (f"-cdiscount{k}", repr(float(row[0])))]
    return options


def srilm_figures(bin_dir: Path, files: dict, order: int, options: list[str], folder: Path) -> tuple[float, float]:
    arpa = folder / "model.arpa"
    no_cutoffs = [x for k in range(1, order + 1) for x in (f"-gt{k}min", "1")]
    subprocess.run([str(bin_dir / "ngram-count"), "-order", str(order), "-text", str(files["train"]), *options,
                    *no_cutoffs, "-lm", str(arpa)], check=True, capture_output=True)
    figures = []
    for split in ("valid", "test"):
        done = subprocess.run([str(bin_dir / "ngram"), "-order", str(order), "-lm", str(arpa), "-ppl", str(files[split])],
                              check=True, capture_output=True, text=True)
        figures.append(float(re.search(r"ppl= *([0-9.]+)", done.stdout).group(1)))
    return figures[0], figures[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="ptb")
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--srilm-bin", type=Path, default=None, help="folder holding SRILM's ngram-count and ngram")
    args = parser.parse_args()

    ds = load(args.corpus)
    ours = lmbench_figures(ds, args.order)
    theirs = {}
    if args.srilm_bin:
        with tempfile.TemporaryDirectory() as tmp:
            files = srilm_files(args.corpus, Path(tmp))
            for suffix, _, _, options in METHODS:
                theirs[suffix] = srilm_figures(args.srilm_bin, files, args.order,
                                               srilm_options(suffix, options, args.order, ours[suffix][2]), Path(tmp))
    print(f"{args.corpus}, {args.order}-grams, no count cutoffs: perplexity (valid, test)")
    print()
    if theirs:
        print("| method | form | lmbench model | lmbench valid | SRILM valid | lmbench test | SRILM test | test difference |")
        print("|---|---|---|---|---|---|---|---|")
    else:
        print("| method | form | lmbench model | lmbench valid | lmbench test |")
        print("|---|---|---|---|---|")
    for suffix, method, form, _ in METHODS:
        valid, test, _ = ours[suffix]
        name = f"{args.order}gram-{suffix}"
        if theirs:
            s_valid, s_test = theirs[suffix]
            print(f"| {method} | {form} | {name} | {valid:.4f} | {s_valid:.4f} | {test:.4f} | {s_test:.4f} | "
                  f"{100 * (test / s_test - 1):+.4f}% |")
        else:
            print(f"| {method} | {form} | {name} | {valid:.4f} | {test:.4f} |")


if __name__ == "__main__":
    main()
