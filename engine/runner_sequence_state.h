// RunnerSequenceState: what TorchModelRunner keeps per sequence between steps (the segment's
// encoder K/V cache and its audio embeddings), and RunnerStateSnapshot, which saves the entries a
// step's encoder items touch and puts them back when the step fails (ModelRunner::Execute's
// contract). Owned by TorchModelRunner; engine loop thread only.
#ifndef SPEECHLLM_ENGINE_RUNNER_SEQUENCE_STATE_H_
#define SPEECHLLM_ENGINE_RUNNER_SEQUENCE_STATE_H_

#include <ATen/ATen.h>

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/node_hash_map.h"
#include "engine/model/audio_encoder.h"
#include "engine/step_plan.h"

namespace speechllm::engine {

struct RunnerSequenceState {
  EncoderKvCache encoder_cache;
  // The segment's audio embeddings, [rows, hidden_size] per encoder pass, in order: kept as
  // pieces so that a pass appends without copying what came before.
  std::vector<at::Tensor> audio;
  int64_t audio_rows = 0;
  // Views of rows [first, first + count) of the audio (possibly spanning pieces) onto `parts`.
  void AppendAudio(int64_t first, int64_t count, std::vector<at::Tensor>* parts) const {
    int64_t start = 0;
    for (const at::Tensor& piece : audio) {
      const int64_t rows = piece.size(0);
      const int64_t begin = std::max(first, start), end = std::min(first + count, start + rows);
      if (begin < end) parts->push_back(piece.narrow(0, begin - start, end - begin));
      start += rows;
    }
  }
};

// Node-based: EncodeBatch holds pointers to several entries while new ones are inserted.
using RunnerStates = absl::node_hash_map<SequenceId, RunnerSequenceState>;

// The states of the sequences with encoder items in a step, as they were before it. Copies share
// the tensors: a pass replaces a cache's and the audio's tensors rather than writing into them
// (AudioEncoder::EncodeBatch), so the copies keep the old values. Decoder passes only read states.
class RunnerStateSnapshot {
 public:
  RunnerStateSnapshot(const RunnerStates& states, const std::vector<EncodeItem>& items) {
    for (const EncodeItem& item : items) {
      if (std::any_of(saved_.begin(), saved_.end(),
                      [&](const auto& entry) { return entry.first == item.id; })) {
        continue;  // several blocks of one sequence
      }
      const auto it = states.find(item.id);
      saved_.emplace_back(item.id, it == states.end()
                                       ? std::nullopt
                                       : std::optional<RunnerSequenceState>(it->second));
    }
  }
  // Puts every saved state back (and drops states the step created).
  void Restore(RunnerStates* states) {
    for (auto& [id, state] : saved_) {
      if (state.has_value()) {
        (*states)[id] = std::move(*state);
      } else {
        states->erase(id);
      }
    }
    saved_.clear();
  }

 private:
  std::vector<std::pair<SequenceId, std::optional<RunnerSequenceState>>> saved_;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_RUNNER_SEQUENCE_STATE_H_
