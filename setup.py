"""The optional compiled step (mlpcli/engines/_sparse_sgd.c) and the packages, the shipped
configs among them; all other metadata is in setup.cfg.

`optional=True`: without a C compiler the install still succeeds, and training runs on the
NumPy engines alone (mlpcli/engines/compiled.py falls back to them).

The step is built once per instruction set, each build a module of its own whose vectors are
one register wide (engines/step/common.h says why): the baseline one everywhere, and on x86-64 an
AVX2 one (x86-64-v3) and an AVX-512 one (x86-64-v4). compiled.py imports the widest that the
CPU runs; MLPCLI_SIMD caps it.
"""

import platform
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup

SOURCE = "mlpcli/engines/_sparse_sgd.c"
PARTS = sorted(str(part) for part in Path("mlpcli/engines/step").glob("*.h"))  # it includes them
# OpenMP for the step's two threads where the compiler surely has it (GCC on Linux);
# elsewhere the same code runs on one thread.
openmp = ["-fopenmp"] if sys.platform.startswith("linux") else []
# -fno-math-errno: sqrtf need not set errno, so the optimizers' loops vectorize
common = ["-O3", "-std=c11", "-ffp-contract=fast", "-fno-math-errno", "-Wno-psabi", *openmp]
# module name suffix: (floats per vector, compiler flags)
BUILDS = {"": (4, [])}
if sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64"):
    BUILDS["_avx2"] = (8, ["-march=x86-64-v3"])
    BUILDS["_avx512"] = (16, ["-march=x86-64-v4"])


def step_module(suffix: str, lanes: int, flags: list[str]) -> Extension:
    return Extension(
        f"mlpcli.engines._sparse_sgd{suffix}",
        [SOURCE],
        depends=PARTS,
        define_macros=[("LANES", str(lanes)), ("MODULE", f"_sparse_sgd{suffix}")],
        extra_compile_args=[*common, *flags],
        extra_link_args=openmp,
        optional=True,
    )


setup(
    # the shipped configs/ travel as the package mlpcli.configs, so that `--config NAME`
    # finds them after an install (mlpcli/presets.py)
    packages=[*find_packages(include=["mlpcli*"]), "mlpcli.configs"],
    package_dir={"mlpcli.configs": "configs"},
    package_data={"mlpcli.web": ["static/*.html"], "mlpcli.configs": ["*.toml"]},
    ext_modules=[step_module(suffix, *build) for suffix, build in BUILDS.items()],
)
