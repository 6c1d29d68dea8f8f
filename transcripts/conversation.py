"""What the conversation says: preferences, decisions and corrections, by sentence-level rules.

The language half of memory extraction (`transcripts.source_code` is the code half, `transcripts.extraction` runs both
over a session and turns what they find into memories). Pure functions of text:

    prompt_drafts("No, use httpx instead of requests. Always run ruff.", name="api", after_assistant=True)
    # -> [Draft("correction", ...), Draft("decision", ... choice="httpx", replaces="requests"), Draft("preference", ...)]

Rules, not a model: each pattern is a phrase people use for that intent ("always…", "let's go with X for the
Y", "I said…"), anchored so that descriptions ("it always fails") and questions ("should we use X?") do not
count. Also the keyword and content-word helpers every category shares.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from transcripts.parse import Turn, clean_markup


@dataclass(slots=True)
class Draft:
    """A memory before it has sources: what was said, in which category, about which subject."""

    category: str  # preference | decision | correction
    text: str
    subject: str  # normalized; with the category and project it is the memory's key
    salience: float
    keywords: list[str] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)
    general: bool = False  # a cross-project preference
    turns: list[Turn] = field(default_factory=list)  # where it was seen; empty: the prompt being read


# ---------------------------------------------------------------------------------------------- text


_NOT_TYPED = ("Caveat:", "[Request interrupted", "This session is being continued", "API Error")


def clean_prompt(text: str) -> str:
    """A prompt as sentences worth reading: markup, slash-command lines and fenced blocks (pasted logs) gone."""
    text = clean_markup(text)
    if text.startswith(_NOT_TYPED):
        return ""
    text = re.sub(r"```.*?(?:```|$)", " ", text, flags=re.S)
    text = re.sub(r"^\s*/[\w:-]+\s*$", "", text, flags=re.M)
    return text.replace("[image]", "").replace("’", "'").strip()


def sentences(text: str, limit: int = 40) -> list[str]:
    out: list[str] = []
    for line in text.splitlines():
        for s in re.split(r"(?<=[.!?])\s+(?=\S)", line.strip(" \t-*>#")):
            s = s.strip()
            if 3 <= len(s) <= 300:  # longer is pasted material, not an instruction
                out.append(s)
                if len(out) >= limit:
                    return out
    return out


_STOP = frozenset(  # a word list reads better as text than as 200 quoted strings
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing don't down during each few for from further had has have having
    he her here hers him his how i if in into is it its itself just let let's me more most my no nor not now of off
    on once only or other our ours out over own please same she should so some such than that that's the their
    them then there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yes ok okay sure thanks want need make can't won't i'm it's
    we're you're still really maybe something thing things way like get got use using used go going one two new
    always never prefer dont instead said think know see look user asked decision preference correction project
    assistant after failed fixed editing edited written defines passed afterwards confirmed stated decided
    replacing layout""".split()  # noqa: SIM905
)
_IDENT = re.compile(
    r"`([^`\n]{2,60})`"
    r"|(?<![\w/.-])((?:[\w.-]+/)+[\w.-]+|\w+(?:\.\w+)+|[a-z][a-z0-9]*(?:_[a-z0-9]+)+|_\w+"
    r"|[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+|[a-z]+(?:[A-Z][a-z0-9]*)+|--?[a-z][\w-]+|[A-Z]{2,}[a-z]*)"
)
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9+#-]{3,}")


def keywords_of(text: str, given: Iterable[str] = (), limit: int = 12) -> list[str]:
    """Identifiers first (the extractor's own, then code-shaped tokens of the text), then salient words.

    Every keyword occurs in the text: evaluation scores a generated memory by the gold one's keywords.
    """
    out: dict[str, str] = {}
    low_text = text.lower()
    given = [w for w in given if w and w.lower() in low_text]
    for word in [*given, *(m.group(1) or m.group(2) for m in _IDENT.finditer(text)), *_WORD.findall(text)]:
        word = word.strip(" .,;:()[]'\"“”") if word else ""
        low = word.lower()
        if len(word) >= 2 and low not in _STOP and low not in out:
            out[low] = word
            if len(out) >= limit:
                break
    return list(out.values())


def content_words(text: str) -> frozenset[str]:
    """Lowercased content words with a plural `s` dropped: the unit of near-duplicate comparison."""
    words = re.findall(r"[a-z0-9_./-]+", text.lower().replace("'", ""))
    return frozenset(
        w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words if w.strip("./-") and w not in _STOP
    )


def subject_of(text: str, n: int = 8) -> str:
    """A wording-independent subject: the longest content words, sorted (so reordering keeps the key)."""
    words = sorted(content_words(text), key=lambda w: (-len(w), w))[:n]
    return "-".join(sorted(re.sub(r"[^a-z0-9]+", "", w) for w in words))[:90]


def _finish(sentence: str) -> str:
    return sentence if sentence.endswith((".", "!", "?")) else sentence + "."


# ---------------------------------------------------------------------------------------------- rules

_QUESTION = re.compile(
    r"^(?:why|how|what|when|where|which|who|is|are|does|did|was|were|can|could|would|do we|do you)\b"
)
_LEAD = r"(?:^|[,;:(]\s*|\b(?:please|pls|we|i|you|and|but|also|just|so|then|should|must|to|will|now|wait|ok|okay|let's)\s+)"
_DONT_LEAD = r"(?:^|[,;:(]\s*|\b(?:please|pls|we|and|but|also|just|so|then|now|wait|ok|okay|oh)\s+)"
_NOT_A_RULE = r"(?!\s+(?:know|think|understand|see|get|remember|care|mind|worry|have|need to worry)\b)"
_PREFERENCES = (  # (pattern on the lowercased sentence, base salience)
    (re.compile(_LEAD + r"(?:always|never)\b(?! mind)"), 0.75),
    (re.compile(_DONT_LEAD + r"(?:don't|do not|dont)\b" + _NOT_A_RULE), 0.55),
    (re.compile(r"\bi (?:don't|do not|never) (?:want|like)\b"), 0.6),
    (
        re.compile(
            r"\b(?:i|we)(?: really| strongly| generally)? prefer\b|^prefer\b|\bi(?:'d| would) rather\b"
        ),
        0.6,
    ),
    (re.compile(r"^(?:please )?(?:make sure|be sure|remember) (?:to|that|you)\b"), 0.5),
    (
        re.compile(
            r"^please (?:use|keep|run|write|stick|follow|avoid|add)\b|^(?:avoid|stick to|stick with)\b"
        ),
        0.5,
    ),
    (re.compile(r"\bwe (?:use|run|write|deploy|follow)\b.+\b(?:not|rather than|instead of)\b"), 0.6),
    (
        re.compile(
            r"^(?:always )?(?:ask|check with me|tell me|confirm with me|let me know) (?:me )?before\b"
        ),
        0.6,
    ),
    (
        re.compile(
            r"\b(?:shorter|short|concise|terse|brief) (?:replies|answers|responses)\b|\bno (?:recaps?|emojis?)\b"
        ),
        0.55,
    ),
    (re.compile(r"^(?:here )?we(?:'re| are)? (?:use|using|run|write|deploy with|follow)\b"), 0.45),
)
_GENERAL = re.compile(
    r"\b(?:(?:in |for |across )?(?:all|every|any|each) (?:of my |of our |one of my )?(?:projects?|repos?|"
    r"repositories|codebases?)|across (?:all )?projects|everywhere|globally|in general|all my (?:projects|repos)|"
    r"commit messages?|(?:answer|reply|respond|write|talk) (?:to me )?in (?:english|french|german|spanish|"
    r"japanese|chinese)|(?:your|the) (?:replies|answers|responses|summaries|recaps?|explanations)|"
    r"(?:shorter|short|longer|concise|terse) (?:replies|answers|responses)|no recaps?)\b"
)
# Leading words that carry no rule: "Also please never ..." is the rule "Never ...".
_FILLER_LEAD = re.compile(
    r"^(?:(?:also|and|oh|ok|okay|so|btw|by the way|fyi|reminder|one more thing|just so you know|again|"
    r"as always|as usual|remember|note|plus|and also|oh and|oh also)\b[\s,:;-]*)+",
    re.I,
)
_PLEASE = re.compile(r"^(?:please|pls|kindly)\s+", re.I)
# Said about the task at hand, not as a standing rule: "don't touch it for now", "so we don't forget".
_NOT_DURABLE = re.compile(
    r"\b(?:for now|right now|for today|this time|at the moment|just now|in this (?:pr|branch|commit|session|file)|"
    r"yet|until (?:we|i|you|it|the)|so (?:that )?(?:we|i|you) (?:don't|do not|won't)|"
    r"(?:don't|do not)\b[^.;]*\b(?:now|today)\b|"
    r"(?:don't|do not|never) \w+ (?:it|this|that|them|anything)(?: now| again| here)?[.!]?$)",
    re.I,
)


def clean_rule(sentence: str) -> str:
    """A stated rule without its lead-in filler, capitalised and ended: "Also please never X" -> "Never X."."""
    text = _PLEASE.sub("", _FILLER_LEAD.sub("", sentence.strip())).strip()
    text = text[:1].upper() + text[1:] if text else sentence
    return _finish(text)


def _preference(sentence: str, name: str) -> Draft | None:
    low = sentence.lower()
    if sentence.endswith("?") or _QUESTION.match(low):
        return None
    salience = next((s for rx, s in _PREFERENCES if rx.search(low)), None)
    if salience is None or _NOT_DURABLE.search(low):
        return None
    general = _GENERAL.search(low) is not None
    text = f"User preference ({'all projects' if general else name}): {clean_rule(sentence)}"
    return Draft(
        "preference",
        text,
        subject_of(sentence),
        salience + (0.1 if general else 0),
        [],
        {"said": sentence},
        general,
    )


# A choice: 1-4 words (or one quoted/backticked name), ending before the words that start the rest of a sentence.
_X = r"[`'\"*]*(?P<{g}>[\w@/.+#-]+(?:\s+[\w@/.+#-]+){{0,3}}?)[`'\"*]*"
_END = r"(?=\s+(?:for|in|as|because|since|instead|over|rather|and|with|from|on|so|but|then|now|here|across|too|to)\b|\s*[,.;:!?)]|\s*$)"
_DECISIONS = tuple(
    re.compile(p.format(x=_X.format(g="x"), y=_X.format(g="y")) + _END, re.I)
    for p in (
        r"\b(?:switch|migrate|port|move)(?: (?:the |our )?(?P<t>[\w-]+(?: [\w-]+)?))?(?: over)? from {y} to {x}",
        r"\b(?:switch|migrate|port)(?: (?:the |our )?(?P<t>[\w-]+(?: [\w-]+)?))?(?: over)? to {x}",
        r"\breplace {y} with {x}",
        r"\buse {x} (?P<alt>instead of|rather than|not) {y}",  # an option weighed, perhaps never used
        r"\blet'?s (?:use|go with|switch to|move to|pick|adopt|stick with|try) {x}",
        r"\b(?:we|i)(?:'ve| have)? (?:decided (?:to use|to go with|on)|chose|picked|went with|settled on|agreed on) {x}",
        r"(?:^|\b(?:we'll|i'll|we will|i will|ok,?|okay,?|then)\s+)go with {x}",
        r"\b(?:we|i)(?:'ll| will) use {x}",
    )
)
_DECIDED_TO = re.compile(
    r"\bwe(?:'ve| have)? (?:decided|agreed|chose) to (?!use\b|go with\b)(?P<v>[^.;!?]{3,100})", re.I
)
_TOPIC = re.compile(
    r"^\s*(?:for|as) (?:the |our |a |an |all |this )?(?P<t>[\w -]{2,40}?)(?=\s+(?:in|because|since|instead|so|but)\b|[,.;:!?]|$)",
    re.I,
)
_PRONOUNS = {"it", "that", "this", "them", "those", "one", "option", "yours", "your suggestion", "your recommendation",
             "the first", "the second", "the first one", "the second one", "that one", "this one"}  # fmt: skip
_NOT_CHOICES = {"the", "a", "an", "something", "anything", "everything", "whatever", "what", "which", "the same"}  # fmt: skip
_RECOMMEND = re.compile(
    r"(?:recommend(?:ation)?:?|i'd (?:go with|pick|use))\s*\**\s*`?([\w@/.+#-]+(?: [\w@/.+#-]+){0,2}?)`?\**(?=[\s.,:;!*]|$)",
    re.I,
)


_TRAILING = re.compile(
    r"(?:\s+(?:again|too|instead|now|then|anyway|please|as well|for now|from now on))+$", re.I
)


def _decision(sentence: str, name: str, prev_reply: str) -> Draft | None:
    if sentence.endswith("?") or _QUESTION.match(sentence.lower()):
        return None
    for rx in _DECISIONS:
        m = rx.search(sentence)
        if m:
            break
    else:
        m2 = _DECIDED_TO.search(sentence)
        if not m2:
            return None
        said = _finish(sentence)
        v = m2.group("v").strip()
        return Draft(
            "decision",
            f"Decision for {name}: {said}",
            subject_of(v, 6),
            0.6,
            [],
            {"choice": subject_of(v, 6), "said": said},
        )
    groups = m.groupdict()
    choice = _clean_choice(groups.get("x") or "")
    if choice.lower() in _PRONOUNS:  # "let's go with that": the assistant's recommendation is the choice
        rec = _RECOMMEND.search(prev_reply)
        choice = _clean_choice(rec.group(1)) if rec else ""
    if not choice or choice.lower() in _NOT_CHOICES or choice.lower() in _PRONOUNS:
        return None
    replaced = _clean_choice(groups.get("y") or "")
    topic = (groups.get("t") or "").strip()
    tm = _TOPIC.match(sentence[m.end() :])
    topic = _TRAILING.sub("", tm.group("t").strip() if tm and not topic else topic)
    topic = "" if topic.lower() in ("it", "that", "this", "everything") else topic
    text = (
        f"Decision for {name}: {choice}"
        + (f" for the {topic}" if topic else "")
        + (f", {'instead of' if groups.get('alt') else 'replacing'} {replaced}" if replaced else "")
    )
    text += f". The user said: “{_finish(sentence)}”"
    attrs = {"choice": _norm(choice), "topic": _norm(topic), "replaces": _norm(replaced), "said": sentence}
    subject = (f"{_norm(topic)}=" if topic else "") + _norm(choice)
    return Draft(
        "decision", text, subject, 0.65, [choice, replaced, topic], {k: v for k, v in attrs.items() if v}
    )


def _clean_choice(x: str) -> str:
    x = re.sub(r"^(?:the|a|an|our)\s+", "", _TRAILING.sub("", x.strip(" `'\"*.,")), flags=re.I)
    return x if len(x) <= 40 and re.search(r"[A-Za-z]", x) else ""


def _norm(x: str) -> str:
    """`SQLAlchemy 2.0` and `sqlalchemy` are one option: lowercase, no versions, dashes."""
    x = re.sub(r"\s+v?\d+(?:\.\d+)*$", "", x.lower().strip())
    return re.sub(r"[^a-z0-9+#]+", "-", x).strip("-")


_FILLER = re.compile(r"^(?:hmm+|hm+|um+|uh+|ugh|oh|ah|well),?\s+")
_CORRECTION = re.compile(
    r"^(?:(?:no|nope|nah|wrong|incorrect)\b(?![\s,]+(?:problem|worries|need|rush|thanks|way))"
    r"|(?:that'?s|this is|it'?s|that is) (?:wrong|not (?:right|correct|what i)|incorrect|broken|the wrong)"
    r"|not (?!sure|yet|now|really|bad|quite)[^,.;]{1,40}, (?:but |use |it'?s )?\S"
    r"|i (?:said|told you|asked (?:you )?(?:to|for)|meant)\b"
    r"|(?:stop|wait(?!,? never ?mind)|hold on|undo|revert|don't do that|instead|actually(?!,? (?:also|can you also)))\b"
    r"|you (?:broke|forgot|missed|ignored|didn't|did not|shouldn't|should not)\b)"
    r"|\b(?:didn'?t|doesn'?t|did not|does not) work\b|\bstill (?:fails|failing|broken|the same|not working)\b"
    r"|\bsame error\b|\bthat'?s not what i\b"
)


def _correction(clean: str, sents: list[str], name: str, prev_reply: str, actions: list[str]) -> Draft | None:
    low = _FILLER.sub("", clean.lower())
    if not sents or not _CORRECTION.search(low[:300]):
        return None
    said = " ".join(sents[:2])
    if actions:
        did = " and ".join(actions[-2:])
    else:
        first = re.split(r"(?<=[.!?])\s", " ".join(prev_reply.split()), maxsplit=1)[0]
        did = f"said “{first[:100]}”" if first else "replied"
    text = f"Correction in {name}: after the assistant {did}, the user said: “{said}”"
    salience = 0.7 if re.search(r"\bi (?:said|told you)\b", low) else 0.6  # being told twice: it matters
    # What was corrected is part of the subject: "that didn't work" after two different edits is two memories.
    return Draft(
        "correction", text, subject_of(f"{said} {did}"), salience, [], {"said": said, "corrected": did}
    )


# ---------------------------------------------------------------------------------------------- entry points

_AGREE = re.compile(
    r"^(?:yes|yeah|yep|yup|ok|okay|sure|sounds good|go ahead|do it|agreed|perfect|great|lgtm|let'?s do (?:it|that))\b"
)
_REPLY_DECISION = re.compile(r"\b(?:i'll|i will|we'll|we will) (?:use|go with|switch to) ", re.I)


def prompt_drafts(
    text: str,
    *,
    name: str,
    after_assistant: bool = False,
    prev_reply: str = "",
    actions: list[str] | None = None,
) -> list[Draft]:
    """Preferences, decisions and (right after an assistant turn) a correction, from one user prompt."""
    clean = clean_prompt(text)
    if not clean:
        return []
    sents = sentences(clean)
    facts: list[Draft] = []
    correction = _correction(clean, sents, name, prev_reply, actions or []) if after_assistant else None
    if correction:
        facts.append(correction)
    for i, s in enumerate(sents):
        fact = _decision(s, name, prev_reply)
        if fact is None and not (correction and i == 0):  # the correcting sentence is the correction
            fact = _preference(s, name)
        if fact:
            facts.append(fact)
    return facts


# A relayed conversation's line: "Caroline: I went to a support group yesterday." (one or two capitalised words)
_SPEAKER = re.compile(r"([A-Z][\w'’.-]*(?: [A-Z][\w'’.-]*)?): \S")


def speaker_of(text: str) -> str | None:
    """The speaker's label a relayed line opens with ("Caroline" of "Caroline: I went…"), else None."""
    m = _SPEAKER.match(text.lstrip())
    return m.group(1) if m else None


_CAPITALISED = re.compile(r"\b[A-Z][a-z][\w'’-]*")
_POSSESSIVE = re.compile(r"['’]s?$")


def capitalised_words(text: str) -> list[str]:
    """The words of `text` written as names ("Melanie", "Caroline's" -> "Caroline"), each once, in order:
    what a question may name a conversation's speakers by."""
    return list(dict.fromkeys(_POSSESSIVE.sub("", m.group(0)) for m in _CAPITALISED.finditer(text)))


_IN_PROJECT = re.compile(r"^In [^:\n]{1,80}: ")  # a note's "In conv-26: " before its speaker's label


def speaker_and_words(text: str) -> tuple[str | None, str]:
    """Who said a stored line, a chunk's or a note's ("In conv-26: Caroline: I went…" -> "Caroline"), and
    its words without the labels; (None, the text) when no speaker opens it."""
    text = _IN_PROJECT.sub("", text.lstrip(), count=1)
    speaker = speaker_of(text)
    return speaker, text[len(speaker) + 1 :].lstrip() if speaker else text


def relayed_dialogue(prompts: list[str]) -> bool:
    """Whether a session's prompts relay a conversation between named people ("Caroline: …", "Melanie: …"):
    two or more speakers, each opening at least two prompts, together at least half of them. Their "don't
    give up!" and "I chose this color" are said to each other, not the user's instructions to an agent."""
    labels: dict[str, int] = {}
    for text in prompts:
        speaker = speaker_of(text)
        if speaker:
            labels[speaker] = labels.get(speaker, 0) + 1
    speakers = [n for n in labels.values() if n >= 2]
    return len(speakers) >= 2 and 2 * sum(speakers) >= len(prompts)


def reply_drafts(text: str, *, name: str, prev_prompt: str = "") -> list[Draft]:
    """Decisions the assistant states: "we decided to…" always; "I'll use X instead of Y" once the user agreed."""
    agreed = _AGREE.match(clean_prompt(prev_prompt).lower()) is not None
    facts = []
    for s in sentences(clean_prompt(text), limit=60):
        if _DECIDED_TO.search(s) or (agreed and _REPLY_DECISION.search(s)):
            fact = _decision(s, name, "")
            if fact:
                fact.text = fact.text.replace("The user said:", "The assistant confirmed:").replace(
                    f"Decision for {name}:", f"Decision for {name} (stated by the assistant):", 1
                )
                facts.append(fact)
    return facts
