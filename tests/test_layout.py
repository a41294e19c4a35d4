"""The package's architecture, kept: the reference math stands alone."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mlpcli"


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, relative imports resolved against the package."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts[: len(parts) - node.level]
                found.add(".".join(base + ([node.module] if node.module else [])))
            else:
                found.add(node.module)
    return found


def test_the_reference_math_imports_nothing_from_the_engines_or_above():
    for path in (PACKAGE / "nn").glob("*.py"):
        for module in imported_modules(path):
            assert module.startswith(
                (
                    "mlpcli.nn",
                    "numpy",
                    "__future__",
                    "collections",
                    "dataclasses",
                    "itertools",
                    "math",
                    "typing",
                )
            ), f"{path.name} imports {module}: mlpcli/nn must stay readable alone"


def test_only_the_cli_imports_click():
    for path in PACKAGE.rglob("*.py"):
        if path.name != "cli.py":
            assert "click" not in imported_modules(path), path


def test_the_engine_names_the_cli_offers_are_the_engines_fastest_first():
    from mlpcli.engines import ENGINE_CHOICES
    from mlpcli.engines.choice import ENGINES

    assert ENGINE_CHOICES == ("auto", *ENGINES)


def test_the_cli_loads_no_engine_until_training():
    """`mlp predict` must start quickly: importing the CLI loads neither the engines nor
    the training loop (nor the compiled step)."""
    import subprocess
    import sys

    heavy = ("mlpcli.engines.", "mlpcli.training.", "matplotlib", "mlpcli.web", "http.server")
    heavy += ("numpy.random",)  # predict draws no random number
    code = (
        "import sys, mlpcli.cli, mlpcli.api; "
        f"print(sorted(m for m in sys.modules if m.startswith({heavy!r})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"
