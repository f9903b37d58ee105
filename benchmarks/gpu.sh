#!/usr/bin/env bash
# One command for a CUDA machine: every CUDA test, then the GPU tables (fused core vs cuDNN,
# training step fp32 vs bf16 autocast, search fp32 vs bf16), bounded to about 10 minutes.
# On a machine without CUDA it says so and exits 0.
#
#   bash benchmarks/gpu.sh            # or: make gpu-check
#
# Uses .venv/bin/python when present (make venv), else python3; a CUDA build of torch must be
# installed there first (pip install torch --index-url ... for your CUDA version).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu-check: no CUDA device visible to torch here; nothing to run"
  exit 0
fi
"$PY" -c "import torch; print('gpu-check:', torch.cuda.get_device_name(), 'torch', torch.__version__)"
status=0
step() {  # step NAME SECONDS CMD... : run with a time limit, keep going on failure
  local name=$1 limit=$2; shift 2
  echo; echo "== $name"
  timeout "$limit" "$@" || { echo "gpu-check: $name failed or timed out (exit $?)"; status=1; }
}
step "CUDA tests" 240 "$PY" -m pytest -q -m cuda -p no:cacheprovider
step "fused core vs cuDNN" 150 "$PY" -m benchmarks.rnn_core --device cuda --repeats 5
step "train step fp32 vs bf16" 90 "$PY" -m benchmarks.train_step --device cuda --vocab 4000 \
  --steps 10 --precision fp32 bf16 --decoder bahdanau:feed luong_general:nofeed
step "search fp32 vs bf16" 120 "$PY" -m benchmarks.search --device cuda --repeats 2 \
  --precision fp32 bf16
exit $status
