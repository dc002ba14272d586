"""Misspelt words corrected against the index's own vocabulary.

A query word that the index never saw ("gendr", "hearin") is followed by the vocabulary
term closest to it (the word stays, so a wrong guess only adds a word): one edit away (a letter left out, added, changed or two swapped), or the
word begins with the term and adds at most two letters (an inflection cut short: "hearin" ->
"hear", the stem of "hearing"). Between several, the term more chunks hold wins. Words the
index holds, short words and numbers are left alone.

    Speller(["gender", "hear"], {"gender": 12, "hear": 30}.get).correct("Does it cover gendr affirming care?")
    -> "Does it cover gendr gender affirming care?"
"""

from __future__ import annotations

import re
from typing import Callable, Iterable

_WORD = re.compile(r"[A-Za-z]{5,}")


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def _one_edit(a: str, b: str) -> bool:
    """Damerau-Levenshtein distance of exactly one."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


class Speller:
    """``terms``: the vocabulary (the index's own terms, stemmed). ``frequency(term)``: how many chunks
    hold it, for the reader at hand (0 = unknown to them: a term only restricted documents hold is
    never suggested, nor counts as known). ``normalise`` maps a query word to the form the vocabulary
    holds (the lexical index's stemmer)."""

    def __init__(self, terms: Iterable[str], frequency: Callable[[str], int | None],
                 normalise: Callable[[str], str] | None = None):
        self.frequency = lambda t: frequency(t) or 0
        self.normalise = normalise or (lambda w: w)
        self._by_delete: dict[str, list[str]] = {}
        for term in terms:
            if len(term) >= 3 and term.isalpha():
                for d in _deletes(term) | {term}:
                    self._by_delete.setdefault(d, []).append(term)

    def with_frequency(self, frequency: Callable[[str], int | None]) -> "Speller":
        """The same vocabulary (its look-up table shared, not rebuilt) for another reader."""
        other = object.__new__(Speller)
        other.frequency, other.normalise, other._by_delete = (lambda t: frequency(t) or 0), self.normalise, self._by_delete
        return other

    def known(self, word: str) -> bool:
        w = word.lower()
        return self.frequency(w) > 0 or self.frequency(self.normalise(w)) > 0

    def suggest(self, word: str) -> str | None:
        """The vocabulary term to read ``word`` as, or None when it is known or nothing is close."""
        w = word.lower()
        if len(w) < 5 or not w.isalpha() or self.known(w):
            return None
        near: set[str] = set()
        for key in _deletes(w) | {w}:
            near.update(t for t in self._by_delete.get(key, ()) if _one_edit(w, t))
        near.update(w[:i] for i in range(len(w) - 2, len(w)) if i >= 4)
        scored = [(self.frequency(t), t) for t in sorted(near)]
        scored = [x for x in scored if x[0] > 0]
        return max(scored, key=lambda x: x[0])[1] if scored else None

    def correct(self, text: str) -> str:
        """``text`` with each unknown word followed by its suggestion."""

        def fix(m: re.Match) -> str:
            guess = self.suggest(m.group(0))
            return f"{m.group(0)} {guess}" if guess else m.group(0)

        return _WORD.sub(fix, text)
