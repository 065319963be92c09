"""What the benchmark scripts share: environment set-up, the alternating timer, the random-weight model builders
(the YOLO one is the tests', tests/random_models.py) and the table printing. Not a benchmark itself; the scripts
are run as ``python benchmarks/bench_*.py``, which puts this folder on ``sys.path``, and import it first:

    from _common import setup_env
    setup_env()        # before visionkit or ultralytics is imported
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

Case = tuple[str, str, Callable[[], object], Callable[[], object]]  # name, reference, direct call, visionkit call
# The per-task speed scripts' table; each writes its rows as one part of README's figures:speed section.
PAIR_COLUMNS = ("benchmark", "case", "reference", "reference median ms", "reference p90 ms", "visionkit median ms",
                "visionkit p90 ms", "ratio (median, lower is better)")


# -- environment -------------------------------------------------------------------------------------------
def setup_env() -> None:
    """Put the repository on ``sys.path``, look for weights in ../shared/weights and keep ultralytics offline,
    not installing anything and quiet (each only where the environment does not say otherwise). Call it before
    visionkit or ultralytics is imported."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(1, str(ROOT / "tests"))  # the random-model and clip helpers the tests use
    os.environ.setdefault("VISIONKIT_WEIGHTS", str(SHARED / "weights"))
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    os.environ.setdefault("YOLO_VERBOSE", "False")


# -- timing ------------------------------------------------------------------------------------------------
def timed(fn: Callable[[], object]) -> float:
    """Milliseconds one call of ``fn`` takes."""
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def time_alternating(sides: Mapping[str, Callable[[], object]], runs: int, warmup: int = 0, *,
                     mirror: bool = True) -> dict[str, list[float]]:
    """Per-run milliseconds of every side: ``warmup`` untimed rounds of all sides, then ``runs`` timed rounds.

    Every round calls each side once, so load from other processes and CPU clock changes hit all sides alike.
    With ``mirror`` every other round goes in reverse order (A B, B A, A B ...), so no side is always first;
    without it every round keeps the given order (A B, A B ...). Each timed call comes after a pause of
    ``visionkit.bench.SETTLE_S``, so threads a side leaves spinning (ONNX Runtime's default) do not land in the next
    side's time."""
    from visionkit.bench import SETTLE_S

    for _ in range(warmup):
        for fn in sides.values():
            fn()
    order = list(sides.items())
    times: dict[str, list[float]] = {key: [] for key in sides}
    for i in range(runs):
        for key, fn in (order if i % 2 == 0 or not mirror else order[::-1]):
            time.sleep(SETTLE_S)
            times[key].append(timed(fn))
    return times


def time_pair(ref: Callable[[], object], ours: Callable[[], object], runs: int, warmup: int, *,
              mirror: bool = True) -> tuple[list[float], list[float]]:
    """``time_alternating`` for a reference and visionkit: (reference ms, visionkit ms), one value per run."""
    times = time_alternating({"ref": ref, "ours": ours}, runs, warmup, mirror=mirror)
    return times["ref"], times["ours"]


def p90(values: Sequence[float]) -> float:
    import numpy as np

    return float(np.percentile(values, 90))


# -- output ------------------------------------------------------------------------------------------------
def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[object]], *, numeric: bool = False) -> str:
    """A markdown table; with ``numeric`` every column after the first is right-aligned."""
    rule = "|---|" + "---:|" * (len(columns) - 1) if numeric else "|" + "---|" * len(columns)
    return "\n".join(["| " + " | ".join(columns) + " |", rule,
                      *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)])


def add_figures_option(parser: argparse.ArgumentParser, section: str, part: str | None = None) -> None:
    """--figures: the script's table also goes to README.md's ``figures:SECTION`` (see readme_figures.py); with
    ``part``, as that part of a section several scripts fill (their rows joined in part-name order)."""
    target = f"{section}.{part}" if part else section
    parser.add_argument("--figures", action="store_true",
                        help=f"also write the table to benchmarks/results/{target}.json, from which "
                             f"benchmarks/readme_figures.py rewrites README.md's figures:{section} section")
    parser.set_defaults(figures_section=section, figures_part=part)


def print_table(args: argparse.Namespace, columns: Sequence[str], rows: Sequence[Sequence[object]], *,
                numeric: bool = False, section: str | None = None, part: str | None = None) -> None:
    """Print the markdown table, and with --figures (``add_figures_option``) write it for the README, with the
    command line that re-measures it. ``section``/``part`` name another table than the option's (a script that
    writes several)."""
    print("\n" + markdown_table(columns, rows, numeric=numeric))
    if args.figures:
        from readme_figures import write_figures

        command = " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}",
                            *(a for a in sys.argv[1:] if a != "--figures")])
        print(write_figures(section or args.figures_section, columns, rows, command,
                            part=part if section else args.figures_part, numeric=numeric))


def report(name: str, ref_name: str, t_ref: list[float], t_ours: list[float]) -> list[str]:
    """Print median, p90 and ratio of one reference/visionkit pair; return its row of the PAIR_COLUMNS table."""
    m_ref, m_ours = statistics.median(t_ref), statistics.median(t_ours)
    print(f"{name}\n  {ref_name:<28} median {m_ref:8.1f} ms   p90 {p90(t_ref):8.1f} ms"
          f"\n  {'visionkit':<28} median {m_ours:8.1f} ms   p90 {p90(t_ours):8.1f} ms"
          f"\n  ratio visionkit/{ref_name.split()[0]}: {m_ours / m_ref:.3f} (median), "
          f"{p90(t_ours) / p90(t_ref):.3f} (p90)", flush=True)
    return [Path(sys.argv[0]).stem, name, ref_name, f"{m_ref:.1f}", f"{p90(t_ref):.1f}", f"{m_ours:.1f}",
            f"{p90(t_ours):.1f}", f"{m_ours / m_ref:.2f}"]


# -- inputs ------------------------------------------------------------------------------------------------
def read_image(path: str | None) -> np.ndarray:
    """The BGR image at ``path`` (None: ultralytics' bus.jpg); exits with a message if it cannot be read."""
    import cv2

    if path is None:
        from ultralytics.utils import ASSETS

        image = cv2.imread(str(ASSETS / "bus.jpg"))
    else:
        image = cv2.imread(path)
    if image is None:
        sys.exit(f"cannot read image {path}")
    return image


def add_pair_options(parser: argparse.ArgumentParser, runs: int, warmup: int, device_help: str, part: str) -> None:
    """--image, --runs, --warmup, --device and --figures (part ``part`` of README's speed table) of the scripts
    that time reference/visionkit pairs."""
    from ultralytics.utils import ASSETS

    parser.add_argument("--image", default=str(ASSETS / "bus.jpg"), help="image (default: ultralytics' bus.jpg)")
    parser.add_argument("--runs", type=int, default=runs, help=f"timed runs per side (default {runs})")
    parser.add_argument("--warmup", type=int, default=warmup, help=f"untimed runs per side first (default {warmup})")
    parser.add_argument("--device", default="cpu", help=f"{device_help}cpu, cuda or cuda:N (default cpu)")
    add_figures_option(parser, "speed", part)


def describe_pair_run(args: argparse.Namespace, image: np.ndarray) -> None:
    """The first line of the pair scripts' output: image, runs, warm-up, torch version and threads."""
    import torch

    print(f"image {Path(args.image).name} {image.shape[1]}x{image.shape[0]}, {args.runs} runs after {args.warmup} "
          f"warm-up, torch {torch.__version__} with {torch.get_num_threads()} threads")


def direct_cases_parser(doc: str | None, image_help: str, part: str) -> argparse.ArgumentParser:
    """--image (default None: bus.jpg), --runs and --figures (part ``part`` of README's speed table) of the
    scripts that time direct calls against visionkit."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", help=image_help)
    parser.add_argument("--runs", type=int, default=30, help="timed runs per side (default: 30)")
    add_figures_option(parser, "speed", part)
    return parser


def run_direct_cases(makers: Iterable[Callable[[np.ndarray, Path], Case]], args: argparse.Namespace) -> None:
    """Build each case (in a temporary folder) for the image at ``args.image`` (see read_image), time direct
    against visionkit (``args.runs`` rounds), report each case and print the table (written for the README with
    --figures). Two untimed calls of each side first (direct twice, then visionkit twice); the timed rounds keep
    the order direct, visionkit."""
    import torch

    image = read_image(args.image)
    print(f"image {image.shape[1]}x{image.shape[0]}, {args.runs} runs, torch threads {torch.get_num_threads()}")
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for make in makers:
            name, reference, direct, ours = make(image, Path(tmp))
            for fn in (direct, ours):  # warm-up: lazy model build, first-call allocations
                fn()
                fn()
            t_direct, t_ours = time_pair(direct, ours, args.runs, warmup=0, mirror=False)
            rows.append(report(name, reference, t_direct, t_ours))
    print_table(args, PAIR_COLUMNS, rows)


# -- models ------------------------------------------------------------------------------------------------
def onnx_session(path: Path, quiet: bool = False) -> Any:
    """A CPU onnxruntime session; ``quiet`` logs errors only."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if quiet:
        options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def seeded_yolo(yaml: str) -> Any:
    """An ultralytics model built from ``yaml`` with seed 0 (random weights)."""
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    return YOLO(yaml)


def build_random_yolo(yaml: str, path: Path) -> Path:
    """Seeded random ultralytics checkpoint with image-dependent scores, as the parity tests build it
    (tests/random_models.py): BatchNorm calibrated on bus.jpg and zidane.jpg, class bias raised, so NMS sees a
    realistic number of boxes."""
    import cv2
    from random_models import build_yolo
    from ultralytics.utils import ASSETS

    return build_yolo(yaml, path, [cv2.imread(str(ASSETS / n)) for n in ("bus.jpg", "zidane.jpg")])


def random_torchvision(arch: str, path: Path, **kwargs: Any) -> tuple[torch.nn.Module, Callable[..., Any]]:
    """torchvision's ``arch`` with seed-0 random weights (``kwargs`` go to ``get_model``), in eval mode, its
    state dict saved to ``path``; returned with the transforms of the weights enum the catalog names for it."""
    import torch
    import torchvision

    from visionkit import catalog

    torch.manual_seed(0)
    model = torchvision.models.get_model(arch, weights=None, **kwargs).eval()
    torch.save(model.state_dict(), path)
    transforms = torchvision.models.get_weight(catalog.get_entry(arch).extra["weights_enum"]).transforms()
    return model, transforms
