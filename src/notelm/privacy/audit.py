"""The leakage engine: exact, n-gram and near-duplicate matching of held-out notes against train.

`audit(train_rows, test_rows, cfg, val_rows=None)` measures how much of test (and of val) is already in
train and returns the metrics that `notelm.stages.audit` writes to metrics/detail/leakage.json and gates
on (the keys and their meaning are listed in that stage's docstring). Rows are prepared examples; the
config is `AuditParams` (`audit.ngram`, `audit.shingle`, `audit.num_perm`, `audit.seed`,
`audit.minhash_threshold`). It promises:

    exact       a held-out note counts when its whole text (prompt + " " + target, whitespace
                normalised) is a train note's text
    target      ... when its non-empty target occurs verbatim (`str in`) inside some train note's text
    n-gram      the share of the distinct word `audit.ngram`-grams of the held-out split found in train
    near-dup    ... when a train note's word-shingle set has Jaccard >= `audit.minhash_threshold` with its
                own (MinHash LSH finds candidates; the exact Jaccard confirms them, so never a false one)
    overlap     shared subject_id and hadm_id values

and the same metrics for the same rows and config, in every process. Used by `notelm.stages.audit` (the
stage and its gate) and `benchmarks/audit.py`.

How it scales (MIMIC-III: ~800k train and ~100k test notes): test and val are indexed once, train is
streamed through in batches and never held in memory. Words are hashed once (blake2b, so values are
the same in every process) and word n-grams are 64-bit polynomial hashes computed with numpy over a
whole batch. Containment looks train n-grams up in the sorted array of distinct test n-grams. A target
is only searched for (`str in`) in the train notes that contain all of its anchors: the three word
n-grams from inside it that fewest test notes contain, so boilerplate does not make every train note a
candidate. Near-duplicates use MinHash signatures that are exactly datasketch's (`MinHash`, "affine32"
scheme, `audit.num_perm` permutations, `audit.seed`), banded for LSH so that a pair at the threshold
becomes a candidate with probability >= 98%; each candidate is then confirmed by the exact Jaccard of
the two shingle sets, so the LSH affects speed and (slightly) recall, never precision. The banding is
done with sorted numpy arrays rather than `datasketch.MinHashLSH`, whose dict of Python sets costs about
5 KB per indexed note (≈1 GB for MIMIC's test and val) against ~0.2 KB here.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from datasketch import MinHash

from notelm.config.audit import AuditParams
from notelm.config.names import LEAKAGE_COUNTS, VAL_BLOCK
from notelm.core.errors import NoteLMError
from notelm.data.progress import progress

log = logging.getLogger(__name__)

_WORD = re.compile(r"\w+")
_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier of the polynomial n-gram hash
_MASK = (1 << 64) - 1
_BATCH_NOTES = 2048  # notes per vectorised batch: bounds memory, amortises numpy call overhead
_BLOCK_ROWS = 1 << 15  # shingles per MinHash block: a (rows x num_perm) uint32 temp of ~16 MB
_VOCAB_CAP = 2_000_000  # memoised word hashes; stable hashes make the cache safe to drop
_LSH_RECALL = 0.98  # chance that a pair at exactly the threshold becomes an LSH candidate
_ANCHORS = 3  # word n-grams from inside a target that a train note must contain before it is searched


# ---------------------------------------------------------------------------------------------
# Text and hashing.


def normalize(text: str) -> str:
    """Collapse every run of whitespace to one space and strip the ends."""
    return " ".join(text.split())


def words(text: str) -> list[str]:
    """The lowercased `\\w+` words of `text`: the unit of n-grams and shingles."""
    return _WORD.findall(text.lower())


class _Vocab(dict):
    """word -> stable 64-bit hash (blake2b), memoised."""

    def __missing__(self, word: str) -> int:
        if len(self) >= _VOCAB_CAP:
            self.clear()
        value = int.from_bytes(hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
        self[word] = value
        return value


def _seq_hash(hashes: Iterable[int]) -> int:
    """Polynomial hash of a word sequence; equals the window hashes `_Batch.windows` holds."""
    h = 0
    for value in hashes:
        h = (h * int(_BASE) + value) & _MASK
    return h


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, as datasketch applies it before its affine permutations."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def lsh_bands(threshold: float, num_perm: int, recall: float = _LSH_RECALL) -> tuple[int, int]:
    """(bands, rows per band): the most rows per band for which a pair of Jaccard `threshold` collides
    in at least one band with probability >= `recall` (more rows = fewer false candidates)."""
    for r in range(num_perm // 2, 0, -1):
        b = num_perm // r
        if 1.0 - (1.0 - threshold**r) ** b >= recall:
            return b, r
    return num_perm, 1


def _contains(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """For each query, whether the sorted array `keys` holds it."""
    if len(keys) == 0:
        return np.zeros(len(queries), bool)
    pos = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    return keys[pos] == queries


def _lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every match of `queries` in the sorted array `keys`: (query index, values[key index]) pairs."""
    if len(keys) == 0:
        return np.zeros(0, np.int64), values[:0]
    lo = np.searchsorted(keys, queries, "left")
    hit = np.flatnonzero(keys[np.minimum(lo, len(keys) - 1)] == queries)  # most queries miss: search again only hits
    lo = lo[hit]
    n = np.searchsorted(keys, queries[hit], "right") - lo
    q = np.repeat(hit, n)
    k = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n) + np.repeat(lo, n)
    return q, values[k]


def _unique(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values (plain np.unique takes a hash-based path ~100x slower on NumPy 2.4)."""
    values = np.sort(values)
    return values[np.concatenate([[True], values[1:] != values[:-1]])] if len(values) else values


def _distinct(hashes: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (hash, owner) pairs, sorted by owner then hash."""
    order = np.lexsort((hashes, owner))
    hashes, owner = hashes[order], owner[order]
    first = np.ones(len(hashes), bool)
    first[1:] = (hashes[1:] != hashes[:-1]) | (owner[1:] != owner[:-1])
    return hashes[first], owner[first]


@dataclass
class _Batch:
    """What the checks need from a batch of notes, computed for the whole batch at once."""

    texts: list[str]  # whitespace-normalised prompt + " " + target
    windows: dict[int, tuple[np.ndarray, np.ndarray]]  # L -> (hash, note) of every word L-gram inside one note
    shingles: np.ndarray  # each note's distinct shingle hashes, sorted, concatenated
    shingle_off: np.ndarray  # note i's shingles are shingles[shingle_off[i]:shingle_off[i + 1]]
    sig_notes: np.ndarray  # notes with at least one shingle (one word), the rows of band_keys
    band_keys: np.ndarray  # uint64 [len(sig_notes), bands]: one hash per MinHash LSH band
    _distinct: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def distinct(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        """The distinct L-gram hashes, sorted, and for each window the index of its hash among them.

        Sorted, duplicate-free queries make lookups in large sorted arrays several times faster."""
        if length not in self._distinct:
            self._distinct[length] = np.unique(self.windows[length][0], return_inverse=True)
        return self._distinct[length]


class _Featurizer:
    """Turns texts into `_Batch`es under one config: word hashes, n-gram windows, MinHash LSH band keys."""

    def __init__(self, cfg: AuditParams) -> None:
        self.vocab = _Vocab()
        self.shingle = cfg.shingle
        self.lengths = {cfg.ngram, cfg.shingle}  # window lengths to keep; anchors add theirs
        # datasketch's own permutations, so signatures equal MinHash(num_perm, seed).update_batch(...)
        perm = MinHash(num_perm=cfg.num_perm, seed=cfg.seed).permutations
        self.perm_a, self.perm_b = (np.asarray(p, dtype=np.uint32) for p in perm)
        self.bands, self.rows = lsh_bands(cfg.minhash_threshold, cfg.num_perm)

    def word_hashes(self, text: str) -> list[int]:
        vocab = self.vocab
        return [vocab[w] for w in words(text)]

    def windows(self, texts: list[str], lengths: set[int]) -> tuple[dict, np.ndarray, np.ndarray]:
        """Hash every word L-gram lying inside one of `texts`, for each L in `lengths`.

        Returns ({L: (hashes, text index)} in text then position order, words per text, word hashes).
        """
        vocab = self.vocab
        tokens: list[str] = []
        counts = np.empty(len(texts), np.int64)
        for i, text in enumerate(texts):
            ws = words(text)
            tokens.extend(ws)
            counts[i] = len(ws)
        x = np.array([vocab[w] for w in tokens], dtype=np.uint64)
        owner = np.repeat(np.arange(len(texts), dtype=np.int64), counts)

        # h_L[i] = hash of words i..i+L-1, built up one length at a time (wrapping uint64 arithmetic).
        out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        h = np.zeros(len(x), np.uint64)
        for length in range(1, max(lengths) + 1):
            m = max(0, len(x) - length + 1)
            h = h[:m] * _BASE + x[length - 1:]
            if length in lengths:
                inside = owner[:m] == owner[length - 1:]
                out[length] = (h[inside], owner[:m][inside])
        return out, counts, x

    def __call__(self, texts: list[str]) -> _Batch:
        windows, counts, x = self.windows(texts, self.lengths)

        # Shingles: word k-grams; a note shorter than k words is one shingle, all of its words.
        sh, sh_owner = windows[self.shingle]
        offsets = np.concatenate([[0], np.cumsum(counts)])
        short = np.flatnonzero((counts > 0) & (counts < self.shingle))
        if len(short):
            extra = np.array([_seq_hash(x[offsets[i]:offsets[i + 1]].tolist()) for i in short], dtype=np.uint64)
            sh, sh_owner = np.concatenate([sh, extra]), np.concatenate([sh_owner, short])
        sh, sh_owner = _distinct(sh, sh_owner)
        shingle_off = np.searchsorted(sh_owner, np.arange(len(texts) + 1))
        sig_notes = np.flatnonzero(np.diff(shingle_off))
        sigs = self._signatures(sh, shingle_off[sig_notes], shingle_off[sig_notes + 1])
        return _Batch(texts, windows, sh, shingle_off, sig_notes, self._band_keys(sigs))

    def _signatures(self, shingles: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """MinHash signature (uint32 [notes, num_perm]) of each run shingles[starts[i]:ends[i]]."""
        hv = _fmix32(shingles.astype(np.uint32))  # datasketch's affine32 scheme takes 32-bit input hashes
        sigs = np.empty((len(starts), len(self.perm_a)), np.uint32)
        i = 0
        while i < len(starts):
            j = max(i + 1, int(np.searchsorted(starts, starts[i] + _BLOCK_ROWS, "left")))
            lo, hi = starts[i], ends[j - 1]
            phv = hv[lo:hi, None] * self.perm_a + self.perm_b
            sigs[i:j] = np.minimum.reduceat(phv, starts[i:j] - lo, axis=0)
            i = j
        return sigs

    def _band_keys(self, sigs: np.ndarray) -> np.ndarray:
        bands = sigs[:, : self.bands * self.rows].reshape(len(sigs), self.bands, self.rows).astype(np.uint64)
        keys = np.zeros((len(sigs), self.bands), np.uint64)
        for j in range(self.rows):
            keys = keys * _BASE + bands[:, :, j]
        return keys


# ---------------------------------------------------------------------------------------------
# Reading rows.


def _parse(row: Any, split: str, i: int) -> tuple[str, str, Any, Any]:
    """(normalised text, normalised target, subject_id, hadm_id) of prepared example `row`."""
    if not isinstance(row, dict):
        raise NoteLMError(f"{split} row {i}: expected a JSON object, got {type(row).__name__}")
    for key in ("prompt", "target", "subject_id"):
        if key not in row:
            raise NoteLMError(f"{split} row {i} (note_id {row.get('note_id')!r}): missing field {key!r}")
    prompt, target = row["prompt"], row["target"]
    if not isinstance(prompt, str) or not isinstance(target, str):
        raise NoteLMError(f"{split} row {i} (note_id {row.get('note_id')!r}): prompt and target must be strings")
    return normalize(prompt + " " + target), normalize(target), row["subject_id"], row.get("hadm_id")


def _batches(rows: Iterable[Any], split: str) -> Iterator[list[tuple[str, str, Any, Any]]]:
    batch = []
    for i, row in enumerate(progress(rows, f"audit: {split} notes", unit="note"), 1):
        batch.append(_parse(row, split, i))
        if len(batch) == _BATCH_NOTES:
            yield batch
            batch = []
    if batch:
        yield batch


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


# ---------------------------------------------------------------------------------------------
# The audit.


class _HeldOut:
    """A held-out split (test or val) indexed for lookups, and what the scans over train found in it."""

    def __init__(self, split: str, rows: Iterable[Any], cfg: AuditParams, feat: _Featurizer) -> None:
        self.split, self.cfg, self.feat = split, cfg, feat
        self.subjects: set[Any] = set()
        self.admissions: set[Any] = set()
        self.exact: dict[bytes, list[int]] = {}
        self.targets: list[str] = []
        self.short_targets: list[int] = []  # targets of <= 2 words: nothing inside to anchor on, searched whole
        self.shingle_batches: list[tuple[np.ndarray, np.ndarray]] = []  # per batch: (shingles, offsets)
        ngrams, band_keys, sig_notes, anchors = self._read(rows)
        n = self.n

        self.ngrams = _unique(np.concatenate(ngrams)) if ngrams else np.zeros(0, np.uint64)
        self.ngram_found = np.zeros(len(self.ngrams), bool)
        del ngrams

        self.bands = self._band_index(band_keys, sig_notes)

        table = [np.concatenate(a) for a in zip(*anchors, strict=True)] if anchors else [np.zeros(0, np.int64)] * 4
        self.anchor_len, self.anchor_hash, self.anchor_target, self.anchor_slot = table
        self.anchor_count = np.bincount(self.anchor_target, minlength=n)  # anchors a train note must hold

        self.exact_found = np.zeros(n, bool)
        self.target_found = np.zeros(n, bool)
        self.near_found = np.zeros(n, bool)
        self._index_anchors()
        feat.lengths.update(self.anchors)

    def _read(self, rows: Iterable[Any]) -> tuple[list, list, list, list]:
        """Read the split batch by batch: fill subjects, admissions, exact, targets, shingle_batches and n.

        Returns, one entry per batch, (distinct n-grams, LSH band keys, held-out note of each key's row,
        anchor table) for `__init__` to merge into the split's indexes.
        """
        cfg, feat = self.cfg, self.feat
        ngrams, band_keys, sig_notes, anchors = [], [], [], []
        n = 0
        for batch_rows in _batches(rows, self.split):
            texts = [text for text, _, _, _ in batch_rows]
            targets = [target for _, target, _, _ in batch_rows]
            for i, (text, _, subject, hadm) in enumerate(batch_rows, n):
                self.subjects.add(subject)
                if hadm is not None:
                    self.admissions.add(hadm)
                self.exact.setdefault(_digest(text), []).append(i)
            self.targets.extend(targets)
            batch = feat(texts)
            # distinct n-grams of the batch, and how many of its notes hold each (a rarity estimate)
            grams, notes_with = np.unique(_distinct(*batch.windows[cfg.ngram])[0], return_counts=True)
            ngrams.append(grams)
            anchors.append(self._anchors(targets, n, grams, notes_with))
            self.shingle_batches.append((batch.shingles, batch.shingle_off))
            band_keys.append(batch.band_keys)
            sig_notes.append(batch.sig_notes + n)
            n += len(batch_rows)
        self.n = n
        return ngrams, band_keys, sig_notes, anchors

    def _band_index(self, band_keys: list[np.ndarray], sig_notes: list[np.ndarray]) -> list:
        """Per LSH band: (sorted band keys, held-out note of each), merged from the batches' band keys."""
        feat = self.feat
        keys = np.concatenate(band_keys) if band_keys else np.zeros((0, feat.bands), np.uint64)
        notes = np.concatenate(sig_notes) if sig_notes else np.zeros(0, np.int64)
        bands = []  # per band: (sorted keys, held-out note of each)
        for j in range(feat.bands):
            order = np.argsort(keys[:, j], kind="stable")
            bands.append((keys[order, j], notes[order]))
        return bands

    def _anchors(self, targets: list[str], first: int, grams: np.ndarray, notes_with: np.ndarray) -> tuple:
        """(length, hash, target, slot) of the anchors of `targets` (numbered from `first`).

        A target found in a train text may begin or end inside a longer word there ("ain" in "pain"),
        but every word between its first and last is a whole word in that text too, so n-grams over
        those words are n-grams of the train text. Of these, a target's anchors are the _ANCHORS that
        fewest notes of the batch contain (`grams`, `notes_with`), then the earliest, so that
        boilerplate phrases, which many train notes contain too, are not used. A target of fewer than
        ngram + 2 words gets one anchor, all of its inside words; one of <= 2 words gets none.
        """
        n = self.cfg.ngram
        windows, counts, x = self.feat.windows(targets, {n})
        hashes, owner = windows[n]
        pos = np.arange(len(owner)) - np.searchsorted(owner, owner)
        inside = (pos >= 1) & (pos <= counts[owner] - 1 - n)
        hashes, owner, pos = hashes[inside], owner[inside], pos[inside]
        at = np.minimum(np.searchsorted(grams, hashes), max(len(grams) - 1, 0))
        common = np.where(grams[at] == hashes, notes_with[at], 1) if len(grams) else np.ones(len(hashes), np.int64)
        order = np.lexsort((pos, common, owner))
        rank = np.arange(len(order)) - np.searchsorted(owner[order], owner[order])
        chosen = order[rank < _ANCHORS]
        table = [np.full(len(chosen), n), hashes[chosen], owner[chosen], rank[rank < _ANCHORS]]

        short = []  # (length, hash, target) of targets with fewer inside words than an n-gram
        offsets = np.concatenate([[0], np.cumsum(counts)])
        for i in np.flatnonzero(counts < n + 2).tolist():
            inner = int(counts[i]) - 2
            if inner >= 1:
                short.append((inner, _seq_hash(x[offsets[i] + 1:offsets[i] + 1 + inner].tolist()), i))
            elif targets[i]:
                self.short_targets.append(first + i)
        if short:
            lengths, short_hashes, short_targets = zip(*short, strict=True)
            extra = [np.array(lengths), np.array(short_hashes, np.uint64), np.array(short_targets),
                     np.zeros(len(short), np.int64)]
            table = [np.concatenate([a, b]) for a, b in zip(table, extra, strict=True)]
        length, hash_, target, slot = table
        return length.astype(np.int64), hash_.astype(np.uint64), target.astype(np.int64) + first, slot.astype(np.int64)

    def _index_anchors(self) -> None:
        """(Re)build length -> (sorted anchor hashes, anchor index) over the targets not yet found."""
        self.anchors: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        open_ = ~self.target_found[self.anchor_target]
        for length in _unique(self.anchor_len).tolist():
            idx = np.flatnonzero((self.anchor_len == length) & open_)
            idx = idx[np.argsort(self.anchor_hash[idx], kind="stable")]
            self.anchors[int(length)] = (self.anchor_hash[idx], idx)

    def scan(self, batch: _Batch) -> None:
        """Record what of this split the train notes of `batch` contain."""
        for text in batch.texts:
            for i in self.exact.get(_digest(text), ()):
                self.exact_found[i] = True

        if len(self.ngrams):
            hashes = batch.distinct(self.cfg.ngram)[0]
            pos = np.minimum(np.searchsorted(self.ngrams, hashes), len(self.ngrams) - 1)
            self.ngram_found[pos[self.ngrams[pos] == hashes]] = True

        self._scan_targets(batch)
        self._scan_near(batch)

    def _scan_targets(self, batch: _Batch) -> None:
        found, n = self.target_found, max(self.n, 1)
        before = int(found.sum())
        for length, (keys, idx) in self.anchors.items():
            hashes, owner = batch.windows[length]
            distinct, inverse = batch.distinct(length)
            hit = np.flatnonzero(_contains(keys, distinct)[inverse])  # the windows that are some anchor
            q, a = _lookup(keys, idx, hashes[hit])
            note, target = owner[hit[q]], self.anchor_target[a]
            open_ = ~found[target]
            # distinct (train note, target, slot), then the (note, target) pairs that hold every anchor
            triple = _unique((note[open_] * n + target[open_]) * _ANCHORS + self.anchor_slot[a[open_]])
            pairs, held = np.unique(triple // _ANCHORS, return_counts=True)
            for pair in pairs[held == self.anchor_count[pairs % n]].tolist():
                note, t = divmod(pair, n)
                if not found[t] and self.targets[t] in batch.texts[note]:
                    found[t] = True
        if self.short_targets:
            joined = "\n".join(batch.texts)  # normalised texts hold no newline, so no match spans two notes
            for t in self.short_targets:
                if self.targets[t] in joined:
                    found[t] = True
            self.short_targets = [t for t in self.short_targets if not found[t]]
        if found.sum() > before:
            self._index_anchors()  # found targets need no more searching

    def _scan_near(self, batch: _Batch) -> None:
        found, n = self.near_found, max(self.n, 1)
        pairs = []
        for j, (keys, notes) in enumerate(self.bands):
            q, held = _lookup(keys, notes, batch.band_keys[:, j])
            pairs.append(batch.sig_notes[q] * n + held)
        if not pairs:
            return
        pairs = _unique(np.concatenate(pairs))
        pairs = pairs[~found[pairs % n]]
        threshold = self.cfg.minhash_threshold
        for pair in pairs.tolist():
            note, i = divmod(pair, n)
            if found[i]:
                continue
            a = batch.shingles[batch.shingle_off[note]:batch.shingle_off[note + 1]]
            shingles, offsets = self.shingle_batches[i // _BATCH_NOTES]
            j = i % _BATCH_NOTES
            b = shingles[offsets[j]:offsets[j + 1]]
            inter = len(np.intersect1d(a, b, assume_unique=True))
            if inter / (len(a) + len(b) - inter) >= threshold:
                found[i] = True

    def metrics(self, train_subjects: set[Any], train_admissions: set[Any]) -> dict[str, Any]:
        """The metrics of this split against train, keys in this split's form (n_val, exact_dup_val_in_train...)."""

        def rate(count: int, total: int) -> float:
            return round(count / total, 6) if total else 0.0

        found = {  # one count per key of names.LEAKAGE_COUNTS, whose denominators are the n_* below
            "subject_overlap": len(self.subjects & train_subjects),
            "admission_overlap": len(self.admissions & train_admissions),
            "exact_dup_test_in_train": int(self.exact_found.sum()),
            "target_in_train": int(self.target_found.sum()),
            "near_dup_test_in_train": int(self.near_found.sum()),
        }
        out: dict[str, Any] = {
            "n_test": self.n,
            "n_test_subjects": len(self.subjects),
            "n_test_admissions": len(self.admissions),
            f"ngram{self.cfg.ngram}_containment": rate(int(self.ngram_found.sum()), len(self.ngrams)),
        }
        for key, (denominator, _) in LEAKAGE_COUNTS.items():
            out[key] = found[key]
            out[f"{key}_rate"] = rate(found[key], out[denominator])
        return {key.replace("test", self.split): value for key, value in out.items()}


def audit(
    train_rows: Iterable[dict[str, Any]],
    test_rows: Iterable[dict[str, Any]],
    cfg: AuditParams,
    val_rows: Iterable[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Leakage metrics of test (and of val, when given) against train; keys as in `notelm.stages.audit`'s docstring.

    Rows are prepared examples (prompt, target, subject_id, hadm_id); each iterable is read once, in
    order, and train is streamed, so generators over large files are fine. A row without prompt,
    target or subject_id raises NoteLMError naming the split and row. Deterministic: the same rows and
    config give the same metrics.
    """
    feat = _Featurizer(cfg)
    held = [_HeldOut("test", test_rows, cfg, feat)]
    if val_rows is not None:
        held.append(_HeldOut("val", val_rows, cfg, feat))
    subjects: set[Any] = set()
    admissions: set[Any] = set()
    n_train = 0
    for batch_rows in _batches(train_rows, "train"):
        for _, _, subject, hadm in batch_rows:
            subjects.add(subject)
            if hadm is not None:
                admissions.add(hadm)
        batch = feat([text for text, _, _, _ in batch_rows])
        for h in held:
            h.scan(batch)
        n_train += len(batch_rows)
        log.debug("audit: %d train notes scanned", n_train)

    metrics = {"n_train": n_train, **held[0].metrics(subjects, admissions)}
    if val_rows is not None:
        metrics[VAL_BLOCK] = held[1].metrics(subjects, admissions)
    return metrics
