"""What a history's words are, read from its own text (no tagger, no word lists of nouns or verbs).

    roles = WordRoles.read(memory_texts)
    roles.rank("Pie")       # NAME: capitalised inside sentences more often than not, an acronym or code
    roles.rank("recipe")    # NOUN: in phrases like "my favorite recipe" more often than after "I" or "to"
    roles.rank("pydantic")  # WORD: nothing says what it is
    roles.rank("heard")     # ACTION: after "I", "it" or "to" at least as often, an adverb, an -ing form
                            #   never used as a noun, a function word ("anything", "yeah"), or a word
                            #   only ever seen capitalised first in its sentence ("Noted", "Keeps")
    roles.rank("1.5s")      # NUMBER
    name_phrase("Pie", "My favorite recipe is Chicken Pot Pie.")  # "Chicken Pot Pie"

A training question about a memory should name what the memory is about. Keywords come in text order, so
the first one that tells a conversational memory apart is often a verb ("What do we know about found?");
real questions name a thing or a person ("What is Melanie's favourite recipe?"). English marks its nouns by
position, in the phrase a determiner or a possessive opens ("a great camping setup"), and its verbs after a
subject pronoun or "to"; a capital letter inside a sentence marks a name. Counting those positions over the
history's own sentences tells enough of them apart to keep a question off a verb.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

NAME, NOUN, WORD, ACTION, NUMBER = 0, 1, 2, 3, 4  # what a keyword is (`WordRoles.rank`)

_CLAUSES = re.compile(r"[.!?;:,()\[\]{}\"“”—–]+\s|[.!?;:\"“”]+$|\n|\s[-—–]+\s")
_TOKEN = re.compile(r"[A-Za-z0-9][\w'’+#./-]*[\w+#]|[A-Za-z0-9]")
_DETERMINERS = frozenset(
    "a an the my your our his her their its this these those some any every each another no".split()  # noqa: SIM905
)
_SUBJECTS = frozenset("i we you he she they it i've we've you've they've i'd we'd you'd".split())  # noqa: SIM905
_BEFORE_VERB = frozenset("to will would can could should must might did didn't don't never".split())  # noqa: SIM905
_ADVERBS = frozenset("just also really always still recently finally actually even already".split())  # noqa: SIM905
# Words that end a noun phrase: function words, pronouns and the commonest verbs (a small closed class).
_PHRASE_END = frozenset(
    """a an the my your our his her their its this these those some any every each another no and or but
    if then than so as at by for from in into of off on onto out over to up with about after before
    between during through under until upon without is are was were be been being am has have had do does
    did will would can could should must might may shall i we you he she they it me us him them who which
    that what when where why how not""".split()  # noqa: SIM905
)
# Function words a keyword list may still hold: never what a question is about (a closed class, not nouns).
_FUNCTION = (
    _DETERMINERS
    | _SUBJECTS
    | _BEFORE_VERB
    | _ADVERBS
    | _PHRASE_END
    | frozenset(
        """anything something nothing everything anyone someone everyone nobody gonna wanna gotta yeah yes yep
    plus quite rather pretty lot lots much many more most less least else ever too very well though
    although however anyway maybe perhaps""".split()  # noqa: SIM905
    )
)
_CODE = re.compile(r"[A-Za-z].*[_./#+]|[a-z][A-Z]|[A-Za-z]\d|^-")


@dataclass
class WordRoles:
    """Per lowercased word: how often the history uses it as a name, a noun head, a verb, or in lower case."""

    names: Counter[str] = field(default_factory=Counter)
    first: Counter[str] = field(default_factory=Counter)  # capitalised as its clause's first word
    lower: Counter[str] = field(default_factory=Counter)
    nouns: Counter[str] = field(default_factory=Counter)
    verbs: Counter[str] = field(default_factory=Counter)

    @classmethod
    def read(cls, texts: Iterable[str]) -> WordRoles:
        roles = cls()
        for text in texts:
            for clause in _CLAUSES.split(text):
                roles._clause(_TOKEN.findall(clause))
        return roles

    def _clause(self, tokens: list[str]) -> None:
        for i, token in enumerate(tokens):
            low = token.lower().replace("’", "'")
            if token[0].isupper():
                # A clause's first word is capitalised whatever it is; "I" and "I'm" are pronouns.
                if i == 0:
                    self.first[low] += 1
                elif len(token) > 1 and not low.startswith("i'"):
                    self.names[low] += 1
            else:
                self.lower[low] += 1
            if low in _DETERMINERS:
                # the phrase a determiner opens: its noun and what modifies it ("the reconcile command")
                for nxt in tokens[i + 1 : i + 4]:
                    if nxt.lower() in _PHRASE_END:
                        break
                    self.nouns[nxt.lower()] += 1
            elif low in _SUBJECTS or low in _BEFORE_VERB:
                rest = [t for t in tokens[i + 1 : i + 3] if t.lower() not in _ADVERBS]
                if rest and rest[0].islower() and rest[0] not in _DETERMINERS:
                    self.verbs[rest[0]] += 1

    def rank(self, word: str) -> int:
        """NAME, NOUN, WORD, ACTION or NUMBER: what the word is, as far as the history shows."""
        if not word or word[0].isdigit():
            return NUMBER
        if _CODE.search(word) or (len(word) >= 2 and word.isupper()):
            return NAME
        low = word.lower()
        if low in _FUNCTION:
            return ACTION
        if self.names[low] > self.lower[low]:
            return NAME
        if (len(low) > 4 and low.endswith("ly")) or 0 < self.verbs[low] >= self.nouns[low]:
            return ACTION
        if low.endswith("ing") and not self.nouns[low]:
            return ACTION  # "connecting", "giving": a verb's form unless the history uses it as a noun
        if self.first[low] and not self.lower[low] and not self.names[low]:
            return ACTION  # only ever a sentence's first word: "Noted", "Keeps", "Take"
        return NOUN if self.nouns[low] else WORD


def name_phrase(word: str, text: str, longest: int = 4) -> str:
    """`word` with the capitalised words around it in `text` ("Pie" -> "Chicken Pot Pie"), at most
    `longest` words and never across punctuation; `word` itself where the text has no such run."""
    capital = r"[A-Z][\w'’-]*"
    found = re.search(
        rf"(?<![\w'’-])((?:{capital} )*){re.escape(word)}(?![\w'’-])((?: {capital})*)",
        text,
    )
    if not found:
        return word
    # a clause's capitalised first word ("My", "The") is not part of the name
    before = found.group(1).split()
    while before and before[0].lower() in _PHRASE_END:
        before = before[1:]
    after = found.group(2).split()
    words = [*before[-(longest - 1) :], word, *after][:longest] if longest > 1 else [word]
    return " ".join(words)
