"""Tokenizers for METEOR and ROUGE-1, and the memoised Porter stemmer they share."""

from __future__ import annotations

import re
from typing import Any

# METEOR's tokenizer: words (letters/digits/underscore, with inner apostrophes kept: "don't",
# "user's") and every other non-space character as its own token.
TOKEN_PATTERN = r"\w+(?:['\u2019]\w+)*|[^\w\s]"
_TOKEN_RE = re.compile(TOKEN_PATTERN)


def tokenize(text: str) -> list[str]:
    """METEOR's tokenizer: ``re.findall(TOKEN_PATTERN, text)`` (case kept; nltk lower-cases)."""
    return _TOKEN_RE.findall(text)


def _cached_stemmer() -> Any:
    """nltk's ``PorterStemmer()`` (METEOR's and rouge-score's default) with ``stem`` memoised."""
    from nltk.stem.api import StemmerI
    from nltk.stem.porter import PorterStemmer

    class CachedPorterStemmer(StemmerI):
        def __init__(self) -> None:
            self._stemmer = PorterStemmer()
            self._memo: dict[str, str] = {}

        def stem(self, token: str) -> str:
            out = self._memo.get(token)
            if out is None:
                out = self._memo[token] = self._stemmer.stem(token)
            return out

    return CachedPorterStemmer()


def _cached_rouge_tokenizer(stemmer: Any) -> Any:
    """rouge-score's ``DefaultTokenizer(use_stemmer=True)`` -- ``rouge_score.tokenize.tokenize``
    with a Porter stemmer -- with ``tokenize(text)`` memoised (``score_multi`` tokenizes the
    prediction once per reference) and the stems memoised."""
    from rouge_score import tokenize as rouge_tokenize
    from rouge_score import tokenizers

    class CachedDefaultTokenizer(tokenizers.Tokenizer):
        def __init__(self) -> None:
            self._memo: dict[str, list[str]] = {}

        def tokenize(self, text: str) -> list[str]:
            out = self._memo.get(text)
            if out is None:
                out = self._memo[text] = rouge_tokenize.tokenize(text, stemmer)
            return out

        def clear(self) -> None:
            self._memo.clear()

    return CachedDefaultTokenizer()
