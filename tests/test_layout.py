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
        if path.parent.name != "cli":
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


def test_predict_loads_neither_the_training_code_nor_the_downloads(tmp_path):
    """`mlp predict`'s command and the prediction code import no more than predicting needs:
    each command's module is loaded when it runs (mlpcli/cli/__init__.py), and only the
    image's own decoder is (io/image.py)."""
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    from mlpcli.io.checkpoint import save_checkpoint
    from mlpcli.nn.model import MLP

    digit = np.full((30, 30), 255, np.uint8)
    digit[5:25, 12:16] = 0
    Image.fromarray(digit).save(tmp_path / "digit.png")
    network = MLP.initialize([784, 8, 10], np.random.default_rng(0), "relu", "he-normal", "mse")
    meta = {"normalization": {"mean": 0.13, "std": 0.31}, "dataset": "mnist"}
    save_checkpoint(tmp_path / "c.npz", network, meta)
    unneeded = ("mlpcli.api", "mlpcli.cli.train", "mlpcli.cli.options", "mlpcli.data.fetch")
    unneeded += ("mlpcli.data.augment", "mlpcli.data.datasets", "mlpcli.report", "hashlib")
    unneeded += ("tempfile", "gzip", "PIL.JpegImagePlugin", "PIL.TiffImagePlugin")
    code = (
        "import sys\n"
        "started = set(sys.modules)\n"  # what the interpreter's site loaded is not ours
        "from mlpcli.cli import cli\n"
        "try:\n"
        "    cli(['predict', sys.argv[1], '--checkpoint', sys.argv[2]])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        f"print(sorted(m for m in set(sys.modules) - started if m.startswith({unneeded!r})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "digit.png"), str(tmp_path / "c.npz")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.splitlines()[-1] == "[]"  # after the prediction


def test_each_command_is_found_under_the_name_it_calls_itself():
    from mlpcli.cli import COMMANDS, cli

    assert {name: cli.get_command(None, name).name for name in COMMANDS} == {
        name: name for name in COMMANDS
    }
