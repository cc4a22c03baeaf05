#!/usr/bin/env bash
# The libtorch 2.x check of a CPU host (no GPU, no PyPI): in a Debian 13 (trixie) container,
#  1. builds engine/ with its tests and the CUDA kernels against trixie's CPU libtorch 2.6 and runs
#     the unit and model suites (the GPU ones skip);
#  2. builds the GPU run's targets against trixie's CUDA libtorch 2.6 (contrib), which compiles and
#     links the code that only a CUDA libtorch sees (decode graphs, c10/cuda streams and guards).
# Debian 12's libtorch is 1.13; GPU machines run a 2.x wheel. This catches 2.x API breaks before a
# scarce GPU session does. Needs root, Docker (dockerd is started if it is installed but not
# running) and debootstrap. Nothing here is used by CI.
#   tools/compat/torch2_check.sh [WORK_DIR]     (default /tmp/speechllm-torch2; builds are kept there)
# CPU_STAGE=0 skips step 1 (on a 2-core host it takes most of the time; step 2 alone checks what
# only the CUDA libtorch compiles).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-/tmp/speechllm-torch2}
image=speechllm-trixie-dev
mkdir -p "$work"

if ! docker info > /dev/null 2>&1; then
  # This host's Docker has no bridge network (no iptables): containers share the host's network.
  command -v dockerd > /dev/null || { echo "needs Docker: apt-get install docker.io" >&2; exit 2; }
  (dockerd --iptables=false --bridge=none > "$work/dockerd.log" 2>&1 &)
  for _ in $(seq 30); do docker info > /dev/null 2>&1 && break; sleep 1; done
fi

if ! docker image inspect "$image" > /dev/null 2>&1; then
  # No registry is reachable here: the base image is a debootstrap of trixie, imported.
  rootfs=$work/rootfs-trixie
  [[ -d $rootfs/usr ]] || debootstrap --variant=minbase --components=main,contrib,non-free trixie \
    "$rootfs" http://deb.debian.org/debian > "$work/debootstrap.log"
  tar -C "$rootfs" -c . | docker import - speechllm-trixie-base > /dev/null
  docker rm -f speechllm-trixie-setup > /dev/null 2>&1 || true
  docker run --name speechllm-trixie-setup --network host speechllm-trixie-base bash -c '
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q && apt-get install -y -q --no-install-recommends build-essential cmake \
      ninja-build ccache pkg-config libabsl-dev libtorch-dev libopenblas0-pthread libgtest-dev \
      libgmock-dev libbenchmark-dev nlohmann-json3-dev libopus-dev libopusfile-dev libsoxr-dev \
      libogg-dev libpcre2-dev libicu-dev python3 ca-certificates
    # The CUDA 12 runtime libraries libtorch_cuda loads (all but cuDNN, see below). Its gloo and
    # tensorpipe builds conflict with the CPU libtorch'"'"'s packages: they are unpacked beside it.
    apt-get install -y -q --no-install-recommends libcudart12 libcublas12 libcublaslt12 libcufft11 \
      libcurand10 libcusparse12 libcusolver11 libnvrtc12 libnccl2 libnvtoolsext1
    mkdir -p /opt/debs && cd /opt/debs &&
      apt-get download libtorch-cuda-dev libtorch-cuda-2.6 libgloo-cuda-0 libtensorpipe-cuda-0
    mkdir -p /opt/torch-cuda && for deb in /opt/debs/*.deb; do dpkg -x "$deb" /opt/torch-cuda; done
    rm -rf /opt/debs /var/lib/apt/lists/*' > "$work/image.log" 2>&1
  docker commit speechllm-trixie-setup "$image" > /dev/null
  docker rm speechllm-trixie-setup > /dev/null
fi

cuda_mount=()
[[ -x /usr/local/cuda/bin/nvcc ]] && cuda_mount=(-v "$(readlink -f /usr/local/cuda)":/usr/local/cuda:ro)
docker run --rm --network host -e CPU_STAGE="${CPU_STAGE:-1}" -v "$root":/src:ro -v "$work":/build "${cuda_mount[@]}" "$image" bash -c '
  set -u
  # sm_90 as on the GPU machines: without a device, torch'"'"'s CMake autodetects a list CUDA 13 refuses.
  export CCACHE_DIR=/build/ccache CCACHE_BASEDIR=/src TORCH_CUDA_ARCH_LIST=9.0
  common=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DSPEECHLLM_ENGINE_ONLY=ON
          -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -Wno-dev)
  [[ -x /usr/local/cuda/bin/nvcc ]] && common+=(-DSPEECHLLM_WITH_CUDA=ON)
  status=0
  if [[ $CPU_STAGE != 0 ]]; then
  echo "== CPU libtorch $(dpkg-query -W -f="\${Version}" libtorch-dev): build, unit + model suites"
  cmake -S /src -B /build/cpu "${common[@]}" > /build/configure-cpu.log 2>&1 &&
    cmake --build /build/cpu -j "$(nproc)" > /build/build-cpu.log 2>&1 ||
    { grep -E "error|FAILED" /build/build-cpu.log /build/configure-cpu.log | head -20; status=1; }
  (cd /build/cpu && ctest -L "unit|model" -j "$(nproc)" --timeout 300 > /build/ctest-cpu.log 2>&1) ||
    status=1
  grep -E "tests passed|\(Failed\)|Not Run" /build/ctest-cpu.log
  fi
  [[ -x /usr/local/cuda/bin/nvcc ]] || { echo "no CUDA toolkit: the CUDA libtorch build is skipped"; exit $status; }
  echo "== CUDA libtorch 2.6: the GPU run targets, compiled, linked and run without a device"
  # Debian'"'"'s torch 2.6 CMake config names libnvToolsExt, which CUDA 13 no longer ships.
  echo "if(NOT TARGET CUDA::nvToolsExt)
    add_library(CUDA::nvToolsExt INTERFACE IMPORTED)
  endif()" > /build/nvtx_shim.cmake
  # The CUDA 12 runtime and cuDNN that libtorch_cuda loads are not installable here (cuDNN comes
  # from a downloader package): the link leaves their symbols to run time, still resolving every
  # symbol of ours, and the tests are listed at ctest time instead of after the build.
  cmake -S /src -B /build/cuda "${common[@]}" -DCMAKE_PREFIX_PATH=/opt/torch-cuda/usr \
    -DCMAKE_PROJECT_INCLUDE=/build/nvtx_shim.cmake -DCMAKE_EXE_LINKER_FLAGS=-Wl,--allow-shlib-undefined \
    -DCMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE=PRE_TEST > /build/configure-cuda.log 2>&1 &&
    cmake --build /build/cuda -j "$(nproc)" --target paged_attention_gpu_test fused_layers_gpu_test \
      decode_graphs_test encoder_graphs_test device_upload_test chunk_prefill_gpu_test golden_parity_test model_load_test \
      engine_streaming_test speechllm-bench speechllm-model-timing > /build/build-cuda.log 2>&1 ||
    { grep -E "error|FAILED|undefined" /build/build-cuda.log /build/configure-cuda.log | head -20; status=1; }
  # The binaries run on the CUDA libtorch without a device (GPU tests skip, CPU tests run), as the
  # GPU run'"'"'s last stage does. cuDNN is a downloader package here: a stand-in library that defines
  # each cudnn symbol libtorch_cuda binds (it is linked with BIND_NOW) as abort() lets it load.
  lib=/opt/torch-cuda/usr/lib/x86_64-linux-gnu
  mkdir -p /build/cudnn-stand-in
  { echo "#include <stdlib.h>"
    nm -D --undefined-only "$lib/libtorch_cuda.so" | awk "{print \$2}" | sed "s/@.*//" | grep "^cudnn" |
      sort -u | sed "s/.*/void &(void) { abort(); }/"; } > /build/cudnn-stand-in/cudnn.c
  gcc -shared -fPIC -Wl,-soname,libcudnn.so.9 -o /build/cudnn-stand-in/libcudnn.so.9 \
    /build/cudnn-stand-in/cudnn.c
  for t in tests/model/golden_parity_test tests/model/model_load_test tests/model/engine_streaming_test \
           tests/model/decode_graphs_test tests/model/encoder_graphs_test tests/model/device_upload_test \
           tests/model/chunk_prefill_gpu_test \
           tests/model/paged_attention_gpu_test tests/model/fused_layers_gpu_test; do
    [[ -x /build/cuda/$t ]] || continue
    (cd /build/cuda && LD_LIBRARY_PATH=/build/cudnn-stand-in:$lib:/opt/torch-cuda/usr/lib \
      SPEECHLLM_GOLDEN_DIR=/src/tests/data/qwen2-audio-tiny-golden timeout 300 "$t" \
      > "/build/cuda-$(basename "$t").log" 2>&1)
    code=$?
    echo "$t on the CUDA libtorch, no device: exit $code, $(grep -c "^\[       OK" "/build/cuda-$(basename "$t").log") passed"
    (( code == 0 )) || status=1
  done
  nm -C /build/cuda/engine/model/CMakeFiles/speechllm_model_torch.dir/decode_graphs.cc.o |
    grep -q "CUDAGraph::replay" && echo "decode graphs: compiled in (CUDAGraph::replay referenced)" ||
    { echo "decode graphs: NOT compiled in against the CUDA libtorch"; status=1; }
  nm -C /build/cuda/engine/model/CMakeFiles/speechllm_model_torch.dir/encoder_graphs.cc.o |
    grep -q "CUDAGraph::replay" && echo "encoder graphs: compiled in (CUDAGraph::replay referenced)" ||
    { echo "encoder graphs: NOT compiled in against the CUDA libtorch"; status=1; }
  exit $status'
echo "torch2_check: OK (logs under $work)"
