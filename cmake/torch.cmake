# libtorch: Debian's CPU libtorch 1.13 here, the CUDA libtorch 2.x of the torch wheel on GPU machines
# (CMAKE_PREFIX_PATH from `python3 -c 'import torch;print(torch.utils.cmake_prefix_path)'`).
# Exposes speechllm::torch, an interface target with the include paths, libraries and ABI flag.
find_package(Torch REQUIRED)
string(REGEX MATCH "^[0-9]+" SPEECHLLM_TORCH_MAJOR "${Torch_VERSION}")
add_library(speechllm_torch_deps INTERFACE)
add_library(speechllm::torch ALIAS speechllm_torch_deps)
target_link_libraries(speechllm_torch_deps INTERFACE ${TORCH_LIBRARIES})
target_compile_options(speechllm_torch_deps INTERFACE ${TORCH_CXX_FLAGS})
# The ABI flag must be the same in every translation unit that exchanges std::string with torch.
add_compile_options(${TORCH_CXX_FLAGS})

# speechllm_torch_pch(TARGET): precompiled ATen header for targets with several torch TUs.
function(speechllm_torch_pch target)
  if(SPEECHLLM_TORCH_PCH)
    target_precompile_headers(${target} PRIVATE <ATen/ATen.h>)
  endif()
endfunction()
