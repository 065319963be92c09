#!/usr/bin/env bash
# The GPU suite, as is, on a machine with one NVIDIA GPU, from a fresh checkout with ../shared next to it; under 8
# minutes. What it measures: benchmarks/gpu_suite.py (parity CUDA vs CPU, fp16 and TensorRT throughput at batch 1
# and 32 for yolov8n and resnet18, decode/infer overlap on the demo video); figures in OUT/gpu_suite.json and
# OUT/summary.md (OUT: benchmarks/results/gpu unless --out DIR).
#
#   benchmarks/gpu_suite.sh               # on the GPU machine
#   benchmarks/gpu_suite.sh --cpu-check   # the same steps on the CPU with tiny sizes (a dry run, about a minute)
#
# Python: $PYTHON if set, else the checkout's .venv, else the system python3 - the first that imports visionkit
# and its runtime dependencies from this checkout; if none does, a venv is made at .venv-gpu (with the system's site
# packages, so a preinstalled torch is reused) and the package installed into it (`pip install -e .`).
# Exit: 0 all steps ran and parity is within tolerance, 1 a step failed or parity is out of tolerance,
# 2 no CUDA device (without --cpu-check) or no usable Python.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export YOLO_OFFLINE=1 YOLO_AUTOINSTALL=False YOLO_VERBOSE=False
export VISIONKIT_WEIGHTS="${VISIONKIT_WEIGHTS:-$ROOT/../shared/weights}"

imports() { "$1" -c "import visionkit.bench, ultralytics, onnxruntime, torchvision" >/dev/null 2>&1; }

PY=""
for candidate in "${PYTHON:-}" "$ROOT/.venv/bin/python" "$ROOT/.venv-gpu/bin/python" "$(command -v python3 || true)"; do
    if [[ -n "$candidate" && -x "$candidate" ]] && imports "$candidate"; then
        PY="$candidate"
        break
    fi
done
if [[ -z "$PY" ]]; then
    echo "gpu_suite: no python here imports visionkit; making .venv-gpu and installing the package" >&2
    python3 -m venv --system-site-packages "$ROOT/.venv-gpu"
    "$ROOT/.venv-gpu/bin/python" -m pip install -q -e "$ROOT"
    PY="$ROOT/.venv-gpu/bin/python"
    imports "$PY" || { echo "gpu_suite: the install in .venv-gpu does not import visionkit" >&2; exit 2; }
fi
echo "gpu_suite: python $PY" >&2

# 8 minutes in all, whatever a step does: the suite is sized to finish well inside it.
exec timeout --signal=INT 480 "$PY" "$ROOT/benchmarks/gpu_suite.py" "$@"
