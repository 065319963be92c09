"""benchmarks/readme_figures.py (issue #15 item 13): README sections between figures markers are rewritten from the
benchmarks' JSON, ``--check`` names stale, unfed and unshown sections, and the repository's README is in sync with
its committed results (so a figure in the README is one a script measured)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "readme_figures.py"
sys.path.insert(0, str(ROOT / "benchmarks"))

import readme_figures  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)

README = """# project

intro

<!-- figures:speed -->
| old | table |
|---|---|
<!-- /figures:speed -->

between

<!-- figures:accuracy -->
stale text
<!-- /figures:accuracy -->

end
"""


def check(readme: Path, results: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--readme", str(readme), "--results", str(results), *extra],
                          capture_output=True, text=True)


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    readme, results = tmp_path / "README.md", tmp_path / "results"
    readme.write_text(README)
    readme_figures.write_figures("speed", ["model", "FPS"], [["a", 1.5], ["b", 20]], "python bench.py --x",
                                 numeric=True, results=results)
    readme_figures.write_figures("accuracy", ["model", "mAP"], [["a", "0.300"]], "python acc.py", part="1-detect",
                                 results=results)
    readme_figures.write_figures("accuracy", ["model", "mAP"], [["p", "0.666"]], "python acc.py", part="2-pose",
                                 results=results)
    return readme, results


def test_sections_are_rewritten_from_their_json(project: tuple[Path, Path]) -> None:
    readme, results = project
    done = check(readme, results)
    assert done.returncode == 0, done.stderr
    assert "2 section(s) rewritten: speed, accuracy" in done.stdout
    text = readme.read_text()
    assert "| model | FPS |\n|---|---:|\n| a | 1.5 |\n| b | 20 |" in text
    assert "| a | 0.300 |\n| p | 0.666 |" in text  # parts joined in file-name order
    assert "python acc.py" in text and "python bench.py --x" in text and "stale text" not in text
    assert text.startswith("# project\n\nintro\n\n<!-- figures:speed -->\n") and text.endswith("\nend\n")
    assert check(readme, results, "--check").returncode == 0
    again = check(readme, results)
    assert "0 section(s) rewritten" in again.stdout and readme.read_text() == text


def test_check_names_what_is_stale_unfed_or_unshown(project: tuple[Path, Path]) -> None:
    readme, results = project
    check(readme, results)
    data = json.loads((results / "accuracy.2-pose.json").read_text())
    data["rows"] = [["p", "0.401"]]  # a re-measured figure
    (results / "accuracy.2-pose.json").write_text(json.dumps(data))
    readme_figures.write_figures("bench", ["x"], [["1"]], "visionkit bench", results=results)
    readme.write_text(readme.read_text() + "\n<!-- figures:tracking -->\n<!-- /figures:tracking -->\n")
    before = readme.read_text()
    done = check(readme, results, "--check")
    assert done.returncode == 1 and readme.read_text() == before  # --check changes nothing
    assert "section 'accuracy' is stale" in done.stderr and "'speed'" not in done.stderr
    assert "section 'tracking' has no" in done.stderr and "bench.json: no <!-- figures:bench --> section" in done.stderr


def test_parts_with_other_columns_are_refused(project: tuple[Path, Path]) -> None:
    readme, results = project
    readme_figures.write_figures("accuracy", ["model", "AP"], [["z", "1"]], "python acc.py", part="3-x",
                                 results=results)
    done = check(readme, results)
    assert done.returncode == 1 and "parts have different columns" in done.stderr
    assert readme.read_text() == README


def test_bad_figure_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="figure names"):
        readme_figures.write_figures("a b", ["x"], [], "cmd", results=tmp_path)


def test_the_readme_is_in_sync_with_the_committed_results() -> None:
    done = check(ROOT / "README.md", ROOT / "benchmarks" / "results", "--check")
    assert done.returncode == 0, done.stderr
