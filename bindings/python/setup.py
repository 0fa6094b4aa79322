"""Builds mcrs, a drop-in for pymemcache over libmcrs (the C extension mcrs._mcrs).

libmcrs is found from the checkout: MCRS_LIB_DIR (default: ../../target/release,
where `cargo build --release` at the repository root puts libmcrs.so) and
MCRS_INCLUDE_DIR (default: ../../include, holding mcrs.h). The extension links
libmcrs.so with that directory as its rpath, so the library is loaded from
there at run time: rebuild libmcrs and the installed package uses the new one.
"""

import os
from pathlib import Path

from setuptools import Extension, setup

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
LIB_DIR = Path(os.environ.get("MCRS_LIB_DIR", ROOT / "target" / "release")).resolve()
INCLUDE_DIR = Path(os.environ.get("MCRS_INCLUDE_DIR", ROOT / "include")).resolve()

if not (INCLUDE_DIR / "mcrs.h").exists():
    raise SystemExit(f"mcrs.h not found in {INCLUDE_DIR}: set MCRS_INCLUDE_DIR")
if not (LIB_DIR / "libmcrs.so").exists():
    raise SystemExit(
        f"libmcrs.so not found in {LIB_DIR}: run `cargo build --release` in {ROOT} "
        "or set MCRS_LIB_DIR"
    )

setup(
    ext_modules=[
        Extension(
            "mcrs._mcrs",
            sources=["src/_mcrs.c"],
            include_dirs=[str(INCLUDE_DIR)],
            library_dirs=[str(LIB_DIR)],
            libraries=["mcrs"],
            runtime_library_dirs=[str(LIB_DIR)],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers",
                                "-Wno-unused-parameter", "-Wno-cast-function-type"],
        )
    ],
)
