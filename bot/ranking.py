"""Ranking chunks for a question, in memory: multilingual tokens, BM25, cosine, and their fusion.

No I/O. BM25 comes from `bm25s` (scores precomputed into a sparse matrix at index time, so a
query costs a few array lookups); tokens are made here so that any script works:

- text is NFKC-normalised and case-folded; accents are folded on Latin, Greek and Cyrillic
  letters only (their combining marks are decoration; in Indic or Thai scripts they are vowels);
- words are runs of letters, digits and combining marks (Devanagari vowel signs belong to
  their word, where Python's `\\w` would cut it); scripts written without spaces (Chinese,
  Japanese, Korean, Thai) become overlapping character pairs, the usual trick when there is no
  word segmenter;
- stopwords of the common European languages are dropped (those that are also content words
  in another of them, like "hat" or "door", are kept), so a question made only of "what is the"
  matches nothing;
- a plural "s" is dropped and words are cut to their first PREFIX_CHARS letters: truncation is
  a crude stemmer, but one that works for most alphabetic languages alike (returns/returned,
  delivery/delivered, Lieferung/Lieferungen).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterator, Sequence

import bm25s
import numpy as np
import numpy.typing as npt
from bm25s import stopwords as _stopwords

# bm25s sets its logger to DEBUG when imported; index building is not worth a log line.
logging.getLogger("bm25s").setLevel(logging.WARNING)

Vector = npt.NDArray[np.float32]
PREFIX_CHARS = 6
RRF_K = 60

# Scripts without spaces between words: CJK ideographs, kana, hangul, Thai, Lao, Khmer, Myanmar.
_UNSPACED = re.compile(
    r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    r"\uac00-\ud7af\uf900-\ufaff]"
)
_FOLDABLE_BELOW = 0x0530  # Latin, Greek, Cyrillic (and their extensions) end before Armenian.
_KEEP = frozenset(
    {
        *("die", "hat", "war", "man", "men", "door", "want", "ben", "met", "son", "pour", "ton"),
        *("par", "sin", "era", "sea", "con", "hay", "come", "dove", "hem", "bin", "weg", "dan"),
        *("ante", "nada", "sole"),
    }
)
STOPWORDS = (
    frozenset(
        word
        for words in (
            _stopwords.STOPWORDS_EN_PLUS,
            _stopwords.STOPWORDS_GERMAN,
            _stopwords.STOPWORDS_FRENCH,
            _stopwords.STOPWORDS_SPANISH,
            _stopwords.STOPWORDS_ITALIAN,
            _stopwords.STOPWORDS_PORTUGUESE,
            _stopwords.STOPWORDS_DUTCH,
            _stopwords.STOPWORDS_RUSSIAN,
        )
        for word in words
    )
    - _KEEP
)


def fold(text: str) -> str:
    """Case-folded, NFKC text with accents removed from Latin, Greek and Cyrillic letters."""
    decomposed = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text).casefold())
    kept: list[str] = []
    for ch in decomposed:
        if unicodedata.combining(ch) and kept and ord(kept[-1]) < _FOLDABLE_BELOW:
            continue
        kept.append(ch)
    return unicodedata.normalize("NFC", "".join(kept))


def tokenize(text: str) -> list[str]:
    """The terms of `text` for BM25 (see the module's docstring)."""
    terms: list[str] = []
    for word in _words(fold(text)):
        if _UNSPACED.search(word):
            terms.extend(_pairs(word))
        elif word not in STOPWORDS and (len(word) > 1 or word.isdigit()):
            terms.append(word if word.isdigit() else _stem(word))
    return terms


def _stem(word: str) -> str:
    """A plural "s" off (costs, Autos, hoteles), then the first PREFIX_CHARS letters."""
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word[:PREFIX_CHARS]


def _words(text: str) -> Iterator[str]:
    start = None
    for i, ch in enumerate(text):
        inside = ch.isalnum() or (start is not None and unicodedata.category(ch)[0] == "M")
        if inside and start is None:
            start = i
        elif not inside and start is not None:
            yield text[start:i]
            start = None
    if start is not None:
        yield text[start:]


def _pairs(word: str) -> list[str]:
    if len(word) == 1:
        return [word]
    return [word[i : i + 2] for i in range(len(word) - 1)]


class LexicalIndex:
    """BM25 over a fixed list of documents."""

    def __init__(self, documents: Sequence[str]) -> None:
        self.size = len(documents)
        self._bm25: bm25s.BM25 | None = None
        corpus = [tokenize(d) for d in documents]
        if any(corpus):
            self._bm25 = bm25s.BM25()
            self._bm25.index(corpus, show_progress=False)

    def scores(self, query: str) -> npt.NDArray[np.float32]:
        """One BM25 score per document (all zero when no term of the query is known)."""
        if self._bm25 is None:
            return np.zeros(self.size, dtype=np.float32)
        ids = self._bm25.get_tokens_ids(tokenize(query))
        if not ids:
            return np.zeros(self.size, dtype=np.float32)
        scores: npt.NDArray[np.float32] = np.asarray(
            self._bm25.get_scores_from_ids(ids), dtype=np.float32
        )
        return scores


def normalized(vectors: npt.ArrayLike) -> Vector:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    matrix = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit: Vector = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    return unit


def cosine(matrix: Vector, vector: Vector) -> npt.NDArray[np.float32]:
    """Cosine similarity of each (unit) row of `matrix` with `vector`."""
    similarity: npt.NDArray[np.float32] = matrix @ normalized(vector)[0]
    return similarity


def best(scores: npt.NDArray[np.float32], k: int, minimum: float) -> list[tuple[int, float]]:
    """The `k` highest scores at or above `minimum`, best first, as (document, score)."""
    order = np.argsort(-scores, kind="stable")[:k]
    return [(int(i), float(scores[i])) for i in order if scores[i] >= minimum and scores[i] > 0]


def fuse(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: sum of 1 / (k + rank) over the rankings, best first."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, document in enumerate(ranking, 1):
            fused[document] = fused.get(document, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))
