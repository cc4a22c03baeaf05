// Per-thread scratch buffers of the tokenizer (Tokenizer::EncodeOrdinary, BpeModel::Merge): kept
// between calls so that a warm thread encodes without allocating, and released after a call that
// grew one past kMaxKeptScratchBytes, so that one huge input does not leave megabytes held by
// every thread that ever encoded one. Called on the encoding thread, on its own thread_locals.
#ifndef SPEECHLLM_ENGINE_MODEL_TOKENIZER_SCRATCH_H_
#define SPEECHLLM_ENGINE_MODEL_TOKENIZER_SCRATCH_H_

#include <cstddef>

namespace speechllm::engine::tokenizer {

// Far above a transcript's or a prompt's needs (a few KiB), far below the server's input limits.
inline constexpr size_t kMaxKeptScratchBytes = size_t{64} << 10;

// Frees `scratch`'s storage when it holds more than kMaxKeptScratchBytes (std::string or
// std::vector); its contents are not kept either way.
template <typename Container>
void ReleaseIfLarge(Container& scratch) {
  if (scratch.capacity() * sizeof(typename Container::value_type) > kMaxKeptScratchBytes) {
    Container().swap(scratch);
  }
}

}  // namespace speechllm::engine::tokenizer

#endif  // SPEECHLLM_ENGINE_MODEL_TOKENIZER_SCRATCH_H_
