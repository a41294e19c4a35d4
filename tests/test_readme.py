"""The README's set-up commands are the ones CI runs."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    lines = (ROOT / "README.md").read_text().splitlines()
    fence = lines.index("```sh")
    return lines[fence + 1 : lines.index("```", fence)]


def test_ci_runs_exactly_the_readme_test_command():
    install_and_run, install_and_test = _readme_commands()[:2]
    assert install_and_run.startswith("pip install . && mlp train")
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci_lines[-1] == install_and_test
