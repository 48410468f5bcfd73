"""WordNet for NLTK's METEOR: find a usable copy or fail loudly.

NLTK's METEOR (``nltk.translate.meteor_score``) matches synonyms through WordNet 3.0.  It is
not bundled with nltk and there is no silent fallback here: METEOR without its synonym stage
is a different metric, so a missing WordNet raises :class:`MetricUnavailableError` naming
the two ways to install it:

1. offline, from Debian's packages: ``scripts/install_wordnet.sh`` (apt-get installs
   ``wordnet-base wordnet-sense-index``, copies ``/usr/share/wordnet/*`` into
   ``${NLTK_DATA:-~/nltk_data}/corpora/wordnet`` and writes the ``lexnames`` file Debian
   lacks);
2. with a network: ``python -c "import nltk; nltk.download('wordnet')"``.

NLTK searches ``nltk.data.path`` (``NLTK_DATA`` first, then ``~/nltk_data``,
``<venv>/nltk_data``, ``/usr/share/nltk_data``, ...).  Its path sandbox refuses symlinked
and hard-linked files, hence copies.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

__all__ = ["MetricUnavailableError", "WORDNET_FILES", "ensure_wordnet", "install_hint"]

# What NLTK's WordNetCorpusReader opens for METEOR's synonym lookups (lexnames at load time,
# index.* / data.* / *.exc for synsets() with morphy).
WORDNET_FILES = (
    "lexnames",
    "index.noun", "index.verb", "index.adj", "index.adv",
    "data.noun", "data.verb", "data.adj", "data.adv",
    "noun.exc", "verb.exc", "adj.exc", "adv.exc",
)


class MetricUnavailableError(RuntimeError):
    """A requested metric cannot be computed as specified (missing data, model or package)."""


def install_hint() -> str:
    return (
        "Install WordNet 3.0 for NLTK one of two ways:\n"
        "  1. offline (Debian packages wordnet-base + wordnet-sense-index, copied for NLTK):\n"
        "       bash scripts/install_wordnet.sh        # installs into ${NLTK_DATA:-~/nltk_data}\n"
        "  2. with a network:\n"
        "       python -c \"import nltk; nltk.download('wordnet')\"\n"
        "Then make sure the data folder is on NLTK's search path (export NLTK_DATA=<folder> if it "
        "is not ~/nltk_data). Files must be plain copies: NLTK refuses symlinks and hard links."
    )


def _sync_env_paths() -> None:
    """Add NLTK_DATA entries set after nltk was imported (nltk reads the variable once)."""
    import nltk.data

    for entry in reversed(os.environ.get("NLTK_DATA", "").split(os.pathsep)):
        if entry:
            entry = os.path.expanduser(entry)
            if entry not in nltk.data.path:
                nltk.data.path.insert(0, entry)


def _find_like_nltk() -> Any:
    """The copy ``nltk.corpus.wordnet`` loads: a folder ``corpora/wordnet`` or the zip
    ``corpora/wordnet.zip`` that nltk.download writes, in the order nltk's
    ``LazyCorpusLoader`` tries them."""
    import nltk.data
    from nltk.corpus import util

    tries = ["corpora/wordnet", "corpora/wordnet.zip/wordnet/"]
    if getattr(util, "TRY_ZIPFILE_FIRST", False):
        tries.reverse()
    for resource in tries:
        try:
            return nltk.data.find(resource)
        except LookupError:
            continue
    raise LookupError("corpora/wordnet")


def _problems_in(pointer: Any) -> tuple[Path, list[str]]:
    """(location, problems) of the WordNet copy NLTK resolved ``corpora/wordnet`` to."""
    import nltk.data

    problems: list[str] = []
    if isinstance(pointer, nltk.data.ZipFilePathPointer):
        zip_path = Path(pointer.zipfile.filename)
        entry = pointer.entry.rstrip("/")
        try:
            with zipfile.ZipFile(zip_path) as zf:
                names = set(zf.namelist())
        except (OSError, zipfile.BadZipFile) as exc:
            return zip_path, [f"unreadable zip: {exc}"]
        for name in WORDNET_FILES:
            if f"{entry}/{name}" not in names:
                problems.append(f"missing {name}")
        return zip_path, problems
    folder = Path(pointer.path)
    for name in WORDNET_FILES:
        f = folder / name
        if f.is_symlink():
            problems.append(f"{name} is a symlink (NLTK refuses links: copy the file)")
        elif not f.is_file():
            problems.append(f"missing {name}")
        elif f.stat().st_nlink > 1:
            problems.append(f"{name} is hard-linked (NLTK refuses links: copy the file)")
    lexnames = folder / "lexnames"
    if "missing lexnames" not in problems and lexnames.is_file():
        lines = [ln for ln in lexnames.read_text().splitlines() if ln.strip()]
        if len(lines) != 45:
            problems.append(f"lexnames has {len(lines)} lines, WordNet 3.0 has 45")
    return folder, problems


def ensure_wordnet() -> Path:
    """Return where NLTK finds a complete WordNet (a folder, or the zip nltk.download made).

    Checks the files METEOR needs and loads the reader once (``synsets('dog')``) so a
    broken copy fails here, not in the middle of scoring.  Raises
    :class:`MetricUnavailableError` with install instructions otherwise; never degrades.
    """
    try:
        import nltk.data
    except ImportError as exc:  # pragma: no cover - nltk is a dependency
        raise MetricUnavailableError(f"METEOR needs nltk: pip install nltk ({exc})") from exc

    _sync_env_paths()
    searched = [str(p) for p in nltk.data.path]
    try:
        pointer = _find_like_nltk()
    except LookupError:
        raise MetricUnavailableError(
            "METEOR needs WordNet 3.0 for NLTK and none was found.\n"
            f"Searched nltk.data.path: {searched}\n" + install_hint()
        ) from None

    location, problems = _problems_in(pointer)
    if problems:
        raise MetricUnavailableError(
            f"METEOR needs WordNet 3.0 for NLTK; the copy at {location} is unusable: "
            + "; ".join(problems) + "\n" + install_hint()
        )

    try:
        from nltk.corpus import wordnet

        if not wordnet.synsets("dog"):
            raise LookupError("synsets('dog') is empty")
    except (LookupError, OSError, ValueError, PermissionError) as exc:
        raise MetricUnavailableError(
            f"METEOR needs WordNet 3.0 for NLTK; loading {location} failed: {exc}\n"
            + install_hint()
        ) from exc
    return location
