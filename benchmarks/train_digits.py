"""The README's training table, re-measured: the UCI digits exported by ``samples/export_digits.py``, then
``visionkit train classify`` (30 epochs, defaults otherwise) and ``visionkit eval classify`` on the held-back test/
split for each model, all through the console scripts as a user would run them.

    python benchmarks/train_digits.py --figures   # lenet5 and mlp (about a minute on 2 CPU cores)
    python benchmarks/readme_figures.py           # then rewrite README.md's <!-- figures:training --> section

The test top-1 is the run's own (card.json ``metrics``, scored at the best epoch's weights); the eval column is the
same weights scored again by ``visionkit eval classify``, so the two must agree. Time is the wall-clock time of the
``train`` command, start-up included.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, add_figures_option, print_table, setup_env

COLUMNS = ("model", "parameters", "held-back test top-1 (360 images)", "`visionkit eval classify` on test/", "time")
MODELS = {"lenet5": "`lenet5` (32x32 input)", "mlp": "`mlp` (8x8 input, 2x128 hidden)"}
EPOCHS = 30


def run(command: list[str]) -> None:
    """Run one command; exit with its last error line if it fails."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")


def measure(model: str, digits: Path, runs: Path, epochs: int) -> list[str]:
    """Train ``model`` on ``digits`` and score it again with eval; its table row."""
    from visionkit.summary import summarize

    visionkit = str(Path(sys.executable).with_name("visionkit"))
    out, report = runs / model, runs / f"{model}-eval.json"
    t0 = time.perf_counter()
    run([visionkit, "train", "classify", "--data", str(digits), "--model", model, "--epochs", str(epochs),
         "--out", str(out)])
    seconds = time.perf_counter() - t0
    metrics = json.loads((out / "card.json").read_text(encoding="utf-8"))["metrics"]
    run([visionkit, "eval", "classify", "--model", str(out), "--images", str(digits / "test"),
         "--labels", str(digits / "test" / "labels.csv"), "--json", str(report), "--exist-ok"])
    score = json.loads(report.read_text(encoding="utf-8"))
    correct, images = metrics["test_correct"], metrics["test_images"]
    row = [MODELS[model], f"{summarize(str(out)).params:,}", f"**{100 * correct / images:.1f} %** ({correct}/{images})",
           f"{score['top1'] / score['images']:.3f} ({score['top1']}/{score['images']})", f"{seconds:.0f} s"]
    print(" | ".join(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(MODELS), help="train one model only")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"epochs per model (default: {EPOCHS}, the "
                        "README's; other values are for trying the script, not for the README)")
    add_figures_option(parser, "training")
    args = parser.parse_args()
    if args.figures and (args.only or args.epochs != EPOCHS):
        parser.error("--figures writes the whole README table: leave out --only and --epochs")
    setup_env()
    with tempfile.TemporaryDirectory() as tmp:
        digits = Path(tmp) / "digits"
        run([sys.executable, str(ROOT / "samples" / "export_digits.py"), str(digits)])
        rows = [measure(model, digits, Path(tmp), args.epochs) for model in MODELS if args.only in (None, model)]
    print_table(args, COLUMNS, rows)


if __name__ == "__main__":
    main()
