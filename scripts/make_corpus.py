#!/usr/bin/env python3
"""Build a synthetic English speech corpus (TTS) and a BPE tokenizer for chunkasr.

Text comes only from WordNet glosses/examples (Debian ``wordnet-base``) and the
``wamerican`` word list; speech from espeak-ng, flite and festival voices installed
on the system.  Output (``data/`` is gitignored)::

    data/corpus/wav/<split>/<id>.wav   16 kHz mono 16-bit
    data/corpus/<split>.jsonl          {"id","audio","text","voice","duration"}
    data/lang/bpe.model, data/lang/vocab.txt
    data/corpus/lm_text.txt            text for a word LM: every training-side sentence
                                       plus the corpus's dictionary-word utterances
    data/corpus/DONE                   when everything is complete

Splits: ``train`` (training text x training voices), ``dev`` (held-out text x
training voices), ``test_voices`` (held-out text x held-out voices).

Deterministic for a given seed; resumable (existing wavs are kept); the plan of
utterance ``i`` does not depend on how many utterances are requested.

    python scripts/make_corpus.py --train-hours 20
    python scripts/make_corpus.py --train-hours 20 --lm-text-only   # just data/corpus/lm_text.txt
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing import Pool
from multiprocessing.pool import Pool as PoolType
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
SR = 16000

WORDNET_FILES = [f"/usr/share/wordnet/data.{p}" for p in ("noun", "verb", "adj", "adv")]
DICT_FILE = "/usr/share/dict/american-english"

# ---------------------------------------------------------------- voices

ESPEAK_BASES = [
    "en-us",
    "en-gb",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
]
ESPEAK_VARIANTS = [f"m{i}" for i in range(1, 8)] + [f"f{i}" for i in range(1, 6)]
HELDOUT_ESPEAK_VARIANT = "f3"  # no training utterance uses +f3 at all
HELDOUT_ESPEAK = f"espeak:en-gb-x-rp+{HELDOUT_ESPEAK_VARIANT}"
HELDOUT_FLITE = "flite:rms"

TRAIN_ESPEAK = [
    f"espeak:{b}+{v}" for b in ESPEAK_BASES for v in ESPEAK_VARIANTS if v != HELDOUT_ESPEAK_VARIANT
]
TRAIN_FLITE = ["flite:kal16", "flite:awb"]
TRAIN_FESTIVAL = ["festival:kal_diphone", "festival:ked_diphone"]
HELDOUT_VOICES = [HELDOUT_ESPEAK, HELDOUT_FLITE]

# (engine voices, probability) for training utterances
TRAIN_MIX = [(TRAIN_ESPEAK, 0.65), (TRAIN_FLITE, 0.2), (TRAIN_FESTIVAL, 0.15)]


def pick_train_voice(rng: random.Random) -> str:
    r = rng.random()
    acc = 0.0
    for voices, p in TRAIN_MIX:
        acc += p
        if r < acc:
            return rng.choice(voices)
    return rng.choice(TRAIN_MIX[-1][0])


# ---------------------------------------------------------------- text

_ABBREV = re.compile(
    r"\b[a-z]\.[a-z]\.|\b(etc|mr|mrs|ms|dr|st|vs|esp|jr|sr|gen|col|lt|capt|sgt|mt|ft|no|ca|cf|approx)\.",
    re.IGNORECASE,
)
_ACRONYM = re.compile(r"\b[A-Z]{2,}\b|\b[A-Z][a-z]*[A-Z]")
_BAD_SYMBOL = re.compile(r"[&%$#@/+=*<>\[\]{}|\\^~_`]")
_KEEP = re.compile(r"[^a-z' ]+")
_LONE_APOS = re.compile(r"(?<![a-z])'|'(?![a-z])")


def normalize(text: str) -> str | None:
    """Corpus normalisation: lowercase letters, apostrophes, single spaces.

    Returns ``None`` for text that a TTS voice would not read literally (digits,
    symbols, abbreviations, acronyms, non-Latin letters)."""
    t = unicodedata.normalize("NFKD", text)
    t = "".join(c for c in t if not unicodedata.combining(c))
    t = t.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    if not t.isascii() or any(c.isdigit() for c in t):
        return None
    if _BAD_SYMBOL.search(t) or _ABBREV.search(t) or _ACRONYM.search(t):
        return None
    t = t.lower().replace("-", " ")
    t = _KEEP.sub(" ", t)
    t = _LONE_APOS.sub(" ", t)
    t = " ".join(t.split())
    return t or None


def text_split(sentence: str) -> str:
    """``heldout`` for ~3% of sentences, chosen by a hash of the normalised text."""
    h = int(hashlib.md5(sentence.encode()).hexdigest()[:8], 16)
    return "heldout" if h % 100 < 3 else "train"


def load_wordnet() -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    quoted = re.compile(r'"([^"]*)"')
    for path in WORDNET_FILES:
        with open(path, encoding="latin-1") as f:
            for line in f:
                if line.startswith(" ") or "|" not in line:
                    continue
                gloss = line.split("|", 1)[1].strip()
                examples = quoted.findall(gloss)
                rest = quoted.sub(";", gloss)
                pieces = examples + [d for d in rest.split(";")]
                for p in pieces:
                    p = p.strip()
                    if "(" in p:
                        p = re.sub(r"\([^)]*\)", " ", p)  # parenthetical remarks read oddly
                    n = normalize(p)
                    if n is None or len(n.split()) < 2 or n in seen:
                        continue
                    seen.add(n)
                    out.append(n)
    return out


def load_dictionary() -> list[str]:
    words: set[str] = set()
    with open(DICT_FILE, encoding="utf-8") as f:
        for line in f:
            w = line.strip()
            if not w or sum(c.isupper() for c in w) > 1:
                continue
            n = normalize(w)
            if n and " " not in n:
                words.add(n)
    return sorted(words)


# ---------------------------------------------------------------- plan


@dataclass(frozen=True)
class Utt:
    id: str
    text: str
    voice: str
    rate: float  # relative speed, 1.0 = default (espeak: wpm / 170)
    pitch: int  # espeak -p (0..99)
    gain: float  # peak level
    noise_db: float  # noise level relative to peak, dB (negative)
    pad: tuple[float, float]  # silence before/after, seconds


def _params(uid: str, text: str, voice: str, rng: random.Random) -> Utt:
    return Utt(
        id=uid,
        text=text,
        voice=voice,
        rate=rng.uniform(130, 210) / 170.0,
        pitch=rng.randint(25, 75),
        gain=rng.uniform(0.25, 0.95),
        noise_db=rng.uniform(-75, -35),
        pad=(rng.uniform(0.05, 0.5), rng.uniform(0.05, 0.5)),
    )


def _group(sentences: list[str], rng: random.Random) -> Iterator[str]:
    """Join consecutive sentences into utterances of ~4..36 words (about 2..16 s)."""
    i = 0
    while i < len(sentences):
        target = rng.randint(4, 36)
        words: list[str] = []
        while i < len(sentences) and len(words) < target:
            w = sentences[i].split()
            i += 1
            if len(w) > 40:
                continue
            if words and len(words) + len(w) > 40:
                i -= 1
                break
            words += w
        if words:
            yield " ".join(words)


DICT_SHARE = 0.2  # of training utterances: random dictionary words (covers rare words)


def is_dictionary_draw(seed: int, i: int) -> bool:
    """Whether training utterance ``i`` reads random dictionary words (see plan_train)."""
    return random.Random(f"{seed}-train-{i}").random() < DICT_SHARE


def plan_train(sentences: list[str], dictionary: list[str], seed: int) -> Iterator[Utt]:
    rng = random.Random(seed)
    order = sorted(sentences)
    rng.shuffle(order)
    groups = _group(order, random.Random(seed + 1))
    dict_order = list(dictionary)
    random.Random(seed + 2).shuffle(dict_order)
    dpos = 0
    i = 0
    while True:
        r = random.Random(f"{seed}-train-{i}")
        if r.random() < DICT_SHARE:  # the first draw of r, as in is_dictionary_draw
            n = r.randint(3, 20)
            if dpos + n > len(dict_order):
                dpos = 0
            text = " ".join(dict_order[dpos : dpos + n])
            dpos += n
        else:
            try:
                text = next(groups)
            except StopIteration:
                return
        yield _params(f"train_{i:06d}", text, pick_train_voice(r), r)
        i += 1


def plan_heldout(sentences: list[str], seed: int, split: str, count: int) -> list[Utt]:
    order = sorted(sentences)
    random.Random(f"{seed}-{split}").shuffle(order)
    groups = _group(order, random.Random(f"{seed}-{split}-g"))
    out = []
    for i, text in enumerate(groups):
        if i >= count:
            break
        r = random.Random(f"{seed}-{split}-{i}")
        voice = pick_train_voice(r) if split == "dev" else HELDOUT_VOICES[i % 2]
        out.append(_params(f"{split}_{i:06d}", text, voice, r))
    return out


def estimate_seconds(text: str) -> float:
    return 0.4 * len(text.split()) + 0.6


# ---------------------------------------------------------------- synthesis


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _resample_file(wav: str) -> None:
    """Resample a wav file to 16 kHz in place with sox (fast, good quality)."""
    if sf.info(wav).samplerate == SR:
        return
    out = wav + ".16k.wav"
    _run(["sox", wav, "-r", str(SR), "-b", "16", out])
    os.replace(out, wav)


F0_LOW, F0_HIGH = 75.0, 210.0  # Hz: the mean F0 that flite / festival voices are moved to


def f0_target(pitch: int) -> float:
    """Mean F0 for the flite and festival voices from the utterance's espeak pitch (25..75).

    Log-uniform from F0_LOW to F0_HIGH, so one diphone or clustergen voice becomes a family of
    low and high speakers, as espeak's ``-p`` does for its voices. (flite ``rms`` ignores it.)
    """
    t = min(max((pitch - 25) / 50.0, 0.0), 1.0)
    return F0_LOW * (F0_HIGH / F0_LOW) ** t


def tts(text: str, voice: str, rate: float = 1.0, pitch: int = 50) -> np.ndarray:
    """Raw TTS output as float32 mono at 16 kHz."""
    engine, name = voice.split(":", 1)
    f0 = f0_target(pitch)
    with tempfile.TemporaryDirectory(prefix="tts") as tmp:
        wav = os.path.join(tmp, "o.wav")
        if engine == "espeak":
            _run(["espeak-ng", "-v", name, "-s", str(int(170 * rate)), "-p", str(pitch),
                  "-w", wav, text])  # fmt: skip
        elif engine == "flite":
            stretch = f"{1.0 / rate:.3f}"
            _run(["flite", "-voice", name, "--setf", f"duration_stretch={stretch}",
                  "--setf", f"int_f0_target_mean={f0:.1f}",
                  "--setf", f"int_f0_target_stddev={0.14 * f0:.1f}",
                  "-t", text, "-o", wav])  # fmt: skip
        elif engine == "festival":
            txt = os.path.join(tmp, "t.txt")
            Path(txt).write_text(text + "\n")
            _run(["text2wave", "-eval", f"(voice_{name})",
                  "-eval", f"(Parameter.set 'Duration_Stretch {1.0 / rate:.3f})",
                  "-eval", f"(set! int_lr_params '((target_f0_mean {f0:.1f}) "
                           f"(target_f0_std {0.14 * f0:.1f}) (model_f0_mean 170) (model_f0_std 34)))",
                  txt, "-o", wav])  # fmt: skip
        else:
            raise ValueError(f"unknown engine {engine}")
        _resample_file(wav)
        x, _ = sf.read(wav, dtype="float32", always_2d=True)
    return x[:, 0]


def trim(x: np.ndarray, db: float = -40.0) -> np.ndarray:
    """Cut leading/trailing silence (10 ms frames below ``db`` relative to the peak)."""
    if x.size == 0:
        return x
    hop = SR // 100
    n = len(x) // hop
    if n == 0:
        return x
    frames = x[: n * hop].reshape(n, hop)
    energy = np.sqrt((frames**2).mean(axis=1) + 1e-12)
    thr = energy.max() * 10 ** (db / 20)
    idx = np.nonzero(energy > thr)[0]
    if idx.size == 0:
        return x
    return x[idx[0] * hop : min(len(x), (idx[-1] + 1) * hop)]


def render(u: Utt) -> np.ndarray:
    x = trim(tts(u.text, u.voice, u.rate, u.pitch))
    x = np.concatenate(
        [np.zeros(int(u.pad[0] * SR), np.float32), x, np.zeros(int(u.pad[1] * SR), np.float32)]
    )
    peak = float(np.abs(x).max()) or 1.0
    x = x / peak * u.gain
    rs = np.random.default_rng(int(hashlib.md5(u.id.encode()).hexdigest()[:8], 16))
    x = x + rs.standard_normal(len(x)).astype(np.float32) * u.gain * 10 ** (u.noise_db / 20)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def write_wav(path: Path, x: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.wav")
    sf.write(tmp, x, SR, subtype="PCM_16")
    os.replace(tmp, path)


def _work(args: tuple[Utt, str]) -> dict[str, Any] | None:
    u, split = args
    path = REPO / "data" / "corpus" / "wav" / split / f"{u.id}.wav"
    try:
        if path.exists():
            dur = sf.info(path).duration
        else:
            x = render(u)
            write_wav(path, x)
            dur = len(x) / SR
    except Exception as e:  # a voice failing on one text must not stop the run
        print(f"warning: {u.id} ({u.voice}): {e}", file=sys.stderr)
        return None
    return {
        "id": u.id,
        "audio": str(path.relative_to(REPO)),
        "text": u.text,
        "voice": u.voice,
        "duration": round(dur, 3),
    }


def write_manifest(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def synthesize(
    pool: PoolType, utts: list[Utt], split: str, early: tuple[float, Path] | None = None
) -> list[dict[str, Any]]:
    (REPO / "data" / "corpus" / "wav" / split).mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    total = 0.0
    t0 = time.time()
    early_done = early is None
    for k, r in enumerate(pool.imap(_work, [(u, split) for u in utts], chunksize=8)):
        if r is None:
            continue
        rows.append(r)
        total += float(r["duration"])
        if not early_done and early is not None and total / 3600 >= early[0]:
            write_manifest(early[1], rows)
            print(f"[{split}] early manifest: {len(rows)} utts, {total / 3600:.2f} h", flush=True)
            early_done = True
        if (k + 1) % 1000 == 0:
            el = time.time() - t0
            print(f"[{split}] {k + 1}/{len(utts)} utts {total / 3600:.2f} h {el:.0f}s", flush=True)
    return rows


# ---------------------------------------------------------------- tokenizer


def write_lm_text(path: Path, train_sentences: list[str], train: list[Utt], seed: int) -> int:
    """Text for a word LM: all training-side sentences (not only those the corpus reads) and
    the dictionary-word utterances of the planned corpus (``train``: a prefix of plan_train's
    output, so utterance ``i`` is plan index ``i``). Never a held-out sentence."""
    lines = list(train_sentences)
    lines += [u.text for i, u in enumerate(train) if is_dictionary_draw(seed, i)]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(f"{t}\n" for t in lines), encoding="utf-8")
    tmp.replace(path)
    return len(lines)


def train_tokenizer(texts: list[str], out_dir: Path, vocab_size: int) -> None:
    import sentencepiece as spm

    out_dir.mkdir(parents=True, exist_ok=True)
    txt = out_dir / "train_text.txt"
    txt.write_text("\n".join(texts) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(txt),
        model_prefix=str(out_dir / "bpe"),
        model_type="bpe",
        vocab_size=vocab_size,
        character_coverage=1.0,
        unk_id=0,
        bos_id=-1,
        eos_id=-1,
        pad_id=-1,
        input_sentence_size=2_000_000,
        shuffle_input_sentence=True,
        num_threads=2,
        minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=str(out_dir / "bpe.model"))
    lines = ["<blank> 0", "<unk> 1"]
    for i in range(1, sp.get_piece_size()):  # sentencepiece id 0 is its <unk>
        lines.append(f"{sp.id_to_piece(i)} {i + 1}")
    lines.append(f"<sos/eos> {sp.get_piece_size() + 1}")
    (out_dir / "vocab.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def check_tokenizer(lang: Path, texts: list[str]) -> None:
    sys.path.insert(0, str(REPO / "src"))
    from chunkasr.tokenizer import Tokenizer
    from chunkasr.vocab import Vocabulary

    tok = Tokenizer.from_dir(lang)
    vocab = Vocabulary.from_file(lang / "vocab.txt")
    bad = 0
    for t in texts:
        ids = tok.encode(t)
        if vocab.decode(ids) != t or 1 in ids:
            bad += 1
    print(f"tokenizer round trip: {len(texts) - bad}/{len(texts)} ok, vocab {len(vocab)}")
    if bad:
        raise SystemExit("tokenizer round trip failed")


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--train-hours", type=float, default=20.0)
    ap.add_argument("--early-hours", type=float, default=3.0,
                    help="write a first train.jsonl once this much is done")  # fmt: skip
    ap.add_argument("--dev", type=int, default=300)
    ap.add_argument("--test-voices", type=int, default=300)
    ap.add_argument("--vocab-size", type=int, default=256)
    ap.add_argument("--retrain-bpe", action="store_true",
                    help="train the tokenizer again even if data/lang has one")  # fmt: skip
    ap.add_argument("--seed", type=int, default=20261127)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--bench", type=int, default=0, help="only time N training utterances")
    ap.add_argument("--lm-text-only", action="store_true",
                    help="only write data/corpus/lm_text.txt (no speech)")  # fmt: skip
    args = ap.parse_args()

    t_start = time.time()
    corpus = REPO / "data" / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    if not args.lm_text_only:
        (corpus / "DONE").unlink(missing_ok=True)
    sentences = load_wordnet()
    dictionary = load_dictionary()
    train_s = [s for s in sentences if text_split(s) == "train"]
    held_s = [s for s in sentences if text_split(s) == "heldout"]
    print(f"text: {len(train_s)} train sentences, {len(held_s)} held-out, "
          f"{len(dictionary)} dictionary words")  # fmt: skip

    budget = args.train_hours * 3600
    train: list[Utt] = []
    est = 0.0
    for u in plan_train(train_s, dictionary, args.seed):
        if est >= budget or (args.bench and len(train) >= args.bench):
            break
        train.append(u)
        est += estimate_seconds(u.text)
    dev = plan_heldout(held_s, args.seed, "dev", args.dev)
    test = plan_heldout(held_s, args.seed, "test_voices", args.test_voices)
    if not args.bench:
        n = write_lm_text(corpus / "lm_text.txt", train_s, train, args.seed)
        print(f"{corpus / 'lm_text.txt'}: {n} lines")
        if args.lm_text_only:
            return

    with Pool(args.jobs) as pool:
        if args.bench:
            t0 = time.time()
            rows = synthesize(pool, train, "bench")
            el = time.time() - t0
            h = sum(float(r["duration"]) for r in rows) / 3600
            print(f"bench: {len(rows)} utts, {h * 3600:.0f} s audio in {el:.1f} s wall "
                  f"=> {h * 3600 / el:.1f}x real time")  # fmt: skip
            return

        lang = REPO / "data" / "lang"
        if args.retrain_bpe or not (lang / "bpe.model").exists():
            train_tokenizer([u.text for u in train], lang, args.vocab_size)
        else:
            print(f"keeping the existing tokenizer in {lang} (--retrain-bpe to replace it)")
        check_tokenizer(lang, [u.text for u in train[:500]] + [u.text for u in dev[:500]])

        hours: dict[str, float] = {}
        counts: dict[str, int] = {}
        for split, utts in (("dev", dev), ("test_voices", test), ("train", train)):
            early = None
            if split == "train" and args.early_hours > 0 and not (corpus / "train.jsonl").exists():
                early = (args.early_hours, corpus / "train.jsonl")
            rows = synthesize(pool, utts, split, early)
            write_manifest(corpus / f"{split}.jsonl", rows)
            hours[split] = sum(float(r["duration"]) for r in rows) / 3600
            counts[split] = len(rows)
            print(f"[{split}] {len(rows)} utts, {hours[split]:.2f} h, "
                  f"{time.time() - t_start:.0f} s elapsed", flush=True)  # fmt: skip

    wall = time.time() - t_start
    summary = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "hours": {k: round(v, 3) for k, v in hours.items()},
        "utterances": counts,
        "wall_seconds": round(wall, 1),
        "train_voices": TRAIN_ESPEAK + TRAIN_FLITE + TRAIN_FESTIVAL,
        "heldout_voices": HELDOUT_VOICES,
        "vocab_size": len((lang / "vocab.txt").read_text().splitlines()),
        "seed": args.seed,
    }
    (corpus / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (corpus / "DONE").write_text(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
    print(json.dumps(summary["hours"]), f"wall {wall:.0f} s")


if __name__ == "__main__":
    main()
