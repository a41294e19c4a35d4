"""The optional compiled step (mlpcli/engines/_sparse_sgd.c); all other metadata is in setup.cfg.

`optional=True`: without a C compiler the install still succeeds, and training runs on the
NumPy engine alone (mlpcli/sparse_sgd.py falls back to it).
"""

import sys

from setuptools import Extension, setup

# OpenMP for the step's two threads where the compiler surely has it (GCC on Linux);
# elsewhere the same code runs on one thread.
openmp = ["-fopenmp"] if sys.platform.startswith("linux") else []

setup(
    ext_modules=[
        Extension(
            "mlpcli.engines._sparse_sgd",
            ["mlpcli/engines/_sparse_sgd.c"],
            # -fno-math-errno: sqrtf need not set errno, so the optimizers' loops vectorize
            extra_compile_args=[
                "-O3",
                "-std=c11",
                "-ffp-contract=fast",
                "-fno-math-errno",
                "-Wno-psabi",
                *openmp,
            ],
            extra_link_args=openmp,
            optional=True,
        )
    ]
)
