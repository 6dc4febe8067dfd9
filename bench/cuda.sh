#!/usr/bin/env bash
# The GPU checks and timings, in one go on a CUDA machine (docs/speed.md has the results):
#   1. the fused IF and running-sum kernels against the eager loops, on the GPU
#      (tests/test_fused_steps.py);
#   2. bench/speed.py on VGG-16, ResNet-18 and the Fashion-MNIST net, T = 8 and 32, batch 256,
#      with the eager loops and SpikingJelly (when importable) timed in the same run;
#   3. where the time goes: bench/breakdown.py on VGG-16 and ResNet-18 at T = 32;
#   4. the CUDA tests (tests/test_cuda.py: agreement with the CPU engine, schedules, CLI);
#   5. VGG-16 at T = 32 with 8 steps per chunk instead of all 32.
# Each step has its own time limit, so one that fails or hangs leaves the others' results.
# Usage: bash bench/cuda.sh [OUTDIR]   (from the repository root; snnconv from src/)
set -u
out=${1:-out/cuda}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py=${PYTHON:-python3}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv \
  | tee "$out/gpu.txt"
$py -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" \
  | tee -a "$out/gpu.txt"

echo "== 1. fused kernel on the GPU"
timeout 120 $py -m pytest -q -p no:cacheprovider tests/test_fused_steps.py 2>&1 \
  | tee "$out/tests-fused.txt" | tail -4

echo "== 2. speed, batch 256"
timeout 240 $py bench/speed.py --device cuda --batch-size 256 --timesteps 8,32 \
  --models vgg16,resnet18,fashion-vgg --repeats 10 --reference spikingjelly --compare-eager \
  2> "$out/speed-cuda.err" | tee "$out/speed-cuda.jsonl"
tail -3 "$out/speed-cuda.err"

echo "== 3. where the time goes"
for m in vgg16 resnet18; do
  timeout 60 $py bench/breakdown.py --device cuda --model $m --timesteps 32 --batch-size 256 \
    --rows 15 2>&1
done > "$out/breakdown.txt"
grep -A3 "^== \|Self CUDA time total" "$out/breakdown.txt" | grep -v "^--$" | cut -c1-160

echo "== 4. CUDA tests"
timeout 120 $py -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 \
  | tee "$out/tests-cuda.txt" | tail -6

echo "== 5. VGG-16, T = 32 in chunks of 8"
timeout 60 $py bench/speed.py --device cuda --batch-size 256 --timesteps 32 --models vgg16 \
  --repeats 10 --chunk 8 2> "$out/speed-chunk8.err" | tee "$out/speed-cuda-chunk8.jsonl"

# a short table last: the rows' main figures
$py - "$out" <<'EOF'
import json, pathlib, sys
for f in sorted(pathlib.Path(sys.argv[1]).glob("speed-cuda*.jsonl")):
    for line in f.read_text().splitlines():
        r = json.loads(line)
        ref, eager = r.get("reference", {}), r.get("eager_neurons", {})
        print(f"{r['model']:12} T={r['timesteps']:<3} chunk={r['chunk']:<3} "
              f"ratio={r['dense_limit_ratio']:.3f} "
              f"cl={r['dense_limit_ratio_ann_channels_last']} "
              f"eager={eager.get('dense_limit_ratio', '-')} "
              f"sj={ref.get('dense_limit_ratio', '-')} vs_sj={ref.get('snnconv_speedup', '-')} "
              f"torch_module={r.get('dense_limit_ratio_torch_module', '-')} "
              f"mem={r['peak_memory_mb']}MB")
EOF
