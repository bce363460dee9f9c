"""Command line: parse options, build a config, call the library. Nothing else lives here."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import click
import pandas as pd

from . import __version__
from .corpora import describe_corpora, describe_nltk_corpora, load_corpus
from .errors import LmbenchError
from .registry import format_models
from .runner import RunConfig, run_benchmark
from .tokenize import Tokenizer
from .suite import load_suite, merge_params, parse_assignments, run_field_names


class LmbenchGroup(click.Group):
    """A click group whose errors are one line on stderr with a non-zero exit code, never a traceback."""

    def main(self, args=None, prog_name=None, **kwargs):
        kwargs.pop("standalone_mode", None)
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            try:
                code = super().main(args=args, prog_name=prog_name or "lmbench", standalone_mode=False, **kwargs)
            except click.exceptions.Exit as exc:
                code = exc.exit_code
            except click.ClickException as exc:
                usage = f" (see `{exc.ctx.command_path} --help`)" if getattr(exc, "ctx", None) else ""
                click.echo(f"lmbench: error: {exc.format_message()}{usage}", err=True)
                code = exc.exit_code
            except LmbenchError as exc:
                click.echo(f"lmbench: error: {exc}", err=True)
                code = 1
            except (KeyboardInterrupt, click.exceptions.Abort):
                click.echo("lmbench: interrupted; results of finished models are kept", err=True)
                code = 130
        sys.exit(code if isinstance(code, int) else 0)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"lmbench: warning: {message}", err=True)


@click.group(cls=LmbenchGroup)
@click.version_option(__version__, prog_name="lmbench")
def cli():
    """Compare n-gram and neural language models on identical data."""


def _fractions(ctx, param, value):
    if value is None:
        return None
    try:
        parts = tuple(float(x) for x in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected three comma-separated fractions like 0.8,0.1,0.1, got {value!r}")
    return parts


def _token_options(fn):
    """--tokenizer and --normalize, shared by every command that tokenizes a corpus."""
    fn = click.option("--normalize", type=click.Choice(["none", "lower", "d2l"]),
                      help="d2l: lower-case, runs of non-letters become one space. Default: the corpus's own.")(fn)
    return click.option("--tokenizer", type=click.Choice(["word", "char"]), help="Default: the corpus's own.")(fn)


@cli.command()
@click.option("--models", "-m", help="Comma-separated registry names, e.g. bigram,trigram-add1 (see `lmbench models`).")
@click.option("--corpus", "-c", help="Corpus name, nltk:<name>[/<fileid>], a text file or a directory (default timemachine).")
@_token_options
@click.option("--split", callback=_fractions, metavar="TRAIN,VALID,TEST",
              help="Fractions for corpora that are one text (default 0.8,0.1,0.1).")
@click.option("--encoding", help="Text encoding of corpus files (default utf-8).")
@click.option("--min-freq", type=click.IntRange(min=1), help="Minimum training count to enter the vocabulary (default 1).")
@click.option("--max-vocab", type=click.IntRange(min=3), help="Vocabulary cap, <unk> and end of line included.")
@click.option("--out", "-o", type=click.Path(file_okay=False), help="Output directory (default results/<corpus>-<time>).")
@click.option("--seed", type=int, help="Random seed, set before each model is fitted (default 0).")
@click.option("--set", "assignments", multiple=True, metavar="MODEL.PARAM=VALUE",
              help="Override a model parameter, e.g. --set trigram-addk.k=0.01 (repeatable).")
@click.option("--config", "suite", type=click.Path(dir_okay=False), help="A TOML suite file (see README).")
@click.option("--save-models/--no-save-models", default=None, help="Save fitted models under OUT/models (default on).")
@click.option("--epochs", type=click.IntRange(min=1), help="Training epochs of every neural model (overrides its default).")
@click.option("--time-budget", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Stop each neural model's training after this many seconds (whichever of this and --epochs comes first).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), help="Where neural models run (default auto: CUDA, else MPS, else CPU).")
def run( suite, assignments, models, epochs, time_budget, device, **options):
    """Fit models on train and report held-out perplexity on valid and test."""
    shared = {"epochs": epochs, "time_budget": time_budget, "device": device}
    config = build_run_config(suite, assignments, models, options, shared)
    result = run_benchmark(config, echo=click.echo)
    click.echo(f"\nwrote {result.out_dir}/perplexity.csv, perplexity.png, config.json")
    if result.failures:
        click.echo(f"lmbench: error: {len(result.failures)} model(s) failed: {', '.join(result.failures)}", err=True)
        return 1
    return 0


def build_run_config(suite, assignments, models, options, shared) -> RunConfig:
    """Defaults, then the suite file, then explicit command-line options.

    ``shared`` options (epochs, time_budget, device) go to every model that accepts them.
    """
    values, params = {}, {}
    if suite:
        values, params = load_suite(suite, run_field_names(RunConfig) | set(shared))
    values.update({k: v for k, v in options.items() if v is not None})
    values.update({k: v for k, v in shared.items() if v is not None})
    if models is not None:
        values["models"] = [m.strip() for m in models.split(",") if m.strip()]
    values.setdefault("models", [])
    if "split" in values:
        values["split"] = tuple(values["split"])
    values["shared_params"] = {k: values.pop(k) for k in shared if k in values}
    values["params"] = merge_params(params, parse_assignments(assignments))
    return RunConfig(**values)


@cli.command()
@click.argument("corpus", metavar="FILE_OR_CORPUS")
@_token_options
@click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of corpus files.")
@click.option("--max-n", type=click.IntRange(min=1), default=3, show_default=True, help="Count 1..n-grams.")
@click.option("--min-count", type=click.IntRange(min=1), default=10, show_default=True,
              help="Fit ranks whose count is at least this (the hapax tail is left out).")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True, help="Ranks per n in zipf_ranks.csv.")
@click.option("--out", "-o", type=click.Path(file_okay=False), help="Output directory (default results/<corpus>-zipf).")
def zipf(corpus, max_n, min_count, top, out, tokenizer, normalize, encoding):
    """Rank-frequency statistics and Zipf fits of a FILE_OR_CORPUS."""
    from .zipf import format_fits, whole_text, write_zipf

    raw = load_corpus(corpus, fractions=None, encoding=encoding)
    dataset = whole_text(raw, Tokenizer(tokenizer or raw.tokenizer, normalize or raw.normalize))
    out = Path(out) if out else Path("results") / f"{dataset.name}-zipf"
    fits = write_zipf(dataset, out, max_n, min_count, top)
    click.echo(f"{dataset.name}: {dataset.tokenizer.kind} tokens, normalize={dataset.tokenizer.normalize}, all splits")
    click.echo(format_fits(fits, min_count))
    click.echo(f"wrote {out}/zipf.csv, zipf_ranks.csv, zipf.png")


@cli.command()
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False), help="A directory written by `lmbench run`.")
@click.option("--model", "-m", "model_name", required=True, help="A model label of that run.")
@click.option("--prefix", default="", help="Text to continue (the warm-up prefix).")
@click.option("--length", type=click.IntRange(min=1), default=100, show_default=True, help="Tokens to generate.")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True)
@click.option("--top-k", type=click.IntRange(min=1), help="Sample among the K most probable tokens only.")
@click.option("--greedy", is_flag=True, help="Always take the most probable token.")
@click.option("--seed", type=int, default=0, show_default=True)
def generate(run_dir, model_name, prefix, length, temperature, top_k, greedy, seed):
    """Continue a prefix with a saved model of a run (n-gram or neural)."""
    from .generate import generate_text

    click.echo(generate_text(run_dir, model_name, prefix, length, temperature=temperature, top_k=top_k,
                             greedy=greedy, seed=seed))


@cli.command()
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False), help="A directory written by `lmbench run`.")
@click.option("--model", "-m", "model_name", required=True, help="A normalized n-gram model of that run, e.g. 5gram-kn.")
@click.argument("output", type=click.Path(dir_okay=False))
def export(run_dir, model_name, output):
    """Write a saved n-gram model of a run as an ARPA file (readable by KenLM and SRILM).

    Smoothed models in backoff form can be written (kn, kn1, wb, abs, katz, interp); MLE and add-k
    (no backoff form) and stupid backoff (not normalized) are refused. OUTPUT ending in .gz is
    gzip-compressed. Load it back, or any KenLM/SRILM ARPA file, with --models arpa:OUTPUT.
    """
    from .arpa import write_arpa
    from .generate import SavedRun

    model = SavedRun.open(run_dir).load(model_name)
    write_arpa(model, output)
    click.echo(f"wrote {output}")


@cli.command("corpora")
def corpora_command():
    """List the named corpora, where each is found, and their sizes."""
    click.echo(pd.DataFrame(describe_corpora()).to_string(index=False))
    click.echo("")
    click.echo(pd.DataFrame(describe_nltk_corpora()).to_string(index=False))
    click.echo("\nNamed corpora are looked for in $LMBENCH_DATA/<name>/, ./corpora/<name>/, the user cache, "
               "then downloaded (sha256-checked). Any text file or train/valid/test directory works as --corpus PATH.")


cli.add_command(corpora_command, "list")


@cli.command()
def models():
    """List the model registry."""
    click.echo(format_models())


def main():
    cli.main()
