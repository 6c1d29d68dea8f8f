"""Notes: the specific statements of how a project works, kept as said ("Access tokens live 15 minutes").

    note_drafts("Failed jobs go to `kiln.jobs.dlq` after 5 attempts. Let me check the logs.", name="kiln")
    # -> [Draft("project_fact", "In kiln: Failed jobs go to `kiln.jobs.dlq` after 5 attempts.", ...)]

Conversation carries details no rule names in advance: token lifetimes, where an endpoint lives, what a
queue is called, why a check failed and what fixed it. A note is a declarative sentence from a reply or a
prompt that reads as a statement: not a question, not a hedge ("maybe", "we could"), not the assistant
narrating its next step ("Let me check…", "I'll run…"), not the user's request. At most four per turn, those
naming the most specific things first (a backticked name, a path, a dotted or snake_case identifier, an
environment variable, a number with a unit, a name or figure inside the sentence); what a note names also
sets its salience. Plain statements stay notes too: on the coding benchmark, keeping only sentences that name
something lost 2 points of search hit@1 (docs/benchmarks.md). A person's line in a relayed conversation
("Caroline: …") is read more widely, since chat states its facts in every verb ("I'm working on", "it helps
me unwind", "I got the chance to"): any sentence of four content words or more that is not a reaction, a
greeting or a wish ("Thanks, Mel!", "That's awesome!", "Hope you're ok!"). So is a user's own sentence
about themselves ("I've been vegetarian for three years", "I just got back from Lisbon with my sister"), a
heading before it ("Update on the running: …") left out, unless it is what they want, plan or wonder.
No model, no API.
"""

from __future__ import annotations

import re

from transcripts.conversation import Draft, content_words, keywords_of, sentences, speaker_of, subject_of

MAX_PER_TURN = 4
MIN_CHARS, MAX_CHARS = 30, 260

_SPECIFIC = re.compile(
    r"`[^`\n]{2,80}`"  # a backticked name or command
    r"|(?<![\w/])/[\w.-]+/[\w./{}:-]*"  # a URL path or absolute path: /api/v1/webhooks/
    r"|\b[\w-]+/[\w.-]+\.\w{1,5}\b"  # a relative file path: src/app.py
    r"|\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b"  # snake_case
    r"|\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b"  # AN_ENV_VAR
    r"|\b[a-z]+(?:\.[a-z_]+){2,}\b"  # dotted.names.like.this
    r"|\b[a-z]+[A-Z]\w*\b|\b[A-Z][a-z]+[A-Z]\w*\b"  # camelCase, PascalCase
    r"|\b\d+(?:\.\d+)?\s?(?i:ms|s|sec|seconds?|minutes?|mins?|hours?|h|days?|weeks?|months?|years?|kb|mb|gb|"
    r"tb|px|megapixels?|mp|%|percent|rps|req/s|attempts?|retries|times|workers?|replicas?|cents?|usd|eur)\b",
)
# A name or a figure said in passing: a capitalised word inside the sentence ("hosted on Netlify", "a dog
# named Scout"), or a word holding a digit ("Go 1.22", "k3s", "512Mi", "a 5K run").
_NAMED = re.compile(r"(?<=[\w,;:)'\"] )(?!I\b|I'[a-z]+\b)[A-Z][\w.+#-]*|\b[\w.+#-]*\d[\w.+#-]*")


# A name said (`names`) inside a sentence: capitalised words after a word or a comma ("my dog Scout", "back from
# Sweden", "read Harry Potter"); not a clause's first word, not "I", not the word after a label ("Caroline: Hey").
_NAME = re.compile(r"(?<=[\w,;)'\"] )(?!I\b|I['’])[A-Z][\w'’-]+(?: [A-Z][\w'’-]+)*")
# Capitalised, but a day names no thing.
_CALENDAR = frozenset(
    """monday tuesday wednesday thursday friday saturday sunday january february march april may june july
    august september october november december""".split()  # noqa: SIM905
)


def names(text: str) -> list[str]:
    """The names said inside `text`'s sentences (`_NAME`), a possessive's "'s" dropped."""
    found = (re.sub(r"['’]s$", "", m.group(0)) for m in _NAME.finditer(text))
    return [n for n in found if n.lower() not in _CALENDAR]


def specifics(sentence: str) -> int:
    """How many specific things the sentence names: identifiers, paths, figures with units, names."""
    return len(_SPECIFIC.findall(sentence)) + len(_NAMED.findall(_SPECIFIC.sub(" ", sentence)))


_NARRATION = re.compile(
    r"^(?:let me|let's|i'll|i will|i'm going to|i am going to|now i|next,? i|first,? i|i need to|i should|"
    r"i'd|i would|i can|i could|checking|looking|running|reading|searching|trying|let us|here's|here is|"
    r"here are|ok|okay|sure|great|done\.?$|got it|thanks|perfect|good|yes|no,|now let|i see|i think|"
    r"i found|i've|i have|we can|we could|you can|you could|would you|should i|shall i|do you|can you|"
    r"could you)\b",
    re.I,
)
_HEDGE = re.compile(
    r"\b(?:maybe|might|perhaps|probably|possibly|not sure|i think|i guess|i believe|seems?|appears?|"
    r"could be|would be|should we|what if|if you want|alternatively|option|options|either|whether)\b",
    re.I,
)
_STATEMENT = re.compile(
    r"\b(?:is|are|was|were|has|have|lives?|goes|go|runs?|uses?|stores?|sends?|keeps?|expires?|lasts?|valid|"
    r"handled?|retries|retried|fails?|failed|means|returns?|reads?|writes?|calls?|points?|holds?|gets?|"
    r"caps?|capped|limits?|limited|requires?|needs?|signs?|verif(?:y|ies|ied)|marks?|moved?|lands?|"
    r"because|since|so that|fixed|caused|came from|comes from|defined|configured|set to|defaults? to)\b",
    re.I,
)
# A request, not a statement: the user's imperatives are decisions, preferences or the session's ask.
_IMPERATIVE = re.compile(
    r"^(?:please |pls |no,? |also,? |and |now |then |ok,? |okay,? )*(?:use|add|make|run|fix|don't|do not|do|"
    r"keep|switch|change|remove|write|create|update|implement|put|move|try|check|set|let's|lets|go|stop|"
    r"start|rename|delete|drop|bump|upgrade|replace|refactor|split|merge|commit|push|open|install|build|"
    r"deploy|test|prepare|ship|avoid|never|always|remember|note|think|look|read|review|help|explain|show|"
    r"tell|give|can|could|would|should|will|i said|i want|i'd like|we need)\b",
    re.I,
)
# A reaction to what the other person said, not something said about oneself or the world: chat's thanks,
# praise and wishes ("Thanks, Mel!", "That's awesome!", "Sounds fun", "Congrats on the new job").
_REACTION = re.compile(
    r"^(?:thanks?|thank you|thx|congrat\w*|sounds?|looks?|seems?|glad|so glad|happy for|proud of|good luck|"
    r"take care|see you|bye|you too|me too|same|no worries|no problem|definitely|absolutely|totally|exactly|"
    r"sorry|hope|hoping|wishing|wish you|i'd love to|can't wait|i can't wait|"
    r"agreed|of course|sure|awesome|amazing|great|cool|nice|lovely|wonderful|fantastic|incredible|beautiful|"
    r"love (?:it|that|this|them)|i love (?:that|this|it)|what a|how (?:cool|nice|great|fun|sweet|lovely)|"
    r"(?:that|this|it)(?:'s| is| was| sounds| looks)(?: so| really| just| such)? (?:a |an )?(?:awesome|"
    r"amazing|great|cool|nice|lovely|wonderful|fantastic|incredible|beautiful|sweet|fun|exciting|"
    r"impressive|inspiring|tough|hard|rough|huge|brave|stunning|adorable|cute|good|special|so))\b",
    re.I,
)
CHAT_WORDS = 4  # content words a chat line's sentence needs to say something ("I'm fine" does not)
# A user's sentence about themselves or their own world: read as a chat line is, in any verb ("I've been
# vegetarian for years", "I just got back from Lisbon", "My laptop died so I bought a ThinkPad").
_FIRST_PERSON = re.compile(r"^(?:I|I['’](?:m|ve)|I was|I had|My|We|We['’](?:re|ve)|Our)\b")
# ...but not what they ask for, plan, hope or wonder: a request is the session's ask or a decision.
_WISH = re.compile(
    r"^(?:i|we)(?:['’](?:d|ll|m going to|m trying to|m looking for|m planning|m hoping|m thinking)"
    r"| would| will| am going to| want| need| wonder| was wondering| hope| wish| plan| intend| expect"
    r"| think| guess| believe| feel like| doubt| can| could| should| must| have to| don['’]t know"
    r"| do not know| have a question)\b",
    re.I,
)
_LEAD_FILLER = re.compile(
    r"^(?:so|also|and|but|note|fyi|btw|ok|okay|right|yes|yep|basically|in short)\b[\s,:;-]*"
    # chat's, set off by a comma, perhaps with the name of whom it greets ("Wow Caroline, …", "Hey Jon! …")
    r"|^(?:yeah|wow|oh|ohh|hey|hi|hello|well|haha|lol|aw+|hmm+|ah|omg|gosh)(?:,? [A-Z][a-z]+)?[,!.]+\s*",
    re.I,
)
# A list's first number, split off with the sentence before it ("Here are five dinners: 1."): that sentence
# introduces the list (it ends in a colon), and the number is the next one's.
_ENUMERATOR = re.compile(r"(?<=:)\s+\d{1,2}[.)]$")
# A heading a prompt's sentence may open with ("Update on the running: I switched…"); not a speaker's label.
_HEADING = re.compile(r"^[A-Z][\w'’-]*(?: [\w'’-]+){0,3}: (?=[A-Z])")


def note_drafts(text: str, *, name: str, by_user: bool = False, speaker: str | None = None) -> list[Draft]:
    """The statements in one prompt or reply, those naming most first, at most MAX_PER_TURN. A relayed line's
    `speaker` ("Caroline" of "Caroline: …") is read off and opens each of its notes: who said it is part of
    what was said, in every sentence of the line and not only its first."""
    if speaker and text.startswith(f"{speaker}:"):
        text = text[len(speaker) + 1 :].lstrip()
    found: list[tuple[int, str]] = []
    for s in sentences(text, limit=60):
        s = _ENUMERATOR.sub("", _LEAD_FILLER.sub("", s)).strip()
        if (
            not (MIN_CHARS <= len(s) <= MAX_CHARS)
            or s.endswith((":", "?"))
            or s.startswith(("|", "+", "-", "#"))
        ):
            continue
        if by_user and not speaker and speaker_of(s) is None:  # "Joe: …" is a label: who said it stays
            s = _HEADING.sub("", s)
        if speaker:  # a person's chat line: what they said of themselves and their world, in any verb
            if _chat_aside(s):
                continue
        elif by_user and _FIRST_PERSON.match(s):
            # a user's sentence about themselves, read as a chat line (or a statement, or naming a thing:
            # "We're dropping Prisma for Drizzle"); not what they wish, plan or ask for
            if _WISH.match(s) or _REACTION.match(s) or _HEDGE.search(s):
                continue
            if len(content_words(s)) < CHAT_WORDS and not (_stated(s) or _NAMED.search(s[1:])):
                continue
        elif not _stated(s):
            continue
        if by_user and _IMPERATIVE.match(s):
            continue
        found.append((specifics(s), s))
    found.sort(key=lambda x: (-x[0], -len(x[1].split())))
    salience = 0.3 if by_user else 0.25
    return [note(said_by(s, speaker), name, min(0.5, salience + 0.05 * n)) for n, s in found[:MAX_PER_TURN]]


def _stated(sentence: str) -> bool:
    """A sentence that reads as a statement of how things are: not narration, not a hedge, with a verb of
    state ("is", "lives", "runs", "expires", "because")."""
    return not (_NARRATION.match(sentence) or _HEDGE.search(sentence)) and bool(_STATEMENT.search(sentence))


def _chat_aside(sentence: str) -> bool:
    """A chat sentence that states nothing to remember: a reaction, a hedge, or too few words."""
    return (
        bool(_REACTION.match(sentence) or _HEDGE.search(sentence))
        or len(content_words(sentence)) < CHAT_WORDS
    )


def note(sentence: str, name: str, salience: float) -> Draft:
    """A sentence as the project's note: capitalised, ended, keyed by its subject words."""
    first = sentence.split(" ", 1)[0]
    if first.isalpha() and first.islower():  # not `tasklane-api`
        sentence = sentence[:1].upper() + sentence[1:]
    sentence = sentence if sentence.endswith((".", "!")) else sentence + "."
    return Draft(
        "project_fact",
        f"In {name}: {sentence}",
        f"note-{subject_of(sentence)}",
        salience,
        keywords=keywords_of(sentence, limit=8),
        attrs={"kind": "note"},
    )


def said_note(draft: Draft, name: str, speaker: str | None = None) -> Draft:
    """A preference or decision read from a relayed conversation, as what it is: a note of what was said."""
    return note(said_by(draft.attrs.get("said") or draft.text, speaker), name, 0.3)


def said_by(sentence: str, speaker: str | None) -> str:
    """The sentence opened by its speaker's label, once."""
    if not speaker or sentence.startswith(f"{speaker}:"):
        return sentence
    return f"{speaker}: {sentence[:1].upper()}{sentence[1:]}"
