"""Build steps behind `pip install .` (pyproject.toml names setuptools).

setuptools alone cannot build a Rust library, and the binding is not an
extension module, so the one custom step is small: `build_py` runs
`cargo build --release --lib` and lays out the package `storectx` as
bindings/python/storectx.py (as `__init__.py`) plus libstorectx.so beside it.
The wheel is tagged py3-none-<platform>: it holds a native library but no
CPython extension, so one wheel serves every Python 3 on that platform.
Written by hand rather than with maturin: maturin packages PyO3/cffi/uniffi
modules or binaries, not a cdylib driven through ctypes.

CARGO (default: `cargo` on PATH, else ~/.cargo/bin/cargo) and
CARGO_TARGET_DIR (default: <repo>/target) are honoured.
"""

import os
import re
import shutil
import subprocess

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:  # setuptools >= 70.1 has its own
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # older setuptools: the wheel package's
    from wheel.bdist_wheel import bdist_wheel

ROOT = os.path.dirname(os.path.abspath(__file__))


def cargo_version():
    """`version` of the [package] section of Cargo.toml: one version for all."""
    section = None
    with open(os.path.join(ROOT, "Cargo.toml"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r"\s*\[([^\]]*)\]", line)
            if m:
                section = m.group(1)
                continue
            m = re.match(r'\s*version\s*=\s*"([^"]+)"', line)
            if m and section == "package":
                return m.group(1)
    raise RuntimeError("no version in the [package] section of Cargo.toml")


def cargo():
    found = os.environ.get("CARGO") or shutil.which("cargo")
    if not found:
        home = os.path.join(os.path.expanduser("~"), ".cargo", "bin", "cargo")
        found = home if os.path.exists(home) else None
    if not found:
        raise RuntimeError("cargo not found: install Rust (https://rustup.rs) to build libstorectx")
    return found


class BuildPyWithCargo(build_py):
    """Builds the library with cargo and lays out the `storectx` package."""

    def run(self):
        target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
        env = dict(os.environ, CARGO_TARGET_DIR=target)
        env.pop("STORECTX_SONAME", None)  # loaded by path: no SONAME needed
        subprocess.check_call(
            [cargo(), "build", "--release", "--lib",
             "--manifest-path", os.path.join(ROOT, "Cargo.toml")],
            cwd=ROOT, env=env)
        pkg = os.path.join(self.build_lib, "storectx")
        os.makedirs(pkg, exist_ok=True)
        self.copy_file(os.path.join(ROOT, "bindings", "python", "storectx.py"),
                       os.path.join(pkg, "__init__.py"), preserve_mode=False)
        self.copy_file(os.path.join(target, "release", "libstorectx.so"),
                       os.path.join(pkg, "libstorectx.so"))

    def get_outputs(self, include_bytecode=True):
        pkg = os.path.join(self.build_lib, "storectx")
        return [os.path.join(pkg, "__init__.py"), os.path.join(pkg, "libstorectx.so")]

    def get_source_files(self):
        return [os.path.join("bindings", "python", "storectx.py")]


class NativeDistribution(Distribution):
    """Holds native code: built into (and installed from) platlib, not purelib."""

    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    """py3-none-<platform>: native code, but no CPython ABI dependence."""

    def get_tag(self):
        _, _, plat = super().get_tag()
        return "py3", "none", plat


setup(
    version=cargo_version(),
    # One package, laid out by BuildPyWithCargo (this also turns off
    # setuptools' package discovery, which would find c-tests/, include/...).
    packages=["storectx"],
    package_dir={"storectx": "bindings/python"},
    distclass=NativeDistribution,
    cmdclass={"build_py": BuildPyWithCargo, "bdist_wheel": PlatformWheel},
    zip_safe=False,
)
