#!/usr/bin/env bash
# The checks that need a GPU (CI has none): the CUDA tests, then the whole suite with CUDA visible
# (inference picks the GPU by itself; tests of modules a GPU image may lack, such as open3d, fail to
# collect there and the rest still run), then the model benchmark on the GPU.
#   bash tools/gpu_check.sh [OUT_DIR]     # logs: OUT_DIR/{cuda_tests,suite,bench_cuda}.log
set -uo pipefail
out=${1:-gpu_check}
mkdir -p "$out"
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())" || exit 1
status=0
python3 -m pytest -q -p no:cacheprovider -rs tests/models/test_cuda_fusions.py tests/tools/test_benchlib.py \
    tests/engine/test_fusion_configs_train.py -k "cuda or gpu" 2>&1 | tee "$out/cuda_tests.log" || status=1
python3 -m pytest -q -p no:cacheprovider --continue-on-collection-errors tests 2>&1 | tee "$out/suite.log" || status=1
PYTHONUNBUFFERED=1 python3 tools/bench_model.py --device cuda --agents 1 2 5 --repeat 10 2>&1 \
    | tee "$out/bench_cuda.log" || status=1
exit $status
