"""Command line: ``chunkasr transcribe``, ``chunkasr models``.

Only this module imports click and rich. It parses options into the library's option
dataclasses, calls the library, shows progress and turns errors into one-line messages:
``error: FILE: reason`` on stderr, exit 1 if any input failed, 2 for usage errors.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TextIO

import click

from . import __version__
from .errors import ChunkAsrError
from .runtime import tune_allocator

if TYPE_CHECKING:
    from .decoding import DecodeOptions
    from .engine import Progress

__all__ = ["main"]


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chunkasr")
def main() -> None:
    """Long-form speech transcription with ChunkFormer models."""
    tune_allocator()


@main.command()
@click.argument("paths", nargs=-1)
@click.option(
    "-m",
    "--model",
    "model_name",
    default=None,
    metavar="DIR|HF_ID",
    help="Model directory or Hugging Face repo id (default: the bundled English model).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--dtype",
    type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
    default="auto",
    show_default=True,
    help="Compute precision (auto: bf16 on CUDA and on CPUs with native bf16, else fp32).",
)
@click.option(
    "--chunk-size",
    type=int,
    default=64,
    show_default=True,
    help="Chunk size in encoder frames (80 ms each); -1 for full context.",
)
@click.option(
    "--left-context",
    type=int,
    default=128,
    show_default=True,
    help="Left attention context in encoder frames.",
)
@click.option(
    "--right-context",
    type=int,
    default=128,
    show_default=True,
    help="Right attention context in encoder frames.",
)
@click.option(
    "--batch-duration",
    type=float,
    default=None,
    help="Seconds of audio per forward pass (default: 1800 on CUDA, 300 on CPU).",
)
@click.option(
    "-f",
    "--format",
    "formats",
    default="txt",
    show_default=True,
    help="Output format(s): txt, srt, vtt, json, tsv, comma-separated, or all.",
)
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write DIR/<name>.<ext> per input instead of printing to stdout.",
)
@click.option(
    "--skip-existing",
    is_flag=True,
    help="Skip inputs whose outputs all exist in --output-dir (resumes a batch).",
)
@click.option(
    "-r",
    "--recursive",
    is_flag=True,
    help="Search directories given as inputs in their subdirectories too.",
)
@click.option(
    "--files-from",
    type=click.File("r", encoding="utf-8"),
    default=None,
    metavar="FILE|-",
    help="Also read input paths from FILE, one per line ('-': stdin).",
)
@click.option(
    "--pause",
    type=click.FloatRange(min=0, min_open=True),
    default=0.5,
    show_default=True,
    help="Start a new segment after this many seconds of silence.",
)
@click.option(
    "--max-line-width",
    type=click.IntRange(min=1),
    default=42,
    show_default=True,
    help="Subtitle characters per line.",
)
@click.option(
    "--max-line-count",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Subtitle lines per cue.",
)
@click.option(
    "--max-cue-duration",
    type=click.FloatRange(min=0, min_open=True),
    default=7.0,
    show_default=True,
    help="Longest subtitle cue, in seconds.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@click.option(
    "--decoder",
    type=click.Choice(["greedy", "beam"]),
    default=None,
    help="CTC decoding (default: the model's own decoding.yaml if it has one, beam if --lm or "
    "hotwords are given, else greedy). greedy also drops the model's LM.",
)
@click.option(
    "--beam-size",
    type=int,
    default=8,
    show_default=True,
    help="Prefixes kept per frame in beam search.",
)
@click.option(
    "--lm",
    "lm_path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Word n-gram language model, ARPA format (.arpa or .arpa.gz).",
)
@click.option(
    "--lm-weight",
    type=float,
    default=0.5,
    show_default=True,
    help="Weight of the LM log-probability (natural log) per word.",
)
@click.option(
    "--word-score",
    type=float,
    default=0.0,
    show_default=True,
    help="Bonus per word in beam search (counters the LM's preference for short text).",
)
@click.option(
    "--hotwords",
    default=None,
    metavar="LIST",
    help='Phrases to favour, "word:weight,other phrase:2.5"; the weight is a bonus '
    "per matched sentencepiece piece (default 2.0).",
)
@click.option(
    "--hotwords-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="File with one phrase[:weight] per line (# comments).",
)
def transcribe(
    paths: tuple[str, ...],
    model_name: str | None,
    device: str,
    dtype: str,
    chunk_size: int,
    left_context: int,
    right_context: int,
    batch_duration: float | None,
    formats: str,
    output_dir: Path | None,
    skip_existing: bool,
    recursive: bool,
    files_from: TextIO | None,
    pause: float,
    max_line_width: int,
    max_line_count: int,
    max_cue_duration: float,
    quiet: bool,
    decoder: str | None,
    beam_size: int,
    lm_path: str | None,
    lm_weight: float,
    word_score: float,
    hotwords: str | None,
    hotwords_file: str | None,
) -> None:
    """Transcribe audio files, directories of them, or '-' (stdin).

    One input and one format print to stdout; otherwise use -o DIR, which gets
    DIR/<name>.<ext> per input (mirroring subdirectories of directory inputs), each written
    whole or not at all."""
    from .api import load_model
    from .model import ChunkConfig
    from .writers import WRITERS, get_writer, write_atomic

    try:
        chunk = ChunkConfig(chunk_size, left_context, right_context)
    except ValueError as e:
        raise click.BadParameter(
            str(e), param_hint="--chunk-size/--left-context/--right-context"
        ) from e
    names = (
        list(WRITERS)
        if formats.strip() == "all"
        else [f.strip() for f in formats.split(",") if f.strip()]
    )
    bad = [f for f in names if f not in WRITERS]
    if bad or not names:
        raise click.BadParameter(
            f"unknown format {', '.join(bad) or formats!r}; choose from "
            f"{', '.join(WRITERS)} or all",
            param_hint="-f/--format",
        )
    if output_dir is None and len(names) > 1:
        raise click.UsageError("several formats need --output-dir")
    inputs, input_errors = _expand_inputs(paths, files_from, recursive)
    if not inputs and not input_errors:
        raise click.UsageError("no input files (give paths, a directory, '-' or --files-from)")
    if output_dir is None and (len(inputs) > 1 or input_errors) and names != ["txt"]:
        raise click.UsageError(f"several inputs need --output-dir for {names[0]} output")
    if skip_existing and output_dir is None:
        raise click.UsageError("--skip-existing needs --output-dir")
    for label, reason in input_errors:
        _fail(f"{label}: {reason}")
    skipped = 0
    if skip_existing and output_dir is not None:
        todo = [
            i for i in inputs if not all((output_dir / f"{i.stem}.{n}").exists() for n in names)
        ]
        skipped, inputs = len(inputs) - len(todo), todo
    from .align import SubtitleOptions

    subtitles = SubtitleOptions(max_line_width, max_line_count, max_cue_duration)
    ctx = click.get_current_context()
    given = {
        n for n in ("beam_size", "lm_weight", "word_score")
        if ctx.get_parameter_source(n) is not click.core.ParameterSource.DEFAULT
    }  # fmt: skip
    decode_changes = _decode_changes(
        decoder, beam_size, lm_path, lm_weight, word_score, hotwords, hotwords_file, given
    )

    try:
        model = load_model(model_name, device=device, dtype=None if dtype == "auto" else dtype)
    except ChunkAsrError as e:
        _fail(f"{model_name or 'bundled model'}: {e}")
        sys.exit(1)
    if batch_duration is None:
        batch_duration = 1800.0 if model.device.type == "cuda" else 300.0
    try:  # load the LM and split the hotwords now, so their errors come before any work
        from .decoding import CTCDecoder

        decode_options = merge_decode_options(model.decode_options, decode_changes)
        CTCDecoder(decode_options, model.vocab)
    except ChunkAsrError as e:
        raise click.UsageError(str(e)) from e

    writers = [get_writer(n, subtitles) for n in names]
    failures = len(input_errors)
    files = 0
    audio_seconds = 0.0
    start = time.perf_counter()
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
    bar = _ProgressBar([i.source for i in inputs], enabled=not quiet and sys.stderr.isatty())
    results = model.results(
        [i.source for i in inputs],
        chunk=chunk,
        decode_options=decode_options,
        batch_duration=batch_duration,
        pause=pause,
        on_progress=bar.update,
    )
    try:
        with bar:
            for result in results:
                item = inputs[result.index]
                if result.error is not None or result.transcript is None:
                    failures += 1
                    _fail(f"{item.label}: {result.error}")
                    continue
                files += 1
                audio_seconds += result.transcript.duration
                for name, writer in zip(names, writers, strict=True):
                    text = writer.format(result.transcript)
                    if output_dir is None:
                        if len(inputs) > 1:  # several transcripts on stdout: say whose is whose
                            click.echo(f"==> {item.label} <==")
                        if text:
                            click.echo(text, nl=not text.endswith("\n"))
                        continue
                    target = output_dir / f"{item.stem}.{name}"
                    try:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        write_atomic(target, text)
                    except (ChunkAsrError, OSError) as e:
                        failures += 1
                        _fail(f"{item.label}: {e}")
    except KeyboardInterrupt:
        # outputs are renamed into place whole, so nothing half-written is left behind
        _fail("interrupted")
        sys.exit(130)
    if not quiet:
        wall = time.perf_counter() - start
        speed = audio_seconds / wall if wall > 0 else 0.0
        done = f"{files} file(s)" + (f", {skipped} skipped" if skipped else "")
        click.echo(
            f"{done}, {audio_seconds / 3600:.3f} h of audio, {failures} failed, "
            f"{speed:.0f}x realtime",
            err=True,
        )
    sys.exit(1 if failures else 0)


class _Input(NamedTuple):
    source: str  # what the library opens: a path or '-'
    label: str  # how messages name it
    stem: str  # output path under --output-dir, without extension


def _expand_inputs(
    paths: tuple[str, ...], files_from: TextIO | None, recursive: bool
) -> tuple[list[_Input], list[tuple[str, str]]]:
    """Command-line paths and --files-from lines -> inputs, and (label, reason) for the
    paths that give nothing to transcribe. Directories yield their audio files, named
    under --output-dir by their path inside the directory; a name two inputs would share
    is an error for the second rather than a silent overwrite."""
    from .audio import find_audio_files

    listed = list(paths)
    if files_from is not None:
        if files_from.name == "<stdin>" and "-" in listed:
            raise click.UsageError("stdin cannot be both audio and --files-from")
        lines = (ln.strip() for ln in files_from)
        listed += [ln for ln in lines if ln and not ln.startswith("#")]
    inputs: list[_Input] = []
    errors: list[tuple[str, str]] = []
    seen: dict[str, str] = {}

    def add(source: str, stem: str) -> None:
        if stem in seen:
            errors.append((source, f"output name {stem!r} already used by {seen[stem]}"))
            return
        seen[stem] = source
        inputs.append(_Input(source, source, stem))

    for p in listed:
        path = Path(p)
        if p != "-" and path.is_dir():
            found = find_audio_files(path, recursive)
            if not found:
                errors.append((p, "no audio files in directory"))
            for f in found:
                add(str(f), f.relative_to(path).with_suffix("").as_posix())
        else:
            add(p, "stdin" if p == "-" else path.stem)
    return inputs, errors


def _decode_changes(
    decoder: str | None,
    beam_size: int,
    lm_path: str | None,
    lm_weight: float,
    word_score: float,
    hotwords: str | None,
    hotwords_file: str | None,
    given: set[str],
) -> dict[str, Any]:
    """The decoding fields the user set on the command line (``given``: numeric options not
    left at their defaults); checked before the model loads."""
    from .hotwords import parse_hotwords, read_hotwords_file

    try:
        words = read_hotwords_file(hotwords_file) if hotwords_file else {}
        words.update(parse_hotwords(hotwords) if hotwords else {})
    except ChunkAsrError as e:
        raise click.BadParameter(str(e), param_hint="--hotwords/--hotwords-file") from e
    values = {"beam_size": beam_size, "lm_weight": lm_weight, "word_score": word_score}
    changes: dict[str, Any] = {k: v for k, v in values.items() if k in given}
    if lm_path:
        changes["lm_path"] = lm_path
    if words:
        changes["hotwords"] = words
    if decoder is not None:
        changes["method"] = decoder
    elif lm_path or words or changes.get("word_score"):
        changes["method"] = "beam"
    return changes


def merge_decode_options(base: DecodeOptions, changes: dict[str, Any]) -> DecodeOptions:
    """The model's recommended decoding (``base``) with the user's ``changes`` on top.

    ``method="greedy"`` means plain greedy search: the model's LM, word score and hotwords go,
    unless the user gave them too (which is then a usage error, as greedy cannot use them)."""
    import dataclasses

    if changes.get("method") == "greedy":
        base = dataclasses.replace(base, lm_path=None, word_score=0.0, hotwords=None)
    try:
        return dataclasses.replace(base, **changes)
    except ValueError as e:
        raise click.UsageError(str(e)) from e


@main.command()
def models() -> None:
    """List the bundled model and ChunkFormer models in the Hugging Face cache."""
    from .hub import list_models

    found = list_models()
    if not found:
        click.echo("no models found (the bundled model is missing and the hub cache has none)")
        return
    for info in found:
        click.echo(f"{info.name}\t{info.source}\t{info.path}")


class _ProgressBar:
    """A rich progress bar over audio seconds on stderr (only for terminals)."""

    def __init__(self, sources: list[str], enabled: bool) -> None:
        self.enabled = enabled and bool(sources)
        self.total: float | None = None
        self._progress: Any = None  # rich.progress.Progress, imported only when shown
        self._task: Any = None
        if not self.enabled:
            return
        from .audio import probe_duration

        durations = [probe_duration(s) if s != "-" else None for s in sources]
        if all(d is not None for d in durations):
            self.total = float(sum(d for d in durations if d is not None))

    def __enter__(self) -> _ProgressBar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("transcribing"),
                BarColumn(),
                TextColumn("{task.completed:.0f}/{task.total:.0f} s audio"),
                TextColumn("{task.fields[files]} file(s) done"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("audio", total=self.total, files=0)
        return self

    def update(self, p: Progress) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=p.seconds_done, files=p.files_done)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
