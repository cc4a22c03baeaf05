// RunnerSequenceState: what TorchModelRunner keeps per sequence between steps (the segment's
// encoder K/V cache and its audio embeddings), and RunnerStateSnapshot, which notes the sizes of
// the entries a step's encoder items touch and cuts them back when the step fails
// (ModelRunner::Execute's contract). Includes libtorch. Owned by TorchModelRunner; engine loop
// thread only.
#ifndef SPEECHLLM_ENGINE_TORCH_RUNNER_STATE_H_
#define SPEECHLLM_ENGINE_TORCH_RUNNER_STATE_H_

#include <ATen/ATen.h>

#include <algorithm>
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

// Enough of the states of a step's sequences to put them back when the step fails
// (ModelRunner::Execute's contract), without holding any tensor: a block pass replaces each layer's
// cached keys and values with tensors that hold the cached rows first and the block's after them,
// and appends pieces to the audio, so cutting those back to the saved sizes restores the state
// (cutting leaves views into the new tensors, only after a failure). A sequence with a
// whole-segment item is put back as absent: that item resets its state before encoding, so a rerun
// starts from the reset either way, and a failed sequence is reset anyway.
class RunnerStateSnapshot {
 public:
  RunnerStateSnapshot(const RunnerStates& states, const std::vector<EncodeItem>& items) {
    for (const EncodeItem& item : items) {
      auto saved = std::find_if(saved_.begin(), saved_.end(),
                                [&](const Saved& entry) { return entry.id == item.id; });
      if (saved == saved_.end()) {
        const auto it = states.find(item.id);
        Saved entry{item.id};
        if (it != states.end()) {
          entry.existed = true;
          entry.num_positions = it->second.encoder_cache.num_positions;
          entry.audio_pieces = it->second.audio.size();
          entry.audio_rows = it->second.audio_rows;
        }
        saved = saved_.insert(saved_.end(), entry);
      }
      if (item.kind == EncodeItem::Kind::kFull) saved->existed = false;
    }
  }
  void Restore(RunnerStates* states) const {
    for (const Saved& entry : saved_) {
      const auto it = states->find(entry.id);
      if (it == states->end()) continue;
      if (!entry.existed) {
        states->erase(it);
        continue;
      }
      RunnerSequenceState& state = it->second;
      EncoderKvCache& cache = state.encoder_cache;
      if (entry.num_positions == 0) {
        cache = EncoderKvCache{};
      } else {
        for (std::vector<at::Tensor>* tensors : {&cache.keys, &cache.values}) {
          for (at::Tensor& rows : *tensors) {
            if (rows.defined() && rows.size(0) > entry.num_positions) {
              rows = rows.narrow(0, 0, entry.num_positions);
            }
          }
        }
        cache.num_positions = entry.num_positions;
      }
      if (state.audio.size() > entry.audio_pieces) state.audio.resize(entry.audio_pieces);
      state.audio_rows = entry.audio_rows;
    }
  }

 private:
  struct Saved {
    SequenceId id = kInvalidSequenceId;
    bool existed = false;  // false: put back as absent
    int64_t num_positions = 0;
    size_t audio_pieces = 0;
    int64_t audio_rows = 0;
  };
  std::vector<Saved> saved_;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_TORCH_RUNNER_STATE_H_
