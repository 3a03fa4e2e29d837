#!/usr/bin/env bash
# Wheel test: `pip install <repo>` into a fresh virtual environment builds a
# wheel that carries libstorectx.so (docs/python.md's `pip install .`, run as
# it is from the repository root), and the installed binding finds it with
# no environment variables; then every ```python block of docs/python.md's
# "Use it from Python" section runs, verbatim, with that environment's python
# from a directory outside the repository.
# Needs python3 with venv and pip, cargo, and PyPI (the build backend,
# setuptools, is installed into pip's isolated build environment): without
# python3-venv or PyPI it prints SKIPPED and passes, unless
# STORECTX_REQUIRE_TOOLS=1. cargo test runs it (tests/python_binding.rs) with
# CARGO_TARGET_DIR=target/wheel, so its release build never waits for the
# lock cargo test holds on target/.
# STORECTX_KEEP_TMP=1 keeps the temporary directory.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
ok() { printf 'ok: %s\n' "$*"; }

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  [ "${STORECTX_REQUIRE_TOOLS:-0}" = 1 ] && fail "python3-venv is not installed"
  echo "SKIPPED: python3-venv not installed"
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/storectx-wheel.XXXXXX")
if [ "${STORECTX_KEEP_TMP:-0}" = 1 ]; then trap 'echo "kept $work"' EXIT; else trap 'rm -rf "$work"' EXIT; fi

python3 -m venv "$work/venv"
py="$work/venv/bin/python"
if ! "$py" -m pip download --quiet --no-deps --timeout 20 --dest "$work/probe" setuptools >/dev/null 2>&1; then
  [ "${STORECTX_REQUIRE_TOOLS:-0}" = 1 ] && fail "PyPI is not reachable (pip download setuptools failed)"
  echo "SKIPPED: PyPI not reachable (the wheel's build backend comes from it)"
  exit 0
fi
"$py" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$repo"
wheel=$(ls "$work"/dist/storectx-*.whl)
ok "built $(basename "$wheel")"
"$py" -m zipfile -l "$wheel" >"$work/wheel.txt"
grep -q '^storectx/libstorectx.so ' "$work/wheel.txt" || fail "the wheel has no storectx/libstorectx.so"
grep -q '^storectx/__init__.py ' "$work/wheel.txt" || fail "the wheel has no storectx/__init__.py"
case $(basename "$wheel") in
  *-py3-none-linux_*.whl) ok "tag py3-none-<platform>, holds storectx/__init__.py and storectx/libstorectx.so" ;;
  *) fail "unexpected wheel tag: $(basename "$wheel")" ;;
esac
# docs/python.md's install line, as it is, from the repository root with
# the fresh environment's pip (the wheel above is what it builds).
(
  cd "$repo"
  PATH="$work/venv/bin:$PATH"
  pip install .
)

# Nothing but the installed package may provide the library.
unset STORECTX_LIB LD_LIBRARY_PATH PYTHONPATH
cd "$work"
"$py" - <<'PY' || fail "the installed binding does not load the library next to itself"
import os, storectx
here = os.path.dirname(os.path.abspath(storectx.__file__))
assert "site-packages" in here, here
assert storectx.lib._name == os.path.join(here, "libstorectx.so"), storectx.lib._name
print("ok: import storectx ->", storectx.lib._name, storectx.version())
PY

# The Python snippets of docs/python.md ("Use it from Python"), verbatim.
"$py" - "$repo/docs/python.md" "$work/snippets" <<'PY'
import os, re, sys
text = open(sys.argv[1], encoding="utf-8").read()
section = text.split("\n## Use it from Python\n", 1)[1].split("\n## ", 1)[0]
blocks = re.findall(r"```python\n(.*?)```", section, re.S)
assert blocks, "no python blocks in docs/python.md's 'Use it from Python'"
os.makedirs(sys.argv[2])
for i, block in enumerate(blocks):
    with open(os.path.join(sys.argv[2], "snippet%d.py" % i), "w") as f:
        f.write(block)
print("docs/python.md 'Use it from Python': %d snippets" % len(blocks))
PY
for snippet in "$work"/snippets/*.py; do
  "$py" "$snippet" >"$snippet.out" 2>&1 || { cat "$snippet.out"; fail "$(basename "$snippet") failed"; }
  ok "$(basename "$snippet") ran: $(head -n1 "$snippet.out")"
done
echo "wheel test passed"
