"""Keep README.md's measured figures true: every marked README section is rewritten from the JSON a benchmark wrote.

How a table gets into the README (a new benchmark, `visionkit bench`, anything that measures):

1. The producer writes ``benchmarks/results/NAME.json`` (or ``NAME.PART.json``, several parts of one table: rows
   are joined in file-name order, the columns must match) through ``write_figures`` or by hand (a JSON there
   without ``columns``/``rows`` or ``markdown`` is a benchmark's raw data and is left alone; one with ``markdown``
   is a table its producer rendered, used as it is)::

       {"name": "NAME", "command": "how to re-measure it", "measured": "2026-12-02",
        "columns": ["model", "FPS"], "rows": [["yolov5n", "41.2"]], "numeric": false}

   ``rows`` are cells as they should read (numbers already rounded); ``numeric`` right-aligns every column after
   the first; ``command`` and ``measured`` are printed under the table, so a reader can re-measure.
2. README.md holds the table between two marker lines: ``<!-- figures:NAME -->`` and ``<!-- /figures:NAME -->``.
3. ``python benchmarks/readme_figures.py`` rewrites every marked section from its JSON (and says which changed);
   ``--check`` changes nothing and exits 1 naming every stale section (its text differs from its JSON), every
   marker without JSON and every JSON without markers; CI can run it. ``--readme`` / ``--results`` point elsewhere.

Producers: ``benchmarks/accuracy.py`` (README's accuracy table, re-running ``visionkit eval``; marked and in sync),
``accuracy_photos.py --figures`` (the single-photo checks against MediaPipe and ``cv2.FaceDetectorYN``: section
``accuracy-photos``) and ``train_digits.py --figures`` (``visionkit train classify`` on the UCI digits: ``training``).
``bench_live_latency.py --figures`` and ``bench_multistream.py --figures`` write their tables too (``_common``'s
``add_figures_option`` / ``print_table`` do it for any script); their README tables get markers once re-measured
on a machine quiet enough for timings to mean something.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from _common import markdown_table  # this folder is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "benchmarks" / "results"
SECTION = re.compile(r"^<!-- figures:(?P<name>[\w.-]+) -->\n(?P<body>.*?)^<!-- /figures:(?P=name) -->$",
                     re.MULTILINE | re.DOTALL)


def write_figures(name: str, columns: Sequence[str], rows: Sequence[Sequence[object]], command: str, *,
                  part: str | None = None, numeric: bool = False, results: Path = RESULTS) -> Path:
    """Write one table (or one ``part`` of it) for the README section ``name``; returns the file."""
    if not re.fullmatch(r"[\w-]+", name) or (part is not None and not re.fullmatch(r"[\w-]+", part)):
        raise ValueError(f"figure names are letters, digits, '_' and '-': got {name!r} / {part!r}")
    results.mkdir(parents=True, exist_ok=True)
    path = results / (f"{name}.{part}.json" if part else f"{name}.json")
    data = {"name": name, "command": command, "measured": datetime.date.today().isoformat(),
            "columns": list(columns), "rows": [[str(cell) for cell in row] for row in rows], "numeric": numeric}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def load_figures(results: Path = RESULTS) -> dict[str, list[dict]]:
    """Every figures file, grouped by section name (parts in file-name order)."""
    groups: dict[str, list[dict]] = {}
    for path in sorted(results.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not ({"columns", "rows"} <= set(data) or "markdown" in data):
            continue  # a benchmark's raw measurements (e.g. int8.json), not a table for the README
        section = path.name.split(".")[0]
        data.setdefault("name", section)  # a pre-rendered table (``markdown``) is named by its file
        if data.get("name") != section:
            raise SystemExit(f"{path}: its name {data.get('name')!r} is not the file's ({section!r})")
        groups.setdefault(section, []).append(data)
    return groups


def render(parts: list[dict]) -> str:
    """A section's text: the markdown table of all its parts' rows, then how and when it was measured; or the
    parts' own ``markdown``, for producers that render their tables themselves (bench_runtimes, bench_multistream)."""
    if "markdown" in parts[0]:
        return "\n".join(part["markdown"].rstrip("\n") for part in parts) + "\n"
    columns = parts[0]["columns"]
    for part in parts[1:]:
        if part["columns"] != columns:
            raise SystemExit(f"figures {parts[0]['name']}: parts have different columns: {columns} / {part['columns']}")
    lines = [markdown_table(columns, [row for part in parts for row in part["rows"]],
                            numeric=parts[0].get("numeric", False))]
    commands = list(dict.fromkeys(p["command"] for p in parts))
    dates = sorted({p["measured"] for p in parts})
    lines += ["", f"<sub>Generated by `benchmarks/readme_figures.py` from `{'`, `'.join(commands)}`, measured "
                  f"{' to '.join(dict.fromkeys([dates[0], dates[-1]]))}.</sub>"]
    return "\n".join(lines) + "\n"


def update(readme: str, figures: dict[str, list[dict]]) -> tuple[str, list[str], list[str], list[str]]:
    """The README with every marked section rewritten; the names of the sections that changed, those that have no
    figures, and the figures that no section shows."""
    changed: list[str] = []
    missing: list[str] = []
    shown: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        shown.add(name)
        if name not in figures:
            missing.append(name)
            return match[0]
        body = render(figures[name])
        if body != match["body"]:
            changed.append(name)
        return f"<!-- figures:{name} -->\n{body}<!-- /figures:{name} -->"

    text = SECTION.sub(replace, readme)
    return text, changed, missing, sorted(set(figures) - shown)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a section is stale")
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    readme = args.readme.read_text(encoding="utf-8")
    text, changed, missing, unshown = update(readme, load_figures(args.results))
    for name in missing:
        print(f"{args.readme}: section {name!r} has no {args.results}/{name}.json", file=sys.stderr)
    for name in unshown:
        print(f"{args.results}/{name}.json: no <!-- figures:{name} --> section in {args.readme}", file=sys.stderr)
    if args.check:
        for name in changed:
            print(f"{args.readme}: section {name!r} is stale (re-run python benchmarks/readme_figures.py)",
                  file=sys.stderr)
        return 1 if changed or missing or unshown else 0
    if changed:
        args.readme.write_text(text, encoding="utf-8")
    print(f"{args.readme}: {len(changed)} section(s) rewritten" + (f": {', '.join(changed)}" if changed else ""))
    return 1 if missing or unshown else 0


if __name__ == "__main__":
    sys.exit(main())
