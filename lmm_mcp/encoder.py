"""A BERT-family sentence encoder in plain numpy: the query path that never imports torch.

Why: a retrieval-only recall embeds one short query, and paying for `import torch` (~1.3 s) and
`transformers` (~4.7 s) to run six small layers over a dozen word pieces costs the server far more than the
forward pass itself. This module runs the same model with what is already cheap to import: the Rust
`tokenizers` library reads the model's `tokenizer.json` (the WordPiece tokenizer `transformers` itself uses
for it), `safetensors.numpy` reads the weights, and numpy's BLAS does the matrix products.

What: a standard BERT encoder (`BertModel` with absolute positions, post-LayerNorm, exact erf GELU through
a polynomial since numpy has no erf), mean pooling over the attention mask and L2 normalisation, exactly what
the torch path in `lmm_mcp.embed` computes. Its vectors match that path to float32 rounding (all-MiniLM-L6-v2
on 50 varied texts: cosine >= 0.9999999, max abs diff 3.4e-7; tests/test_encoder.py), so vectors already in a
store stay valid. Architecture numbers come from the folder's `config.json`; `supports` says whether a folder
can run here (model.safetensors, tokenizer.json, a BERT config this code implements).

Speed (2 loaded cores, one BLAS thread): import + load + first query 0.4 s against 5.5-6.4 s for torch; a
query ~13 ms p50 against ~18 ms; bulk at batch 32, texts of 100-1000 characters, 3-7% behind torch on one
thread (18.1 against 19.5 texts/s) and level on two, so ingest needs no torch either.

    enc = NumpyEncoder("/path/to/all-MiniLM-L6-v2")
    vecs = enc.encode(["how did we fix the flaky test"])  # float32 (1, 384), rows of unit length

It never imports torch or transformers; keep it that way.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

# Activations this encoder implements; "gelu" in a BERT config is the exact erf form.
ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")
MODEL_TYPES = ("bert",)
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
GELU_ROWS = 64  # rows of the intermediate activation per GELU pass: the temporaries stay in cache

# Abramowitz & Stegun 7.1.26: erf(z) = 1 - t·(a1 + a2 t + a3 t² + a4 t³ + a5 t⁴)·exp(-z²), t = 1/(1 + p z),
# for z >= 0; absolute error <= 1.5e-7, below float32 resolution of GELU's output. numpy has no erf and
# scipy is not a dependency.
_AS_P = 0.3275911
_AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


class EncoderError(RuntimeError):
    """The model folder cannot run on the numpy encoder."""


def unsupported_reason(model_dir: str | Path) -> str | None:
    """None when `model_dir` can run on NumpyEncoder, else why not (in words)."""
    folder = Path(model_dir)
    if not folder.is_dir():
        return f"{folder} is not a folder"
    for name in (WEIGHTS_FILE, TOKENIZER_FILE, "config.json"):
        if not (folder / name).is_file():
            return f"{folder} has no {name}"
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as e:
        return f"config.json unreadable: {e}"
    if config.get("model_type") not in MODEL_TYPES:
        return f"model_type {config.get('model_type')!r} is not BERT"
    if config.get("hidden_act", "gelu") not in ACTIVATIONS:
        return f"hidden_act {config.get('hidden_act')!r} is not implemented"
    if config.get("position_embedding_type", "absolute") != "absolute":
        return f"position_embedding_type {config.get('position_embedding_type')!r} is not implemented"
    if config.get("is_decoder") or config.get("add_cross_attention"):
        return "decoder BERT configs are not implemented"
    return None


def supports(model_dir: str | Path) -> bool:
    return unsupported_reason(model_dir) is None


class NumpyEncoder:
    """Mean-pooled, L2-normalised BERT sentence vectors; weights load on the first `encode`."""

    def __init__(self, model_dir: str | Path, max_tokens: int = 128):
        self.model_dir = Path(model_dir)
        self.max_tokens = max_tokens
        self._lock = threading.Lock()
        self._loaded = False
        self._tokenizer: Any = None

    # ------------------------------------------------------------------------------------------ loading

    def load(self) -> None:
        """Read tokenizer, config and weights (idempotent, thread-safe)."""
        with self._lock:
            if self._loaded:
                return
            reason = unsupported_reason(self.model_dir)
            if reason:
                raise EncoderError(reason)
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer

            cfg = json.loads((self.model_dir / "config.json").read_text())
            self.hidden = int(cfg["hidden_size"])
            self.heads = int(cfg["num_attention_heads"])
            self.head_dim = self.hidden // self.heads
            self.eps = float(cfg.get("layer_norm_eps", 1e-12))
            self.activation = cfg.get("hidden_act", "gelu")
            n_layers = int(cfg["num_hidden_layers"])
            max_positions = int(cfg.get("max_position_embeddings", 512))
            if self.max_tokens > max_positions:
                raise EncoderError(
                    f"max_tokens {self.max_tokens} exceeds the model's {max_positions} positions"
                )

            tok = Tokenizer.from_file(str(self.model_dir / TOKENIZER_FILE))
            pad = tok.padding or {}  # the file may pin padding to a fixed length: pad to the batch's longest
            pad_id = int(pad.get("pad_id", cfg.get("pad_token_id", 0)) or 0)
            pad_token = pad.get("pad_token") or tok.id_to_token(pad_id) or "[PAD]"
            tok.enable_padding(pad_id=pad_id, pad_token=pad_token)
            tok.enable_truncation(max_length=self.max_tokens)
            self._tokenizer = tok

            w = load_file(str(self.model_dir / WEIGHTS_FILE))
            # Heads saved from a task model (BertForX) prefix every name with "bert."
            if "embeddings.word_embeddings.weight" not in w and "bert.embeddings.word_embeddings.weight" in w:
                w = {k[5:]: v for k, v in w.items() if k.startswith("bert.")}

            def get(name: str) -> np.ndarray:
                if name not in w:
                    raise EncoderError(f"{WEIGHTS_FILE} has no {name}")
                return np.ascontiguousarray(w[name], dtype=np.float32)

            self.word = get("embeddings.word_embeddings.weight")
            self.position = get("embeddings.position_embeddings.weight")
            self.token_type0 = get("embeddings.token_type_embeddings.weight")[0]
            self.emb_ln = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
            scale = np.float32(1.0 / np.sqrt(self.head_dim))
            self.layers = []
            for i in range(n_layers):
                p = f"encoder.layer.{i}."
                # Query, key and value in one product; the 1/sqrt(head_dim) of the scores folded into the
                # query (exact for power-of-two head sizes, as here: 32).
                wq = get(p + "attention.self.query.weight") * scale
                bq = get(p + "attention.self.query.bias") * scale
                qkv_w = np.concatenate(
                    [wq, get(p + "attention.self.key.weight"), get(p + "attention.self.value.weight")]
                )
                qkv_b = np.concatenate(
                    [bq, get(p + "attention.self.key.bias"), get(p + "attention.self.value.bias")]
                )
                self.layers.append(
                    (
                        np.ascontiguousarray(qkv_w.T),
                        qkv_b,
                        np.ascontiguousarray(get(p + "attention.output.dense.weight").T),
                        get(p + "attention.output.dense.bias"),
                        (
                            get(p + "attention.output.LayerNorm.weight"),
                            get(p + "attention.output.LayerNorm.bias"),
                        ),
                        np.ascontiguousarray(get(p + "intermediate.dense.weight").T),
                        get(p + "intermediate.dense.bias"),
                        np.ascontiguousarray(get(p + "output.dense.weight").T),
                        get(p + "output.dense.bias"),
                        (get(p + "output.LayerNorm.weight"), get(p + "output.LayerNorm.bias")),
                    )
                )
            self.dim = self.hidden
            self._loaded = True

    # ------------------------------------------------------------------------------------------ encoding

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """float32 array (len(texts), hidden), rows L2-normalised; batches are formed by length."""
        if not self._loaded:
            self.load()
        out = np.zeros((len(texts), self.hidden), dtype=np.float32)
        if not texts:
            return out
        # Sorting by length keeps padding (wasted compute) small inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = [texts[j] for j in idx]
            # One text (a query) skips encode_batch and with it the tokenizer's thread pool.
            encs = (
                self._tokenizer.encode_batch(batch) if len(batch) > 1 else [self._tokenizer.encode(batch[0])]
            )
            ids = np.array([e.ids for e in encs], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encs], dtype=np.float32)
            out[idx] = self._embed(ids, mask)
        return out

    def _embed(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        hidden = self.forward(ids, mask)  # (B, L, H)
        pooled = np.einsum("blh,bl->bh", hidden, mask) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Last hidden state (B, L, hidden) of the BERT encoder for token ids (B, L) and mask (B, L)."""
        b, length = ids.shape
        n, h, nh, hd = b * length, self.hidden, self.heads, self.head_dim
        x = self.word[ids.reshape(-1)]
        x += np.tile(self.position[:length], (b, 1))
        x += self.token_type0
        x = self._layer_norm(x, *self.emb_ln)
        # Padded keys get a huge negative score; a batch without padding skips the addition.
        bias = None
        if not mask.all():
            bias = ((1.0 - mask) * np.finfo(np.float32).min).astype(np.float32)[:, None, None, :]
        for qkv_w, qkv_b, o_w, o_b, ln1, i_w, i_b, f_w, f_b, ln2 in self.layers:
            qkv = x @ qkv_w
            qkv += qkv_b
            # (B, L, 3, heads, head_dim) -> q, v (B, heads, L, head_dim) and k transposed (B, heads, head_dim, L),
            # each contiguous: numpy's stacked matmul is 2-5x slower on a transposed view.
            qkv = qkv.reshape(b, length, 3, nh, hd)
            q = np.ascontiguousarray(qkv[:, :, 0].transpose(0, 2, 1, 3))
            kt = np.ascontiguousarray(qkv[:, :, 1].transpose(0, 2, 3, 1))
            v = np.ascontiguousarray(qkv[:, :, 2].transpose(0, 2, 1, 3))
            scores = q @ kt  # (B, heads, L, L); already scaled through the query
            if bias is not None:
                scores += bias
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            # Softmax's division after the product with v: a pass over (B, heads, L, head_dim), not (.., L, L).
            ctx = scores @ v
            ctx /= scores.sum(-1, keepdims=True)
            ctx = ctx.transpose(0, 2, 1, 3).reshape(n, h)
            attn = ctx @ o_w
            attn += o_b
            attn += x
            x = self._layer_norm(attn, *ln1)
            inter = x @ i_w
            inter += i_b
            self._activate(inter)
            y = inter @ f_w
            y += f_b
            y += x
            x = self._layer_norm(y, *ln2)
        return x.reshape(b, length, h)

    def _layer_norm(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """LayerNorm over the last axis, in place on `x` (a temporary of the caller)."""
        x -= x.mean(-1, keepdims=True)
        var = np.einsum("ij,ij->i", x, x)[:, None]
        var /= x.shape[-1]
        var += self.eps
        np.sqrt(var, out=var)
        x /= var
        x *= weight
        x += bias
        return x

    def _activate(self, x: np.ndarray) -> None:
        if self.activation == "relu":
            np.maximum(x, 0, out=x)
        elif self.activation == "gelu":
            for start in range(0, x.shape[0], GELU_ROWS):
                _gelu_erf(x[start : start + GELU_ROWS])
        else:  # gelu_new / gelu_pytorch_tanh
            for start in range(0, x.shape[0], GELU_ROWS):
                _gelu_tanh(x[start : start + GELU_ROWS])


def _gelu_erf(x: np.ndarray) -> None:
    """x·Φ(x) in place, Φ the standard normal CDF through erf (A&S 7.1.26, error < 2e-7 here).

    With z = |x|/√2 and h = ½·t·poly(t)·exp(-z²) = ½·erfc(z): Φ(x) = 1 - h for x >= 0 and h for x < 0,
    so x·Φ(x) = max(x, 0) - |x|·h = max(x, 0) - √2·z·h in either case.
    """
    z = np.abs(x)
    z *= np.float32(1.0 / np.sqrt(2.0))
    t = z * np.float32(_AS_P)
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * np.float32(_AS_A[4])
    for a in (_AS_A[3], _AS_A[2], _AS_A[1], _AS_A[0]):
        poly += np.float32(a)
        poly *= t
    np.square(z, out=t)  # t is free again: reuse it for exp(-z²)
    np.negative(t, out=t)
    np.exp(t, out=t)
    poly *= t
    poly *= z
    poly *= np.float32(np.sqrt(2.0) / 2.0)
    np.maximum(x, 0, out=x)
    x -= poly


def _gelu_tanh(x: np.ndarray) -> None:
    """The tanh approximation of GELU (`gelu_new`), in place."""
    inner = x * x
    inner *= np.float32(0.044715)
    inner += 1.0
    inner *= x
    inner *= np.float32(np.sqrt(2.0 / np.pi))
    np.tanh(inner, out=inner)
    inner += 1.0
    inner *= 0.5
    x *= inner
