"""A tiny random Qwen3 with a real byte-level BPE tokenizer, for fast tests and demos of the training code.

    folder = build_tiny_qwen3(tmp_path / "tiny")
    model, tokenizer = load_model(str(folder), cache_dir=tmp_path / "cache")

The model has Qwen3's architecture at toy size (hidden 64, 2 layers, ~107k parameters), so a training step
takes milliseconds on a CPU; the tokenizer is trained by `tokenizers` on a short built-in text in
milliseconds and carries Qwen3's special tokens and a Qwen3-like chat template (with `enable_thinking`).
Both are written with `save_pretrained`, so they load through exactly the path a hub model takes.
The same seed gives the same weights and the same tokenizer.
"""

from __future__ import annotations

from pathlib import Path

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
THINK_TOKENS = ("<think>", "</think>")  # added tokens, not special ones: Qwen3 keeps them in decoded text

# Qwen3's template for plain chats (no tools): the last assistant reply after the last user turn carries a
# think block (empty when there is no reasoning), and `enable_thinking=False` pre-fills an empty one.
CHAT_TEMPLATE = """\
{%- set ns = namespace(last_query_index=-1) -%}
{%- for message in messages -%}
  {%- if message.role == 'user' -%}{%- set ns.last_query_index = loop.index0 -%}{%- endif -%}
{%- endfor -%}
{%- for message in messages -%}
  {%- if message.role == 'assistant' -%}
    {%- set content = message.content -%}
    {%- set reasoning = message.reasoning_content if message.reasoning_content is defined and message.reasoning_content else '' -%}
    {%- if loop.index0 > ns.last_query_index and (loop.last or reasoning) -%}
      {{- '<|im_start|>assistant\\n<think>\\n' + reasoning.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') -}}
    {%- else -%}
      {{- '<|im_start|>assistant\\n' + content -}}
    {%- endif -%}
    {{- '<|im_end|>\\n' -}}
  {%- else -%}
    {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}
  {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
  {{- '<|im_start|>assistant\\n' -}}
  {%- if enable_thinking is defined and enable_thinking is false -%}
    {{- '<think>\\n\\n</think>\\n\\n' -}}
  {%- endif -%}
{%- endif -%}
"""

# Enough English, shell and Python for a few hundred merges that look like the transcripts we train on.
CORPUS = """\
The user prefers small functions with type hints and a docstring at the top of each module.
We decided to use SQLite with FTS5 for the store, because one file is easy to back up and search.
Always run the tests before committing; never push directly to the main branch.
The build failed with ModuleNotFoundError: No module named 'orjson'. Installing it fixed the error.
Run the test suite with pytest -q tests/ and lint with ruff check . before opening a pull request.
The assistant edited trainer/models.py and added a function that loads a model from a folder.
Memory: this project uses Python 3.11, transformers 5 and peft for LoRA adapters on Qwen3.
def load_model(source: str, *, cache_dir: Path) -> tuple[Model, Tokenizer]:
    \"\"\"Load a causal language model and its tokenizer.\"\"\"
    if not Path(source).exists():
        raise ModelError(f"model {source} does not exist")
    return AutoModelForCausalLM.from_pretrained(source), AutoTokenizer.from_pretrained(source)
class Store:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)
    def search(self, query: str, limit: int = 10) -> list[dict[str, str]]:
        return [dict(row) for row in self.conn.execute("SELECT * FROM chunks WHERE text MATCH ?", (query,))]
for i in range(10):
    print(f"step {i}: loss {1.0 / (i + 1):.3f}")
$ git status && git diff --stat && uv pip install -e .[dev]
Error: connection refused on port 8080; the server was not running. Starting it with npm run dev fixed it.
The quick brown fox jumps over the lazy dog while the cat sleeps in the warm afternoon sun.
"""


def build_tiny_qwen3(folder: Path, *, vocab_size: int = 512, seed: int = 0) -> Path:
    """Write a tiny random Qwen3 model and its tokenizer into `folder` (created if needed); return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer(vocab_size=vocab_size)
    tokenizer.save_pretrained(folder)
    model = _random_qwen3(tokenizer, vocab_size=max(vocab_size, len(tokenizer)), seed=seed)
    model.save_pretrained(folder)
    return folder


def build_tiny_tokenizer(
    *, vocab_size: int = 512
):  # -> PreTrainedTokenizerFast, not imported at module level
    """A byte-level BPE tokenizer trained on `CORPUS`, with Qwen3's special tokens and chat template."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(THINK_TOKENS),  # so the think tokens added below land inside vocab_size
        special_tokens=[ENDOFTEXT, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodes, even outside CORPUS
        show_progress=False,
    )
    backend.train_from_iterator(CORPUS.splitlines(), trainer)
    backend.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TOKENS])

    # Like Qwen3-1.7B: a chat ends with <|im_end|> (eos), padding uses the distinct <|endoftext|>, so masking
    # pads out of the labels never masks the end of a reply; no bos token is prepended.
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        model_max_length=2048,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": [IM_START]})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _random_qwen3(tokenizer, *, vocab_size: int, seed: int):
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    eos_id = tokenizer.convert_tokens_to_ids(IM_END)
    pad_id = tokenizer.convert_tokens_to_ids(ENDOFTEXT)
    config = Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        intermediate_size=128,
        max_position_embeddings=2048,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        bos_token_id=pad_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    # A private RNG stream: building a fixture must not move the caller's torch seed.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config)
    # Generation stops at the end of a turn or of a document, as Qwen3's own generation config does.
    model.generation_config = GenerationConfig(
        bos_token_id=pad_id, eos_token_id=[eos_id, pad_id], pad_token_id=pad_id
    )
    return model
