#!/usr/bin/env bash
# The prepared device check: step timings, whole-run quality/time, batch throughput, the
# CUDA tests, fast-model inference and training, video with a fast model, then a 4096 px
# run. About 10 minutes in all; run it with timeout_s=600.
# Run on a GPU machine from the repo root; results go to $OUT (or benchmarks/results).
set -uo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu_env.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.version.cuda)" | tee -a "$OUT/gpu_env.txt"
timeout 170 python3 benchmarks/bench_step.py --device cuda --sizes 512 1024 2048 \
    --steps 30 --warmup 5 2>&1 | tee "$OUT/bench_step_h200.jsonl"
timeout 130 python3 benchmarks/bench_quality.py --device cuda --size 512 --steps 300 \
    2>&1 | tee "$OUT/bench_quality_h200.jsonl"
timeout 90 python3 benchmarks/bench_batch.py --device cuda --size 512 --batches 1 4 16 \
    --steps 30 --weights random-vgg19 2>&1 | tee "$OUT/bench_batch_h200.jsonl"
timeout 60 python3 -m pytest -q -p no:cacheprovider tests/test_fast_paths.py --device cuda \
    2>&1 | tee "$OUT/pytest_cuda.txt"
timeout 90 python3 benchmarks/bench_fast.py --device cuda --repeats 10 \
    --train-iterations 20 2>&1 | tee "$OUT/bench_fast_h200.txt"
# Video with a fast model: an untrained width-16 network paints as fast as a trained one.
python3 - <<'PY'
from painterly.fast.model_file import ModelInfo, save_model
from painterly.fast.network import make_network
info = ModelInfo(16, 5, [], "offline", {}, 0, "bench")
save_model("/tmp/w16.safetensors", make_network(16, 5, seed=0), info)
PY
timeout 90 python3 benchmarks/bench_video.py --frames 48 --size 320 \
    --model /tmp/w16.safetensors --device cuda 2>&1 | tee "$OUT/bench_video_model_h200.jsonl"
# A 4096 px output with the offline encoder: fits untiled on an H200.
timeout 120 python3 benchmarks/bench_tiles.py --device cuda --size 4096 \
    --output "$OUT/gpu_4096.jpg" 2>&1 | tee "$OUT/bench_tiles_4096_h200.jsonl"
