#!/usr/bin/env bash
# One sitting of the GPU rows of docs/benchmarks.md on a lent CUDA machine (issue 21), in order of priority:
# extraction and training throughput (ViT-B/16, 256x128, bf16), then re_ranking with the torch-CUDA neighbour
# search at Market and MSMT17 scale, then torch.compile. Each step has its own time limit, so one slow step
# cannot eat the others; every table goes to $OUT (or ./gpu_out). Needs torch with CUDA, transformers,
# omegaconf, numpy and scipy; no hydra, mlflow, optuna or faiss.
#   bash benchmarks/gpu_sitting.sh
set -u
out=${OUT:-gpu_out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$out/device.txt"
nproc | tee -a "$out/device.txt"
tp="python3 benchmarks/throughput.py --backbone vit_b16 --device cuda --precision bf16"
{
  timeout 120 $tp --what all --steps 50 --warmup 10
  timeout 90 $tp --what extract --eval-batch 1024 --steps 20 --warmup 3
  timeout 90 $tp --what train --batch 256 --steps 20 --warmup 5
} 2>&1 | tee "$out/throughput.md"
{
  timeout 120 python3 benchmarks/rerank_bench.py --scale market --backend torch --skip-metrics
  timeout 180 python3 benchmarks/rerank_bench.py --scale msmt17 --backend torch --dtype float32 --skip-gram --skip-metrics
} 2>&1 | tee "$out/rerank.md"
timeout 100 $tp --what train --batch 256 --steps 20 --warmup 5 --compile 2>&1 | tee "$out/compile.md"
