"""Command line: ``chunkasr transcribe``, ``chunkasr models``.

Only this module imports click and rich. It parses options into the library's option
dataclasses, calls the library, shows progress and turns errors into one-line messages:
``error: FILE: reason`` on stderr, exit 1 if any input failed, 2 for usage errors.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from . import __version__
from .errors import ChunkAsrError

__all__ = ["main"]


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chunkasr")
def main() -> None:
    """Long-form speech transcription with ChunkFormer models."""


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("-m", "--model", "model_name", default=None, metavar="DIR|HF_ID",
              help="Model directory or Hugging Face repo id (default: the bundled English model).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--dtype", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto",
              show_default=True, help="Compute precision (auto: bf16 on CUDA, fp32 on CPU).")
@click.option("--chunk-size", type=int, default=64, show_default=True,
              help="Chunk size in encoder frames (80 ms each); -1 for full context.")
@click.option("--left-context", type=int, default=128, show_default=True,
              help="Left attention context in encoder frames.")
@click.option("--right-context", type=int, default=128, show_default=True,
              help="Right attention context in encoder frames.")
@click.option("--batch-duration", type=float, default=None,
              help="Seconds of audio per forward pass (default: 1800 on CUDA, 300 on CPU).")
@click.option("-f", "--format", "formats", default="txt", show_default=True,
              help="Output format(s): txt, srt, vtt, json, tsv, comma-separated, or all.")
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write DIR/<name>.<ext> per input instead of printing to stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
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
    quiet: bool,
) -> None:
    """Transcribe audio files (or '-' for stdin)."""
    from .api import load_model
    from .model import ChunkConfig
    from .writers import WRITERS, get_writer, write_atomic

    try:
        chunk = ChunkConfig(chunk_size, left_context, right_context)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--chunk-size/--left-context/--right-context") from e
    names = list(WRITERS) if formats.strip() == "all" else [f.strip() for f in formats.split(",") if f.strip()]
    bad = [f for f in names if f not in WRITERS]
    if bad or not names:
        raise click.BadParameter(f"unknown format {', '.join(bad) or formats!r}; choose from "
                                 f"{', '.join(WRITERS)} or all", param_hint="-f/--format")
    if output_dir is None and len(names) > 1:
        raise click.UsageError("several formats need --output-dir")

    try:
        model = load_model(model_name, device=device, dtype=None if dtype == "auto" else dtype)
    except ChunkAsrError as e:
        _fail(f"{model_name or 'bundled model'}: {e}")
        sys.exit(1)
    if batch_duration is None:
        batch_duration = 1800.0 if model.device.type == "cuda" else 300.0

    writers = [get_writer(n) for n in names]
    failures = 0
    files = 0
    audio_seconds = 0.0
    start = time.perf_counter()
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
    for result in model.results(list(paths), chunk=chunk, batch_duration=batch_duration):
        label = str(result.source)
        if result.error is not None or result.transcript is None:
            failures += 1
            _fail(f"{label}: {result.error}")
            continue
        files += 1
        audio_seconds += result.transcript.duration
        for name, writer in zip(names, writers, strict=True):
            text = writer.format(result.transcript)
            if output_dir is None:
                click.echo(text, nl=not text.endswith("\n"))
            else:
                stem = "stdin" if label == "-" else Path(label).stem
                try:
                    write_atomic(output_dir / f"{stem}.{name}", text)
                except ChunkAsrError as e:
                    failures += 1
                    _fail(f"{label}: {e}")
    if not quiet:
        wall = time.perf_counter() - start
        speed = audio_seconds / wall if wall > 0 else 0.0
        click.echo(f"{files} file(s), {audio_seconds / 3600:.3f} h of audio, {failures} failed, "
                   f"{speed:.0f}x realtime", err=True)
    sys.exit(1 if failures else 0)


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
