"""Command line: every command parses its options, calls one function of :mod:`lmbench.api` and prints.

Imports of the library happen inside the commands, so ``lmbench --help`` starts in a fraction of a
second and commands that need no neural model never import torch.
"""

from __future__ import annotations

import signal
import sys
import warnings

import click

from .version import __version__
from .models.neural.distributed import RankError, launched_rank
from .errors import LmbenchError


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: finished results are kept and the run is marked interrupted."""


class LmbenchGroup(click.Group):
    """A click group whose errors are one line on stderr with a non-zero exit code, never a traceback."""

    def main(self, args=None, prog_name=None, **kwargs):
        kwargs.pop("standalone_mode", None)
        _escape_unprintable_output()
        rank = launched_rank()
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning if rank == 0 else _no_warning
            try:
                code = super().main(args=args, prog_name=prog_name or "lmbench", standalone_mode=False, **kwargs)
            except click.exceptions.Exit as exc:
                code = exc.exit_code
            except (click.ClickException, LmbenchError, KeyboardInterrupt, click.exceptions.Abort) as exc:
                # under torchrun, rank 0 reports what every rank meets alike; a RankError only its own rank sees
                code = _report(exc) if rank == 0 or isinstance(exc, RankError) else _exit_code(exc)
            except Exception as exc:
                if rank == 0:
                    raise
                click.echo(f"lmbench: rank {rank} stopped ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                           f"rank 0 reports the cause", err=True)
                code = 1
        sys.exit(code if isinstance(code, int) else 0)


def _escape_unprintable_output() -> None:
    """Characters stdout's encoding lacks (the undecodable bytes of a file name, such as a corpus named
    ``corpus-\\xff.txt``) are printed as backslash escapes, as Python's stderr prints them, never a crash mid-run."""
    if getattr(sys.stdout, "errors", None) == "strict" and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")


def _report(exc: BaseException) -> int:
    """Print the one-line error of ``exc``; return the exit code."""
    if isinstance(exc, click.ClickException):
        usage = f" (see `{exc.ctx.command_path} --help`)" if getattr(exc, "ctx", None) else ""
        click.echo(f"lmbench: error: {exc.format_message()}{usage}", err=True)
    elif isinstance(exc, RankError):
        click.echo(f"lmbench: error (rank {launched_rank()}): {exc}", err=True)
    elif isinstance(exc, LmbenchError):
        click.echo(f"lmbench: error: {exc}", err=True)
    else:
        interrupt = exc.__cause__ if isinstance(exc, click.exceptions.Abort) else exc  # click wraps Ctrl-C in Abort
        click.echo(f"lmbench: interrupted; {str(interrupt or '') or 'results of finished models are kept'}", err=True)
    return _exit_code(exc)


def _exit_code(exc: BaseException) -> int:
    if isinstance(exc, click.ClickException):
        return exc.exit_code
    return 1 if isinstance(exc, LmbenchError) else 130


def _no_warning(*args, **kwargs):
    """Ranks other than 0 of a torchrun launch stay quiet: rank 0 shows the same warnings."""


def _show_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"lmbench: warning: {message}", err=True)


@click.group(cls=LmbenchGroup, invoke_without_command=True)
@click.version_option(__version__, prog_name="lmbench")
@click.pass_context
def cli(ctx):
    """Compare n-gram and neural language models on identical data."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def _fractions(ctx, param, value):
    if value is None:
        return None
    try:
        parts = tuple(float(x) for x in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected three comma-separated fractions like 0.8,0.1,0.1, got {value!r}")
    return parts


def _seed_list(ctx, param, value):
    if value is None:
        return None
    try:
        return [int(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated whole numbers like 0,1,2, got {value!r}")


def _number_list(ctx, param, value):
    if value is None:
        return None
    try:
        return [float(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers like 0.01,0.1,1, got {value!r}")


_NORMALIZE = click.option("--normalize", type=click.Choice(["none", "lower", "d2l"]),
                          help="d2l: lower-case, runs of non-letters become one space. Default: the corpus's own.")


def _run_options(fn):
    """Every option of `lmbench run` (also taken by `lmbench sweep`): the arguments of lmbench.run."""
    decorators = [
        click.option("--models", "-m", "models", multiple=True,
                     help="Comma-separated registry names, e.g. bigram,trigram-add1 (see `lmbench models`); repeatable."),
        click.option("--corpus", "-c", help="Corpus name, nltk:<name>[/<fileid>], hf:<name>[/<config>], a text "
                                            "file or a directory (default timemachine)."),
        click.option("--tokenizer", type=click.Choice(["word", "char", "bpe"]),
                     help="word, char, or bpe (subwords learned from train). Default: the corpus's own."),
        click.option("--bpe-vocab-size", type=click.IntRange(min=1), metavar="N",
                     help="Subwords BPE learns from the training split with --tokenizer bpe (default 8000)."),
        _NORMALIZE,
        click.option("--split", callback=_fractions, metavar="TRAIN,VALID,TEST",
                     help="Fractions for corpora that are one text (default 0.8,0.1,0.1)."),
        click.option("--encoding", help="Text encoding of corpus files (default utf-8)."),
        click.option("--min-freq", type=click.IntRange(min=1), help="Minimum training count to enter the vocabulary (default 1)."),
        click.option("--max-vocab", type=click.IntRange(min=3), help="Vocabulary cap, <unk> and end of line included."),
        click.option("--out", "-o", type=click.Path(file_okay=False), help="Output directory (default results/<corpus>-<time>)."),
        click.option("--overwrite", is_flag=True, default=None,
                     help="Replace an earlier run in --out, once this run completes (it is kept until then)."),
        click.option("--resume", is_flag=True, default=None,
                     help="Keep the models of an earlier run in --out whose configuration and data are unchanged; "
                          "fit only the others."),
        click.option("--seed", type=int, help="Random seed, set before each model is fitted (default 0)."),
        click.option("--seeds", callback=_seed_list, metavar="S1,S2,...",
                     help="Fit every neural model once per seed; rows per seed plus mean and std in seeds.csv."),
        click.option("--bootstrap", type=click.IntRange(min=0), metavar="B",
                     help="Bootstrap resamples for intervals and comparisons (default 1000; 0 turns it off)."),
        click.option("--set", "assignments", multiple=True, metavar="MODEL.PARAM=VALUE",
                     help="Override a model parameter, e.g. --set trigram-addk.k=0.01 (repeatable)."),
        click.option("--config", "suite", type=click.Path(dir_okay=False), help="A TOML suite file (see README)."),
        click.option("--save-models/--no-save-models", default=None, help="Save fitted models under OUT/models (default on)."),
        click.option("--save-scores/--no-save-scores", default=None,
                     help="Save per-token log-probabilities under OUT/scores (default on)."),
        click.option("--threads", type=click.IntRange(min=1), metavar="N",
                     help="CPU threads of torch and BLAS (default: theirs), as KenLM's -T."),
        click.option("--epochs", type=click.IntRange(min=1), help="Training epochs of every neural model (overrides its default)."),
        click.option("--time-budget", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
                     help="Bound each neural model's whole fit (training and validation) to this many seconds."),
        click.option("--memory", metavar="SIZE",
                     help="Memory budget of n-gram tables, e.g. 4G (default 4G): models that would need more are "
                          "counted on disk in sorted runs, with the same probabilities."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]),
                     help="Where neural models run (default auto: CUDA, else MPS, else CPU)."),
        click.option("--precision", type=click.Choice(["float32", "tf32", "bfloat16"]),
                     help="Numerics of neural training steps (default float32): tf32 lets CUDA use TF32 tensor cores, "
                          "bfloat16 trains under bfloat16 autocast. Validation and scoring stay float32."),
    ]
    for decorator in reversed(decorators):
        fn = decorator(fn)
    return fn


@cli.command()
@_run_options
def run(**options):
    """Fit models on train and report held-out perplexity on valid and test."""
    return _run(options)


@cli.command()
@_run_options
@click.option("--fractions", required=True, callback=_number_list, metavar="F1,F2,...",
              help="Fractions of the training lines, e.g. 0.01,0.03,0.1,0.3,1.")
def sweep(**options):
    """Fit every model on growing prefixes of the training split; same vocabulary and targets throughout.

    Writes sweep.csv and sweep.png (test perplexity against training tokens) beside the usual
    results, and names the size from which each neural model beats the best n-gram.
    """
    return _run(options)


def _run(options: dict) -> int:
    from . import api
    from .runs.suite import parse_assignments

    params = parse_assignments(options.pop("assignments"))
    suite = options.pop("suite")
    options["models"] = [m.strip() for group in options.pop("models") for m in group.split(",") if m.strip()] or None
    given = {k: v for k, v in options.items() if v is not None}
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        result = api.run(**given, params=params, config=suite, verbose=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if result is None:  # a rank other than 0 of a torchrun launch: rank 0 reports and writes
        return 0
    if not len(result.table):
        click.echo(f"\nno model finished; {result.out_dir}/config.json records what happened")
    else:
        from .runs.files import written

        click.echo(f"\nwrote {result.out_dir}/: {', '.join(written(result.out_dir))}")
    if result.failures:
        click.echo(f"lmbench: error: {len(result.failures)} model(s) failed: {', '.join(result.failures)}", err=True)
        return 1
    return 0


def _terminate(signum, frame):
    raise Terminated()


@cli.command()
@click.argument("corpus", metavar="FILE_OR_CORPUS")
@click.option("--tokenizer", type=click.Choice(["word", "char"]), help="Default: the corpus's own.")
@_NORMALIZE
@click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of corpus files.")
@click.option("--max-n", type=click.IntRange(min=1), default=3, show_default=True, help="Count 1..n-grams.")
@click.option("--min-count", type=click.IntRange(min=1), default=10, show_default=True,
              help="Fit ranks whose count is at least this (the hapax tail is left out).")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True, help="Ranks per n in zipf_ranks.csv.")
@click.option("--out", "-o", type=click.Path(file_okay=False), help="Output directory (default results/<corpus>-zipf).")
def zipf(corpus, tokenizer, normalize, encoding, max_n, min_count, top, out):
    """Rank-frequency statistics and Zipf fits of a FILE_OR_CORPUS."""
    from . import api

    from .runs import files

    found = api.zipf(corpus, tokenizer=tokenizer, normalize=normalize, encoding=encoding, max_n=max_n,
                     min_count=min_count, top=top, out=out or True)
    click.echo(found.format())
    click.echo(f"wrote {found.written_to}/{files.ZIPF_CSV}, {files.ZIPF_RANKS_CSV}, {files.ZIPF_PNG}")


def _run_model_options(fn):
    fn = click.option("--model", "-m", "model_name", required=True, help="A model label of that run.")(fn)
    return click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False),
                        help="A directory written by `lmbench run`.")(fn)


@cli.command()
@_run_model_options
@click.option("--prefix", default="", help="Text to continue (the warm-up prefix).")
@click.option("--length", type=click.IntRange(min=1), default=100, show_default=True, help="Tokens to generate.")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True)
@click.option("--top-k", type=click.IntRange(min=1), help="Sample among the K most probable tokens only.")
@click.option("--greedy", is_flag=True, help="Always take the most probable token.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
def generate(run_dir, model_name, prefix, length, temperature, top_k, greedy, seed):
    """Continue a prefix with a saved model of a run (n-gram or neural)."""
    from . import api

    click.echo(api.generate(run_dir, model_name, prefix, length, temperature=temperature, top_k=top_k,
                            greedy=greedy, seed=seed))


@cli.command()
@_run_model_options
@click.argument("file", default="-", metavar="[FILE|-]")
@click.option("--per-token", is_flag=True, help="Print every token with its log-probability.")
@click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of FILE.")
def score(run_dir, model_name, file, per_token, encoding):
    """Score new text with a saved model of a run, like KenLM's `query` (FILE, or - for stdin).

    Prints one row per line (log10 and natural-log probability, tokens, OOV tokens), with
    --per-token one row per token, and a summary with perplexity including and excluding OOV tokens.
    The text is tokenized with the run's tokenizer; n-gram models restart at every line, neural
    models read the text as one stream, as in `lmbench run`.
    """
    from . import api

    scores = api.score(run_dir, model_name, file=file, encoding=encoding)
    frame = scores.per_token() if per_token else scores.lines()
    click.echo(frame.to_string(index=False, float_format=lambda x: f"{x:.6f}"))
    click.echo("\n" + scores.summary(model_name))


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR...")
@click.option("--allow-different-data", is_flag=True,
              help="Compare runs over different data in separate groups instead of refusing.")
@click.option("--bootstrap", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Bootstrap resamples (0: no intervals or comparisons).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True, help="Bootstrap seed.")
@click.option("--out", "-o", type=click.Path(file_okay=False),
              help="Also write the merged perplexity.csv and compare.csv into this new directory.")
def compare(run_dirs, allow_different_data, bootstrap, seed, out):
    """One table of several runs; models of runs over identical data are compared with the bootstrap."""
    from . import api

    merged = api.compare(*run_dirs, allow_different_data=allow_different_data, bootstrap=bootstrap, seed=seed, out=out)
    if out:
        click.echo(f"wrote {out}/perplexity.csv, compare.csv")
    click.echo(merged.format())


@cli.command()
@_run_model_options
@click.argument("output", type=click.Path(dir_okay=False))
def export(run_dir, model_name, output):
    """Write a saved n-gram model of a run as an ARPA file (readable by KenLM and SRILM).

    Smoothed models can be written in either form (kn, kn1, wb, abs, interp, their -bo back-off forms,
    katz); MLE and add-k
    (no backoff form) and stupid backoff (not normalized) are refused. OUTPUT ending in .gz is
    gzip-compressed. Load it back, or any KenLM/SRILM ARPA file, with --models arpa:OUTPUT.
    """
    from . import api

    api.export(run_dir, model_name, output)
    click.echo(f"wrote {output}")


@cli.command()
def corpora():
    """List the named corpora, where each is found, and the token counts a run reports."""
    from . import api

    named, nltk = api.list_corpora()
    click.echo(named.to_string(index=False))
    click.echo("")
    click.echo(nltk.to_string(index=False))
    click.echo("\nNamed corpora are looked for in $LMBENCH_DATA/<name>/, ./corpora/<name>/ and the user cache; "
               "timemachine then falls back to the copy shipped with lmbench (never downloaded), ptb and "
               "wikitext-2 are downloaded (sha256-checked). Token counts are those a run reports (default "
               "tokenizer and split). Any text file or train/valid/test directory works as --corpus PATH.")


@cli.command()
@click.option("--long", "long_", is_flag=True, help="Also list the paper each model implements.")
def models(long_):
    """List the model registry."""
    from . import api

    click.echo(api.list_models(long=long_))


def main():
    try:
        cli.main()
    except KeyboardInterrupt:  # Ctrl-C before the group's own handler is in place
        click.echo("lmbench: interrupted", err=True)
        sys.exit(130)
