"""Memoised WordNet lookups for nltk's METEOR (the WordNet reader itself is nltk's)."""

from __future__ import annotations

from typing import Any, Iterable

class _Lemma:
    __slots__ = ("_name",)

    def __init__(self, name: str):
        self._name = name

    def name(self) -> str:
        return self._name


class _SynonymBag:
    """Stands in for *all* the synsets of one word: ``lemmas()`` are their distinct lemmas."""

    __slots__ = ("_lemmas",)

    def __init__(self, names: Iterable[str]):
        self._lemmas = [_Lemma(n) for n in names]

    def lemmas(self) -> list[_Lemma]:
        return self._lemmas


class _MeteorWordNet:
    """Memoised WordNet lookups for nltk's METEOR (the reader itself is nltk's).

    nltk's ``_enum_wordnetsyn_match`` (the only user) builds, for each hypothesis word,
    ``set(lemma.name() for synset in wordnet.synsets(word) for lemma in synset.lemmas()
    if "_" not in lemma.name())`` -- for every reference, again and again.  ``synsets(word)``
    here calls the real reader once per word and returns one bag holding the distinct
    single-word lemma names of all its synsets: the set nltk builds from it is the same, without
    iterating millions of duplicate lemmas.  The test-suite checks METEOR against
    ``meteor_score`` with nltk's own WordNet reader.
    """

    def __init__(self, reader: Any):
        self._reader = reader
        self._memo: dict[tuple, list[_SynonymBag]] = {}

    def synsets(self, lemma, pos=None, lang="eng", check_exceptions=True):
        key = (lemma, pos, lang, check_exceptions)
        hit = self._memo.get(key)
        if hit is None:
            found = self._reader.synsets(lemma, pos=pos, lang=lang, check_exceptions=check_exceptions)
            # nltk drops multi-word lemmas ("_" in the name) itself; dropping them here too
            # leaves its set unchanged.
            names = dict.fromkeys(
                n for syn in found for n in (lm.name() for lm in syn.lemmas()) if "_" not in n
            )
            hit = self._memo[key] = [_SynonymBag(names)] if names else []
        return hit
