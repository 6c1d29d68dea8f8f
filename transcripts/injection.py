"""Instruction-like text addressed to an agent: found, and neutralised before it reaches one.

    find_spans(text)           # [Span(start, end, reason), ...]
    neutralise(text)           # the text with each span replaced by a visible marker
    is_instruction_like(text)  # any span at all

Anything an agent ever read (a web page, an issue comment, a dependency's README) can carry a prompt
injection, and a memory layer that hands it back in a later session turns it into standing context (memory
poisoning: MINJA, AgentPoison). The signals here are what such text has and ordinary coding text does not:
an override of the agent's instructions ("ignore previous instructions"), an address to an AI ("AI agents:",
"if you are an LLM"), a chat role marker ("<|im_start|>", "Human:"), a request to keep something from the
user, or to send keys and secrets somewhere, and hidden carriers (HTML comments, invisible Unicode) holding
any of these. Plain imperatives ("run pytest", "curl ... | sh" in an install guide) are left alone: they are
how a project documents itself, and only an address to an agent makes them an injection.

A span is the sentence that holds the signal; an override, new orders, a secrecy demand or a role marker
take their whole line (the demand sits beside them); an address to an agent takes the rest of its paragraph
(the instruction follows it); a flagged HTML comment goes whole. Lines and sentences stop at block markup, as
pages are often one line. Pure functions, standard library only.

This is a second line of defence, not a proof: it catches the known shapes (bench/injection.py measures it,
including on held-out sets written after tuning, where it catches far less). What keeps third-party text out
of an agent's standing context is its provenance (`transcripts.provenance`), not this detector.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MARKER = "[instruction-like text removed]"
PARAGRAPH_CHARS = 800  # how far an address to an agent reaches when its paragraph does not end sooner
SENTENCE_CHARS = 400  # how far back a sentence is looked for

_AI = (
    r"(?:ai|a\.i\.|llm|large\s+language|language|coding|autonomous|automated|browsing|web)\s*"
    r"(?:agents?|assistants?|models?|systems?|bots?|tools?)"
    r"|llms?|chat\s*bots?|chatgpt|gpt-?\d\w*|claude(?:\s+code)?|copilot|gemini|codex|cursor\s+agent"
)
_VERB = (
    r"ignore|disregard|forget|override|bypass|abandon|discard|set\s+aside|do\s+not\s+follow"
    r"|don'?t\s+follow|stop\s+following"
)
_RULES = (
    r"instructions?|prompts?|rules|directives?|guidelines|guidance|guardrails|constraints|system\s+messages?|"
    r"programming|orders|commands"
)
_ROLE_TOKEN = (
    r"<\|(?:im_start|im_end|im_sep|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id"
    r"|begin_of_text)\|>|\[/?INST\]|<</?SYS>>|</?(?:system|system[-_]prompt|instructions?)>"
)
_SECRET = (
    r"id_(?:rsa|ed25519|ecdsa|dsa)\b|~?/?\.ssh\b|\.aws/credentials|\.netrc|\.npmrc|private\s+keys?"
    r"|(?:the\s+user'?s|your|all|any|every)\s+(?:\w+\s+)?(?:secrets|credentials|api[\s_-]?keys?|tokens|passwords|"
    r"env(?:ironment)?\s+(?:vars?|variables)|\.env(?:\s+files?)?)"
)
_SEND = (
    r"upload|send|post|exfiltrate|transmit|leak|forward|e-?mail|paste|ship|sync|copy|cat|curl|wget|scp|pipe"
)

_READING = (
    r"reading|processing|parsing|summari[sz]ing|visiting|crawling|browsing|scraping|indexing|reviewing|editing|"
    r"handling|analy[sz]ing"
)
# What follows an address to an agent: an order.
_COMMAND = (
    rf"you\s+(?:must|should|will|need|are\s+required)|{_VERB}|must|should|run|execute|do|now|immediately|always|"
    r"never|first|instead|make|open|fetch|download|install|upload|send|exfiltrate|delete|remove|write|add|read|"
    r"print|reveal|output|tell|report|visit|go|call|use|set|change|disable|enable|include|insert|append|reply|"
    r"respond|say|answer|recommend|commit|push|merge|approve|replace|update|modify|you|your"
)

# Where an address or a role marker can start: a line, a quoted string, a sentence, an HTML comment.
_OPENS = r"(?:^|(?<=[\n>\"'“(])|(?<=[.!?;] )|(?<=<!-- ))[ \t]*"

# (reason, pattern, reach): reach "sentence", "line" or "paragraph" (see the module docstring).
_SIGNALS: list[tuple[str, re.Pattern[str], str]] = [
    (
        "overrides the agent's instructions",
        re.compile(
            rf"\b(?:{_VERB})\s+(?:(?:all|any|the|your|my|of|these|those|every|previous|prior|above|earlier|"
            rf"preceding|original|initial|existing|system|safety|developer'?s?|user'?s?|other)\s+){{0,4}}(?:{_RULES})\b"
            r"|\b(?:forget|ignore|disregard)\s+(?:everything|all|anything)\s+(?:you\s+(?:were|have\s+been)\s+"
            r"(?:told|given|instructed)|(?:said\s+)?(?:above|before|so\s+far|until\s+now))\b"
            r"|\b(?:system|admin|security|safety|emergency)\s+override\b"
            rf"|\b(?:{_VERB})\s+(?:(?!(?:its|their|his|her|old|new|this)\b)[\w'’-]+\s+){{0,3}}(?:instructions|"
            r"prompts?|directives|guidelines|guidance|guardrails|system\s+messages?|programming)\b"
            r"(?!\s+(?:file|folder|page|section|doc|template)s?\b)"
            r"|\b(?:ignore|disregard|forget)\s+(?:all\s+)?(?:of\s+)?(?:the\s+)?(?:above|previous|preceding|prior|"
            r"earlier)(?:\s+(?:text|context|messages?|conversation|content))?(?=\s*(?:[.,;:!]|and\b|then\b|"
            r"instead\b))"
            r"|\b(?:ignore|disregard|forget)\s+(?:all\s+)?(?:prior|previous|preceding|earlier|your)\s+"
            r"(?:context|messages|conversation)\b"
            r"|\bno\s+longer\s+(?:bound|restricted|constrained)\s+by\b",
            re.I,
        ),
        "line",
    ),
    (
        "gives the agent new instructions",
        re.compile(
            r"\b(?:new|updated|real|actual|true|revised|secret|hidden|additional|urgent|important)\s+"
            r"(?:system\s+)?(?:instructions?|directives?|orders|task|objective|goal|mission)\s*(?:for\s+\w+\s*)?:"
            r"|\byour\s+(?:new|real|actual|true|only|primary)\s+(?:task|goal|objective|purpose|instructions?|role)\b"
            r"|\bfrom\s+now\s+on,?\s+(?:you|the\s+(?:assistant|agent|ai))\b"
            r"|\byou\s+are\s+(?:now|no\s+longer)\s+(?:a|an|in|the|dan|free|unrestricted|jailbroken)\b"
            r"|\b(?:enter|enable|activate)\s+(?:developer|god|admin|unrestricted|jailbreak|dan)\s+mode\b"
            r"|\bpretend\s+(?:that\s+)?(?:you\s+are|to\s+be)\b",
            re.I,
        ),
        "line",
    ),
    (
        "addressed to an AI",
        re.compile(
            rf"(?:^|(?<=[\s(\[>*#\-–—\"'“]))(?:(?:note|message|attention|notice|warning|instructions?|important)"
            rf"\s+(?:to|for)\s+(?:all\s+|any\s+|the\s+)?(?:{_AI}|ai|a\.i\.)\b"
            rf"|(?:dear|hey|hi|hello|attention|calling)\s+(?:there,?\s+)?(?:all\s+|any\s+|the\s+)?(?:{_AI}|ai|a\.i\.)\b"
            rf"|(?:{_AI}|ai|agent|assistant|llm|model)\s+instructions?\s*:"
            rf"|(?:{_AI}|ai)\s+(?:detected|identified)\b"
            rf"|(?:{_AI}|ai)\s+(?:is|are)\s+(?:{_READING})\b"
            rf"|if\s+you\s+are\s+(?:an?\s+)?(?:{_AI}|ai|assistant|agent|bot|language\s+model|automated\s+\w+)\b"
            rf"|(?:to|for)\s+(?:any|the|all|every|an?)\s+(?:{_AI}|ai|a\.i\.|agents?|assistants?)\s*"
            rf"(?:[,:]|(?:that\s+|who\s+)?(?:{_READING}))"
            rf"|(?:all|any|every)\s+(?:{_AI}|agents?|assistants?)\s+(?:{_READING}|that\s+reads?|who\s+reads?|seeing)\b"
            rf"|(?:{_AI}|ai)[\w\s-]{{0,30}}?\b(?:that|which|who)\s+(?:reads?|process(?:es)?|sees?|parses?)\s+this\b"
            rf"|(?:{_AI})\s+(?:{_READING})\s+(?:this|these|the)\b)",
            re.I | re.M,
        ),
        "paragraph",
    ),
    (
        "addressed to an AI",
        re.compile(
            rf"(?:{_AI})\s*(?:[,:!]|—|-{{1,2}})\s*(?:please\s+)?(?:{_COMMAND})\b"
            rf"|(?:{_AI})\s+(?:must|should|shall|are\s+(?:required|instructed|expected|asked)\s+to|need\s+to|"
            rf"have\s+to|will\s+now)\b"
            rf"|(?:{_AI})\s+(?:{_READING})\s+(?:[\w'’-]+\s+){{0,3}}?(?:must|should|shall|need\s+to|are\s+required\s+to)\b"
            rf"|\b(?:your|any|every|all)\s+(?:ai|llm)s?\s+(?:must|should|shall|needs?\s+to|has\s+to|will\s+now)\b"
            rf"|{_OPENS}(?:{_AI})\s*:\s"  # "LLM: ...", "Coding agents: ..." where a line or sentence starts
            rf"|{_OPENS}(?:agents?|assistants?|bots?|models?)\s*:\s*(?:please\s+)?(?:{_COMMAND})\b",
            re.I | re.M,
        ),
        "paragraph",
    ),
    (
        "relays an instruction addressed to an AI",
        re.compile(
            r"\b(?:tell|tells|telling|told|instruct|instructs|instructing|instructed|ask|asks|asking|asked|wants?|"
            r"wanted|urges?|urging|directs?|directing|orders?|ordering)\s+(?:all\s+|any\s+|the\s+|other\s+)?"
            r"(?:ai|llm|coding|autonomous|automated)\s+(?:agents?|assistants?)\s+to\b",
            re.I,
        ),
        "sentence",
    ),
    (
        "keeps something from the user",
        re.compile(
            r"\b(?:do\s+not|don'?t|never|without)\s+(?:tell(?:ing)?|inform(?:ing)?|mention(?:ing)?|reveal(?:ing)?|"
            r"notify(?:ing)?|alert(?:ing)?|show(?:ing)?|warn(?:ing)?|let(?:ting)?|ask(?:ing)?\s+for\s+"
            r"(?:confirmation|permission|approval))\s+(?:(?:this|it|that|anything)\s+)?(?:to\s+|from\s+)?"
            r"(?:the\s+)?(?:user|human|developer|operator)s?\b(?:\s+know)?"
            r"|\b(?:hide|conceal|keep)\s+(?:this|it|these\s+\w+)\s+(?:secret\s+)?from\s+the\s+(?:user|human)\b"
            r"|\bthe\s+(?:user|human)\s+(?:must|should)\s+(?:not|never)\s+(?:know|see|find\s+out|be\s+told)\b",
            re.I,
        ),
        "line",
    ),
    (
        "sends keys or secrets away",
        re.compile(
            rf"\b(?:{_SEND})\b[^.!?\n]{{0,120}}?(?:{_SECRET})[^.!?\n]{{0,120}}?"
            r"(?:\bto\s+(?:https?://|[\w.-]+\.(?:com|net|org|io|xyz|ru|cn|site|example|dev|app)\b|"
            r"(?:this|the\s+following|my|our|an?\s+(?:external|remote))\s+(?:server|url|endpoint|address|webhook|"
            r"e-?mail|host|bucket))|https?://|@[\w.-]+\.\w+)"
            rf"|\b(?:upload|exfiltrate|leak|transmit)\b[^.!?\n]{{0,80}}?(?:{_SECRET})",
            re.I,
        ),
        "sentence",
    ),
    (
        "asks for the agent's system prompt",
        re.compile(
            r"\b(?:reveal|print|show|output|repeat|leak|dump|display|recite)\s+(?:me\s+)?(?:your\s+(?:full\s+|"
            r"entire\s+|hidden\s+|original\s+)?(?:system\s+prompt|initial\s+prompt|instructions|system\s+message)"
            r"|the\s+(?:instructions\s+above|hidden\s+instructions|initial\s+prompt))\b",
            re.I,
        ),
        "sentence",
    ),
    ("chat role marker", re.compile(_ROLE_TOKEN, re.I), "line"),
    (
        "chat role marker",
        re.compile(
            r"^[ \t>#*\[]*human[\]*]*\s*:[ \t]*\S"
            r"|^[ \t>#*\[]*assistant[\]*]*\s*:[ \t]*(?=[^\n]*\b(?:you|your|i\s+will|i'll|i\s+have|sure|certainly|"
            r"okay|ok|done|understood|of\s+course)\b)"
            rf"|{_OPENS}[>#*\[]*(?:system|user|developer)[\]*]*\s*:[ \t]*(?=[^\n]*\b(?:you|your|ignore|disregard|"
            r"instructions?|assistant|agent|ai|must|override)\b)"
            rf"|{_OPENS}\[(?:system|admin|developer|operator)\][ \t]*(?=[^\n]*\b(?:you|your|ignore|disregard|"
            r"instructions?|assistant|agent|ai|must|override|execute|session)\b)",
            re.I | re.M,
        ),
        "line",
    ),
]
_COMMENT = re.compile(r"<!--(.*?)(?:-->|\Z)", re.S)
_HIDDEN_COMMENT_WORDS = re.compile(rf"\b(?:{_AI}|agents?|assistants?|prompt|instructions?)\b", re.I)
_ORDER = re.compile(rf"\b(?:{_COMMAND})\b", re.I)
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_TAG_CHARS = re.compile("[\U000e0000-\U000e007f]+")
# Where a sentence ends: its stop, a line break, or markup that starts a new block (pages are often one line).
_SENTENCE_END = re.compile(
    r"[.!?](?=\s)|\n|<!--|-->|</?(?:p|div|li|ul|ol|h\d|br|td|tr|table|body|html|pre|code)\b[^>]*>", re.I
)
_PARAGRAPH_END = re.compile(r"\n\s*\n")
_BLOCK_END = re.compile(r"<!--|-->|</?(?:p|div|li|h\d|td|body|html)\b[^>]*>", re.I)


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    reason: str


def find_spans(text: str) -> list[Span]:
    """The instruction-like spans of `text`, sorted and merged where they touch."""
    spans = [_hidden_comment(m) for m in _COMMENT.finditer(text)]
    spans = [s for s in spans if s is not None]
    for reason, pattern, reach in _SIGNALS:
        for m in pattern.finditer(text):
            spans.append(_extend(text, m.start(), m.end(), reason, reach))
    return _merge(spans)


def is_instruction_like(text: str) -> bool:
    return bool(find_spans(reveal(text)))


def reveal(text: str) -> str:
    """Invisible characters out; Unicode tag characters (text hidden as ASCII look-alikes) decoded, so the
    detector reads what a model would."""
    text = _TAG_CHARS.sub(lambda m: " " + "".join(chr(ord(c) - 0xE0000) for c in m.group()) + " ", text)
    return _INVISIBLE.sub("", text)


def neutralise(text: str) -> str:
    """`text` with every instruction-like span replaced by MARKER (with its reason): quoted material that
    says an instruction was there, never the instruction itself."""
    if not text:
        return text
    text = reveal(text)
    spans = find_spans(text)
    if not spans:
        return text
    out, pos = [], 0
    for s in spans:
        out.append(text[pos : s.start])
        out.append(f"{MARKER[:-1]}: {s.reason}]")
        pos = s.end
    out.append(text[pos:])
    return "".join(out)


def _hidden_comment(m: re.Match[str]) -> Span | None:
    """An HTML comment is hidden from the person who reads the page: flag it when it speaks to an agent."""
    body = m.group(1)
    inner = find_spans(body) if "<!--" not in body else []
    speaks = _HIDDEN_COMMENT_WORDS.search(body) and _ORDER.search(body)
    if inner or speaks:
        return Span(m.start(), m.end(), "hidden HTML comment addressed to an agent")
    return None


def _extend(text: str, start: int, end: int, reason: str, reach: str) -> Span:
    """Grow a match to its sentence (or line, or the rest of its paragraph)."""
    if reach == "line":  # the line, or the block of markup, that holds it: the demand sits beside the signal
        left = text.rfind("\n", 0, start) + 1
        for b in _BLOCK_END.finditer(text, left, start):
            left = b.end()
        right = text.find("\n", end)
        right = len(text) if right < 0 else right
        b = _BLOCK_END.search(text, end, right)
        return Span(_skip_space(text, left, start), b.start() if b else right, reason)
    left = max(0, start - SENTENCE_CHARS)
    for b in _SENTENCE_END.finditer(text, left, start):
        left = b.end()
    left = _skip_space(text, left, start)  # the space before a sentence stays between its neighbours
    if reach == "paragraph":
        p = _PARAGRAPH_END.search(text, end, end + PARAGRAPH_CHARS)
        right = p.start() if p else min(len(text), end + PARAGRAPH_CHARS)
        tag = _BLOCK_END.search(text, end, right)
        if tag:  # a block of markup ends the address too
            right = tag.start()
        elif not p and right < len(text):  # no paragraph end near: stop at the last sentence end instead
            ends = [e.end() for e in _SENTENCE_END.finditer(text, end, right)]
            right = ends[-1] if ends else right
        return Span(left, right, reason)
    b = _SENTENCE_END.search(text, end)
    return Span(left, len(text) if b is None else b.end() if b.group() in ".!?" else b.start(), reason)


def _skip_space(text: str, left: int, start: int) -> int:
    while left < start and text[left].isspace():
        left += 1
    return left


def _merge(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for s in sorted(spans, key=lambda s: (s.start, -s.end)):
        if out and s.start <= out[-1].end:
            last = out[-1]
            out[-1] = Span(last.start, max(last.end, s.end), last.reason)
        else:
            out.append(s)
    return out
