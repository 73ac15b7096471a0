"""The long-form engine: many audio sources of any length through the chunked encoder.

Design (DESIGN.md section 5) — a layer-wise wavefront, chosen over segment recomputation:

* Every source is a *stream* read in blocks; fbank frames are cut into chunks of C encoder
  frames as they arrive, and chunks of all streams share each forward pass (masked batching).
* Each encoder layer keeps, per stream, only what later chunks still need: the keys/values of
  the last L frames (attention cache), the gated conv input of the last k frames (conv cache),
  and the chunks whose right context has not arrived yet. A layer finalises chunk j once its
  input reaches R frames past the chunk (attention) and the next chunk's attention is done
  (the conv looks k frames ahead), then hands the chunk to the next layer.
* Nothing is computed twice, so the output equals a single whole-file masked-batch pass
  exactly (same operations on the same values), whatever the batch budget, the block size or
  the neighbouring streams. Segment recomputation would be exact too but must redo
  N(C + R) frames of lookahead at every cut: 3264 frames (4.4 min of audio) for the released
  17-layer models at 64/128/128, i.e. 15-40% extra work at practical segment sizes.
* Memory is bounded by the per-step budget plus a pipeline lag of (ceil(R/C) + 1) chunks per
  layer and stream, independent of file length. Posteriors are kept as the top-k per frame.
"""

from __future__ import annotations

import itertools
import math
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import AudioError, ChunkAsrError, ConfigError
from .features import HOP, WINDOW, fbank, num_frames
from .model.attention import relative_positions
from .model.config import ChunkConfig
from .model.ctc import ChunkFormerCTC
from .model.encoder import EncoderLayer
from .model.subsampling import FACTOR, RECEPTIVE_FIELD, subsampled_length

__all__ = ["Engine", "EngineOptions", "FileResult", "Posteriors", "Source", "Progress"]

Source = "str | np.ndarray"
SAMPLE_RATE = 16000
OPEN_AHEAD = 4  # sources whose reading starts before they enter the batch (one block each)


@dataclass(frozen=True)
class EngineOptions:
    chunk: ChunkConfig = field(default_factory=ChunkConfig)
    batch_duration: float = 300.0  # seconds of new audio entering the encoder per forward pass
    top_k: int | None = 16  # posteriors kept per frame; None keeps the full distribution
    block_seconds: float = 60.0  # audio read per stream per step (host memory per stream)
    dtype: torch.dtype = torch.float32

    def __post_init__(self) -> None:
        if self.batch_duration <= 0:
            raise ConfigError(f"batch duration must be positive, got {self.batch_duration}")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {self.top_k}")
        if self.block_seconds <= 0:
            raise ConfigError("block_seconds must be positive")


@dataclass
class Posteriors:
    """CTC log-probs of one file: full ``(T, V)`` or the top-k per frame ``ids``/``logp (T, K)``."""

    logp: torch.Tensor
    ids: torch.Tensor | None = None

    @property
    def num_frames(self) -> int:
        return int(self.logp.shape[0])

    def dense(self, vocab_size: int) -> torch.Tensor:
        """(T, V) log-probs; pruned entries are -inf."""
        if self.ids is None:
            return self.logp
        out = torch.full((self.num_frames, vocab_size), float("-inf"))
        return out.scatter_(1, self.ids.long(), self.logp)


@dataclass
class FileResult:
    index: int
    source: object
    duration: float  # seconds of audio
    posteriors: Posteriors | None = None
    error: ChunkAsrError | None = None


@dataclass(frozen=True)
class Progress:
    seconds_done: float  # audio seconds read so far
    files_done: int


# --------------------------------------------------------------------------- audio blocks


def _iter_samples(source: object, block_seconds: float) -> Iterator[np.ndarray]:
    """16 kHz mono float32 blocks of a source (path, '-', or a 1-D array already at 16 kHz)."""
    if isinstance(source, np.ndarray | torch.Tensor):
        arr = np.asarray(source, dtype=np.float32)
        if arr.ndim != 1:
            raise AudioError(f"expected a 1-D array of 16 kHz samples, got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise AudioError("contains NaN or infinite samples")
        step = max(1, int(block_seconds * SAMPLE_RATE))
        for i in range(0, len(arr), step):
            yield arr[i : i + step]
        return
    from . import audio  # imported here: audio pulls in PyAV, which array users don't need

    yield from audio.iter_blocks(source, block_seconds=block_seconds)  # type: ignore[arg-type]


class _Prefetch:
    """Runs a block iterator in a background thread, one block ahead.

    Audio decoding and resampling (soundfile, PyAV, numpy) release the GIL, so reading the next
    block overlaps the encoder's work on the current one; on a GPU this hides most of the I/O.
    Errors are re-raised in the consumer, in order.
    """

    _END = object()

    def __init__(self, blocks: Iterator[np.ndarray], depth: int = 1) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(blocks,), daemon=True)
        self._thread.start()

    def _run(self, blocks: Iterator[np.ndarray]) -> None:
        try:
            for block in blocks:
                if not self._put(block):
                    return
            self._put(self._END)
        except BaseException as e:  # handed to the consumer, which raises it there
            self._put(e)

    def _put(self, item: object) -> bool:
        """Queue ``item`` unless the consumer has closed us; False once closed."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[np.ndarray]:
        return self

    def __next__(self) -> np.ndarray:
        item = self._queue.get()
        if item is self._END:
            self._queue.put(self._END)  # stay exhausted
            raise StopIteration
        if isinstance(item, BaseException):
            self._queue.put(self._END)
            raise item
        return item  # type: ignore[return-value]

    def close(self) -> None:
        self._stop.set()


# --------------------------------------------------------------------------- per-stream state


@dataclass
class _LayerState:
    """What one layer still needs of one stream. Buffers hold whole chunks (n, C, ...)."""

    n_in: int = 0  # input chunks received
    a_base: int = 0  # chunk index of row 0 of the attention buffers
    x1: torch.Tensor | None = None  # residual after the macaron feed-forward
    q: torch.Tensor | None = None  # queries
    kv: torch.Tensor | None = None  # keys|values
    j_att: int = 0  # next chunk to attend
    b_base: int = 0  # chunk index of row 0 of the conv buffers
    x2: torch.Tensor | None = None  # residual after attention
    g: torch.Tensor | None = None  # gated conv input
    j_out: int = 0  # next chunk to finish (conv + feed-forward)
    ended: bool = False  # all input chunks of the stream have arrived


class _Stream:
    def __init__(self, index: int, source: object, n_layers: int, block_seconds: float) -> None:
        self.index = index
        self.source = source
        self.blocks = _Prefetch(_iter_samples(source, block_seconds))
        self.carry = np.zeros(0, dtype=np.float32)  # samples not yet turned into fbank frames
        self.samples_read = 0
        self.feats: torch.Tensor | None = None  # fbank frames from feat_base on
        self.feat_base = 0
        self.fbank_frames = 0  # fbank frames produced so far
        self.input_done = False
        self.chunks_fed = 0
        self.length: int | None = None  # encoder frames, known once input is done
        self.layers = [_LayerState() for _ in range(n_layers)]
        self.out_logp: list[torch.Tensor] = []
        self.out_ids: list[torch.Tensor] = []
        self.out_chunks = 0

    @property
    def duration(self) -> float:
        return self.samples_read / SAMPLE_RATE

    def total_chunks(self, chunk: int) -> int:
        assert self.length is not None
        return -(-self.length // chunk)


# --------------------------------------------------------------------------- the engine


class Engine:
    """Runs sources through a model and yields :class:`FileResult` in input order."""

    def __init__(self, model: ChunkFormerCTC, options: EngineOptions, device: torch.device) -> None:
        self.model = model
        self.opts = options
        self.device = device
        cfg = model.cfg
        self.full_context = options.chunk.full_context
        self.C = options.chunk.chunk_size
        self.L = options.chunk.left_context
        self.R = options.chunk.right_context
        self.k = cfg.conv_context
        if not self.full_context:
            C = self.C
            self.look_att = -(-self.R // C)  # input chunks past chunk j needed by its attention
            self.look_conv = -(-min(self.k, self.R) // C)  # attended chunks past j needed by conv
            self.keep_att = -(-self.L // C)  # chunks of keys kept behind the next chunk
            self.keep_conv = -(-self.k // C)
            per_step = options.batch_duration / (C * FACTOR * HOP / SAMPLE_RATE)
            self.step_chunks = max(1, int(per_step))
        self.layers: list[EncoderLayer] = list(model.encoder.encoders)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ public

    @torch.inference_mode()
    def run(
        self, sources: Iterable[object], on_progress: Callable[[Progress], None] | None = None
    ) -> Iterator[FileResult]:
        if self.full_context:
            yield from self._run_full_context(sources, on_progress)
            return
        streams = (
            _Stream(i, src, len(self.layers), self.opts.block_seconds) for i, src in enumerate(sources)
        )
        # Streams opened ahead of admission: their reader threads decode the first block while
        # the encoder works, so a new file does not stall the step that admits it. Topped up on
        # every admission, so an empty queue means the sources have run out.
        opened = deque(itertools.islice(streams, OPEN_AHEAD))
        active: list[_Stream] = []
        done: dict[int, FileResult] = {}
        next_out = 0
        finished_seconds = 0.0  # audio of streams that are finished (or failed)
        try:
            while True:
                budget = self.step_chunks
                # Feed the running streams first, then admit new ones while the budget allows.
                fed: list[tuple[_Stream, torch.Tensor]] = []
                for st in list(active):
                    if budget <= 0:
                        break
                    budget -= self._feed(st, budget, fed, done)
                while budget > 0 and opened:
                    st = opened.popleft()
                    opened.extend(itertools.islice(streams, 1))
                    active.append(st)
                    budget -= self._feed(st, budget, fed, done)
                for st in [s for s in active if s.index in done]:  # failed while reading
                    finished_seconds += st.duration
                    active.remove(st)
                if not active and not opened and not fed:
                    break
                self._step(active, fed)
                for st in list(active):
                    if st.layers[-1].ended and st.layers[-1].j_out == st.total_chunks(self.C):
                        done[st.index] = FileResult(st.index, st.source, st.duration, self._collect(st))
                        finished_seconds += st.duration
                        active.remove(st)
                if on_progress is not None:
                    seconds = finished_seconds + sum(s.duration for s in active)
                    on_progress(Progress(seconds, next_out + sum(1 for i in done if i >= next_out)))
                while next_out in done:
                    yield done.pop(next_out)
                    next_out += 1
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1
        finally:  # the consumer may stop early (Ctrl-C, break): stop the reader threads
            for st in [*active, *opened]:
                st.blocks.close()

    # ------------------------------------------------------------------ input side

    def _read_more(self, st: _Stream, frames_needed: int) -> None:
        """Read audio until ``frames_needed`` fbank frames exist past feat_base, or the end."""
        while not st.input_done and st.fbank_frames - st.feat_base < frames_needed:
            block = next(st.blocks, None)
            if block is None:
                st.input_done = True
                break
            if block.size == 0:
                continue
            st.samples_read += len(block)
            samples = np.concatenate([st.carry, block]) if st.carry.size else block
            n = num_frames(len(samples))
            if n == 0:
                st.carry = samples
                continue
            used = (n - 1) * HOP + WINDOW
            wave = torch.from_numpy(np.ascontiguousarray(samples[:used])).to(self.device)
            new = fbank(wave)
            st.carry = samples[n * HOP :].copy()
            st.feats = new if st.feats is None else torch.cat([st.feats, new])
            st.fbank_frames += n
        if st.input_done and st.length is None:
            st.length = subsampled_length(st.fbank_frames)

    def _feed(
        self,
        st: _Stream,
        budget: int,
        fed: list[tuple[_Stream, torch.Tensor]],
        done: dict[int, FileResult],
    ) -> int:
        """Cut up to ``budget`` new chunks of fbank for a stream; returns the number cut."""
        C = self.C
        size = (C - 1) * FACTOR + RECEPTIVE_FIELD
        step = C * FACTOR
        try:
            self._read_more(st, budget * step + size - step)
        except ChunkAsrError as e:
            done[st.index] = FileResult(st.index, st.source, st.duration, error=e)
            return 0
        avail = st.fbank_frames - st.feat_base  # frames from chunk `chunks_fed` on
        if st.input_done:
            assert st.length is not None
            n = min(budget, st.total_chunks(C) - st.chunks_fed)
            if st.length == 0:
                n = 0
        else:
            n = min(budget, max(0, (avail - size) // step + 1))
        if n <= 0:
            if st.input_done and st.length == 0:
                for layer in st.layers:  # nothing to encode: the stream is trivially finished
                    layer.ended = True
            return 0
        assert st.feats is not None
        need = (n - 1) * step + size
        f = st.feats
        if f.shape[0] < need:
            f = torch.nn.functional.pad(f, (0, 0, 0, need - f.shape[0]))
        fed.append((st, f[:need].unfold(0, size, step).transpose(1, 2)))  # (n, size, F)
        st.chunks_fed += n
        st.feat_base += n * step
        st.feats = st.feats[n * step :]
        if st.input_done and st.chunks_fed == st.total_chunks(C):
            st.feats = None
        return n

    # ------------------------------------------------------------------ the wavefront

    def _autocast(self) -> torch.autocast:
        # bf16 runs on bf16 weights (api.load_model converts them; no casts per op). fp16 uses
        # autocast, which keeps norms and softmax in fp32 where fp16 would overflow.
        enabled = self.opts.dtype == torch.float16
        return torch.autocast(self.device.type, dtype=self.opts.dtype, enabled=enabled)

    def _step(self, active: list[_Stream], fed: list[tuple[_Stream, torch.Tensor]]) -> None:
        enc = self.model.encoder
        C, D = self.C, self.model.cfg.d_model
        with self._autocast():
            new: list[tuple[_Stream, torch.Tensor]] = []
            if fed:
                x = enc.embed_chunks(_cat([f for _, f in fed]))  # (N, C, D)
                new = list(
                    zip([s for s, _ in fed], x.split([f.shape[0] for _, f in fed]), strict=True)
                )
            for st in active:
                if st.input_done and st.chunks_fed == (st.total_chunks(C) if st.length else 0):
                    st.layers[0].ended = True
            dtype = enc.after_norm.weight.dtype
            pos_emb = relative_positions(C, self.L, self.R, D, self.device, dtype)
            for li, layer in enumerate(self.layers):
                new = self._layer_step(li, layer, active, new, pos_emb)
            if new:
                x = _cat([x for _, x in new])
                if self.model.cfg.final_norm:
                    x = enc.after_norm(x)
                logp = self.model.ctc(x)  # (N, C, V) float32
                if self.opts.top_k is not None and self.opts.top_k < logp.shape[-1]:
                    vals, ids = logp.topk(self.opts.top_k, dim=-1)
                else:
                    vals, ids = logp, None
                sizes = [x.shape[0] for _, x in new]
                for (st, _), v, i in zip(
                    new,
                    vals.split(sizes),
                    ids.split(sizes) if ids is not None else [None] * len(new),
                    strict=True,
                ):
                    st.out_logp.append(v.cpu())
                    if i is not None:
                        st.out_ids.append(i.to(torch.int32).cpu())
                    st.out_chunks += v.shape[0]

    def _layer_step(
        self,
        li: int,
        layer: EncoderLayer,
        active: list[_Stream],
        new: list[tuple[_Stream, torch.Tensor]],
        pos_emb: torch.Tensor,
    ) -> list[tuple[_Stream, torch.Tensor]]:
        C, L, R, k = self.C, self.L, self.R, self.k
        # 1) frame-local part for the new input chunks of every stream, in one batch
        if new:
            x = _cat([x for _, x in new])
            x1, q, kv = layer.pre_attention(x)
            sizes = [x.shape[0] for _, x in new]
            for (st, _), a, b, c in zip(
                new, x1.split(sizes), q.split(sizes), kv.split(sizes), strict=True
            ):
                ls = st.layers[li]
                ls.x1 = _append(ls.x1, a)
                ls.q = _append(ls.q, b)
                ls.kv = _append(ls.kv, c)
                ls.n_in += a.shape[0]
        for st in active:
            ls = st.layers[li]
            if li > 0 and not ls.ended:
                up = st.layers[li - 1]
                ls.ended = up.ended and up.j_out == st.total_chunks(C)
            elif li == 0 and not ls.ended:
                ls.ended = (
                    st.input_done and st.length is not None and st.chunks_fed == st.total_chunks(C)
                )

        # 2) attention for every chunk whose right context has arrived
        work_q, work_kv, work_mask, owners = [], [], [], []
        for st in active:
            ls = st.layers[li]
            end = ls.n_in if ls.ended else ls.n_in - self.look_att
            n = end - ls.j_att
            if n <= 0 or ls.kv is None:
                continue
            assert ls.q is not None
            rows = slice(ls.j_att - ls.a_base, end - ls.a_base)
            work_q.append(ls.q[rows])
            flat = ls.kv.reshape(-1, ls.kv.shape[-1])
            start = ls.j_att * C - L - ls.a_base * C  # window start, relative to the buffer
            stop = (end - 1) * C + C + R - ls.a_base * C
            work_kv.append(_window_rows(flat, start, stop, n, C, L + C + R))
            work_mask.append(_valid(ls.j_att, n, C, L, C + R, st.length, None))
            owners.append((st, n))
        if owners:
            mask = _cat(work_mask).to(self.device)
            att = layer.self_attn.attend(_cat(work_q), _cat(work_kv), mask, pos_emb)
            sizes = [n for _, n in owners]
            x1_rows = []
            for st, n in owners:
                ls = st.layers[li]
                assert ls.x1 is not None
                x1_rows.append(ls.x1[ls.j_att - ls.a_base : ls.j_att - ls.a_base + n])
            x2, g = layer.post_attention(_cat(x1_rows), att)
            g_parts = g.split(sizes) if g is not None else [None] * len(owners)
            for (st, n), a, b in zip(owners, x2.split(sizes), g_parts, strict=True):
                ls = st.layers[li]
                ls.x2 = _append(ls.x2, a)
                ls.g = _append(ls.g, b) if b is not None else None
                ls.j_att += n
                drop = max(0, ls.j_att - self.keep_att - ls.a_base)
                if drop:
                    ls.a_base += drop
                    ls.x1, ls.q, ls.kv = ls.x1[drop:], ls.q[drop:], ls.kv[drop:]  # type: ignore[index]

        # 3) convolution + feed-forward for every chunk whose conv lookahead is attended
        outs: list[tuple[_Stream, torch.Tensor]] = []
        work_x2, work_g, work_gmask, owners2 = [], [], [], []
        for st in active:
            ls = st.layers[li]
            total = st.total_chunks(C) if ls.ended else None
            end = ls.j_att if (ls.ended and ls.j_att == total) else ls.j_att - self.look_conv
            n = end - ls.j_out
            if n <= 0 or ls.x2 is None:
                continue
            rows = slice(ls.j_out - ls.b_base, end - ls.b_base)
            work_x2.append(ls.x2[rows])
            if ls.g is not None:
                flat = ls.g.reshape(-1, ls.g.shape[-1])
                start = ls.j_out * C - k - ls.b_base * C
                stop = (end - 1) * C + C + k - ls.b_base * C
                work_g.append(_window_rows(flat, start, stop, n, C, C + 2 * k))
                work_gmask.append(_valid(ls.j_out, n, C, k, C + k, st.length, C + R))
            owners2.append((st, n))
        if owners2:
            x2 = _cat(work_x2)
            conv = None
            if work_g:
                assert layer.conv_module is not None
                conv = layer.conv_module.finish(
                    _cat(work_g), _cat(work_gmask).to(self.device)
                )
            y = layer.post_conv(x2, conv)
            for (st, n), out in zip(owners2, y.split([n for _, n in owners2]), strict=True):
                ls = st.layers[li]
                ls.j_out += n
                drop = max(0, ls.j_out - self.keep_conv - ls.b_base)
                if drop:
                    ls.b_base += drop
                    ls.x2 = ls.x2[drop:]  # type: ignore[index]
                    ls.g = ls.g[drop:] if ls.g is not None else None
                outs.append((st, out))
        return outs

    def _collect(self, st: _Stream) -> Posteriors:
        m = st.length or 0
        V = self.model.cfg.vocab_size
        if not st.out_logp:
            width = self.opts.top_k if self.opts.top_k is not None and self.opts.top_k < V else V
            empty = torch.zeros(0, width)
            return Posteriors(
                empty, torch.zeros(0, width, dtype=torch.int32) if width < V else None
            )
        logp = torch.cat(st.out_logp).reshape(-1, st.out_logp[0].shape[-1])[:m]
        ids = torch.cat(st.out_ids).reshape(-1, logp.shape[-1])[:m] if st.out_ids else None
        return Posteriors(logp, ids)

    # ------------------------------------------------------------------ full context

    def _run_full_context(
        self, sources: Iterable[object], on_progress: Callable[[Progress], None] | None
    ) -> Iterator[FileResult]:
        """chunk -1: each file attends to all of itself (cost grows with length squared)."""
        seconds = 0.0
        for n, (i, src) in enumerate(enumerate(sources)):
            st = _Stream(i, src, 0, self.opts.block_seconds)
            try:
                self._read_more(st, math.inf)  # type: ignore[arg-type]
            except ChunkAsrError as e:
                yield FileResult(i, src, st.duration, error=e)
                continue
            feats = st.feats if st.feats is not None else torch.zeros(0, 80, device=self.device)
            with self._autocast():
                outs, _ = self.model.encoder([feats], -1, 0, 0)
                logp = self.model.ctc(outs[0]).cpu()
            if self.opts.top_k is not None and self.opts.top_k < logp.shape[-1]:
                vals, ids = logp.topk(self.opts.top_k, dim=-1)
                post = Posteriors(vals, ids.to(torch.int32))
            else:
                post = Posteriors(logp)
            seconds += st.duration
            yield FileResult(i, src, st.duration, post)
            if on_progress is not None:
                on_progress(Progress(seconds, n + 1))


def _append(buf: torch.Tensor | None, rows: torch.Tensor) -> torch.Tensor:
    return rows if buf is None or buf.shape[0] == 0 else torch.cat([buf, rows])


def _cat(parts: list[torch.Tensor]) -> torch.Tensor:
    """torch.cat without the copy when there is a single part (one stream in the batch)."""
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _window_rows(flat: torch.Tensor, start: int, stop: int, n: int, C: int, W: int) -> torch.Tensor:
    """Windows of W frames every C frames from ``flat[start:stop]``, zero-padded outside."""
    front = max(0, -start)
    back = max(0, stop - flat.shape[0])
    seg = flat[max(0, start) : min(stop, flat.shape[0])]
    if front or back:
        seg = torch.nn.functional.pad(seg, (0, 0, front, back))
    return seg.unfold(0, W, C).movedim(-1, 1)[:n]  # (n, W, ...)


def _valid(
    first: int, n: int, C: int, left: int, right: int, length: int | None, limit: int | None
) -> torch.Tensor:
    """(n, left + C... ) mask of window positions inside the file (and before ``limit``)."""
    offs = torch.arange(-left, right)
    pos = (torch.arange(first, first + n) * C)[:, None] + offs
    ok = pos >= 0
    if length is not None:
        ok &= pos < length
    if limit is not None:
        ok &= offs < limit
    return ok
