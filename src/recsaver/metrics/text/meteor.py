"""Memoised WordNet lookups for nltk's METEOR (the WordNet reader itself is nltk's)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .metric import BaseMetric, Live, ScorerOptions, version


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

    def synsets(self, lemma: str, pos: str | None = None, lang: str = "eng", check_exceptions: bool = True
                ) -> list[_SynonymBag]:
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


class Meteor(BaseMetric):
    """nltk's METEOR (max over the pool) on regex tokens, with memoised stems and WordNet lookups."""

    name, label, higher_is_better = "meteor", "METEOR", True

    def __init__(self, options: ScorerOptions | None = None):
        super().__init__(options)
        from recsaver.metrics.wordnet import ensure_wordnet

        from .tokens import _cached_stemmer

        self.wordnet_path = ensure_wordnet()  # raises MetricUnavailableError, loudly
        from nltk.corpus import wordnet
        from nltk.translate.meteor_score import meteor_score

        self._meteor = meteor_score
        self._wordnet = _MeteorWordNet(wordnet)
        self._stemmer = _cached_stemmer()

    def score_all(self, live: Sequence[Live]) -> list[float]:
        from .tokens import tokenize

        tokens: dict[str, list[str]] = {}

        def tok(t: str) -> list[str]:
            got = tokens.get(t)
            if got is None:
                got = tokens[t] = tokenize(t)
            return got

        return [
            self._meteor([tok(r) for r in pool], tok(cand), stemmer=self._stemmer, wordnet=self._wordnet)
            for _, cand, pool in live
        ]

    def signature(self) -> str:
        import inspect

        from .tokens import TOKEN_PATTERN

        defaults = {k: p.default for k, p in inspect.signature(self._meteor).parameters.items()
                    if k in ("alpha", "beta", "gamma")}
        settings = "|".join(f"{k}:{v}" for k, v in defaults.items())
        return (f"nltk {version('nltk')} meteor_score, max over the pool [{settings}|lowercase|stem:Porter|"
                f"wordnet:{self._wordnet._reader.get_version()}|tok:re.findall({TOKEN_PATTERN!r})]")

    def details(self, pool_sizes: set[int]) -> dict[str, Any]:
        from .tokens import TOKEN_PATTERN

        return {
            "library": "nltk",
            "call": "nltk.translate.meteor_score.meteor_score([tokenize(r) for r in pool], "
            "tokenize(candidate))",
            "parameters": {"alpha": 0.9, "beta": 3.0, "gamma": 0.5, "preprocess": "str.lower",
                           "stemmer": "PorterStemmer", "wordnet": "WordNet 3.0"},
            "tokenization": f"regex re.findall({TOKEN_PATTERN!r}) (no punkt)",
            "wordnet_path": str(self.wordnet_path),
            "multi_reference": "max over references (nltk meteor_score)",
        }


if TYPE_CHECKING:
    from .metric import Metric

    _: Metric = Meteor(ScorerOptions())
