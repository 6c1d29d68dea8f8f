"""Recall says so when a question about one person of a conversation finds its topic only in another's words."""

from __future__ import annotations

import pytest

from lmm_mcp.app import App
from lmm_mcp.ingest import Ingester
from lmm_mcp.memories import refresh_memories
from lmm_mcp.queries import speaks
from tests.conftest import conversation, record, write_jsonl
from trainer.prompts import is_abstention

CHAT = "/home/me/chat"
LINES = [
    "Caroline: Hey Mel! Long time no see. How are the kids?",
    "Melanie: Hey Caroline! They're great. We went camping at the lake last weekend and roasted marshmallows.",
    "Caroline: Thanks, Melanie! This necklace is special to me, a gift from my grandma in Sweden.",
    "Melanie: That's lovely. What motivated you to start the pottery class?",
    "Caroline: I wanted a calm hobby after work, and clay keeps my hands busy.",
    "Melanie: Your pottery bowl looks amazing, the glaze is such a deep blue!",
    "Caroline: I adopted a beagle named Scout from the shelter downtown.",
    "Melanie: I finished a watercolor painting of the sunset over the harbor.",
    "Caroline: Oh Melanie, my brother works as a firefighter in Denver now.",
    "Melanie: Congrats on your new job at the bakery on Elm Street!",
]


@pytest.fixture
def chat(cfg, conn):
    """A relayed conversation between Caroline and Melanie, and a coding session, in a real store."""
    records, parent = [], None
    for n, line in enumerate(LINES):
        records.append(
            record(f"c{n}", line, parent=parent, session="chat-1", cwd=CHAT, ts=f"2026-10-01T10:0{n}:00.000Z")
        )
        parent = f"c{n}"
    write_jsonl(cfg.claude_dir / "-home-me-chat" / "chat-1.jsonl", records)
    coding = conversation("code-1", 3, cwd="/home/me/shop", words="Note: the Stripe webhook retries")
    write_jsonl(cfg.claude_dir / "-home-me-shop" / "code-1.jsonl", coding)
    assert not Ingester(cfg, conn).ingest([cfg.claude_dir]).errors
    refresh_memories(conn)
    return App(cfg, conn).recaller()


def test_a_question_about_one_person_answered_only_by_the_others_words_says_whose_they_are(chat):
    r = chat.recall("What country is Melanie's grandma from?", project=CHAT, mode="retrieve")
    opening, *rest = r.memory.splitlines()
    assert opening == ("No relevant memory of Melanie on this: what past sessions hold on it is Caroline's.")
    assert is_abstention(r.memory)
    # whose words these are still shows, cited: the agent can see the question's premise is wrong
    assert r.sources and "grandma in Sweden" in "\n".join(rest)
    # asked of the one who said it, it is an answer
    mine = chat.recall("What country is Caroline's grandma from?", project=CHAT, mode="retrieve")
    assert not is_abstention(mine.memory) and "Sweden" in mine.memory
    asked = chat.recall("Which dog did Melanie adopt from the shelter?", project=CHAT, mode="retrieve")
    assert asked.memory.startswith("No relevant memory of Melanie on this")
    # what Melanie said to Caroline ("your new job") is Caroline's, not Melanie's
    job = chat.recall("Where did Melanie get a new job?", project=CHAT, mode="retrieve")
    assert job.memory.startswith(
        "No relevant memory of Melanie on this: what past sessions hold on it is Caroline's."
    )
    assert "bakery" in job.memory
    # naming someone only to address them ("Oh Melanie, my brother…") says nothing about them
    brother = chat.recall(
        "Where does Melanie's brother work as a firefighter?", project=CHAT, mode="retrieve"
    )
    assert brother.memory.startswith("No relevant memory of Melanie on this") and "Denver" in brother.memory


def test_what_the_other_person_says_to_or_asks_the_one_asked_about_is_no_misattribution(chat):
    # Melanie asks Caroline what motivated her: evidence that Caroline is the one who knows
    question = "What motivated Caroline to start the pottery class?"
    assert chat.said_by_another(question, CHAT, chat.hits(question, project=CHAT, k=8)) is None
    # a question naming both, one by a short form ("Mel" of Melanie), asks about what passed between them
    both = "Which watercolor painting did Mel tell Caroline she finished?"
    assert chat.said_by_another(both, CHAT, chat.hits(both, project=CHAT, k=8)) is None
    alone = "Which watercolor painting did Caroline finish?"
    assert chat.said_by_another(alone, CHAT, chat.hits(alone, project=CHAT, k=8)) is not None
    # Melanie speaks to Caroline of "your pottery bowl": it is about Caroline
    r = chat.recall("What color is the glaze on Caroline's pottery bowl?", project=CHAT, mode="retrieve")
    assert not is_abstention(r.memory) and "deep blue" in r.memory


def test_only_a_speaker_of_the_project_is_a_person_asked_about(chat, conn):
    chat_ids = [pid for (pid,) in conn.execute("SELECT id FROM projects WHERE path = ?", (CHAT,))]
    assert speaks(conn, "Caroline", chat_ids) and speaks(conn, "Melanie", chat_ids)
    assert not speaks(conn, "Scout", chat_ids)  # said, never a speaker
    assert not speaks(conn, "Caroline", [pid + 100 for pid in chat_ids])
    # a name no conversation has: no attribution, the usual recall
    r = chat.recall("Which dog did Scout's owner adopt from the shelter?", project=CHAT, mode="retrieve")
    assert not is_abstention(r.memory) and "beagle" in r.memory
    # a coding session's label-like words are no speakers of a conversation
    code = chat.recall(
        "Does the Stripe Note say the webhook retries?", project="/home/me/shop", mode="retrieve"
    )
    assert not is_abstention(code.memory)


def test_the_attribution_check_is_off_with_the_other_abstentions(chat):
    r = chat.recall(
        "What country is Melanie's grandma from?", project=CHAT, mode="retrieve", abstain_unknown=False
    )
    assert not is_abstention(r.memory) and "Sweden" in r.memory


def test_a_budget_too_small_for_excerpts_leaves_the_abstention_alone(chat):
    r = chat.recall("What country is Melanie's grandma from?", project=CHAT, mode="retrieve", max_tokens=50)
    assert r.memory.startswith("No relevant memory of Melanie") and not r.sources
    assert len(r.memory) <= 50 * 4
