// StepObserver: a hook through which the Engine reports every executed step (time, batch size,
// tokens) to whoever wants per-step statistics (the server's Prometheus metrics), so engine/ never
// depends on a metrics library. Implemented and owned outside the engine; OnStep runs on the
// engine loop thread.
#ifndef SPEECHLLM_ENGINE_STEP_OBSERVER_H_
#define SPEECHLLM_ENGINE_STEP_OBSERVER_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/step_plan.h"

namespace speechllm::engine {

// One executed (non-empty) step.
struct StepRecord {
  absl::Duration duration;     // ModelRunner::Execute, wall time
  bool ok = true;              // false: the step failed for every sequence in it
  int64_t sequences = 0;       // prefill items, a decode token counting as one (the batch size)
  int64_t decoder_tokens = 0;  // every token through the decoder pass
  int64_t prefill_tokens = 0;  // tokens of every item but decode tokens: prompt, audio, drafts
  int64_t encoder_items = 0;   // encoder calls (chunks and full re-encodes)
  int64_t encoder_tokens = 0;  // audio embeddings the encoder produced (25 per second of audio)
  bool decode_graph = false;   // the decoder pass replayed a CUDA graph (StepResult::decode_graph)
  // StepResult's split of `duration` (zero for a failed step). On a GPU these are host times
  // unless the runner waits for the device between the passes (TorchRunnerConfig).
  absl::Duration encoder_time, decoder_time;
  absl::Duration wait_time;  // StepResult::wait_time, the device wait within decoder_time
  // Sequences failed alone: the step failed as a whole and ran again in halves
  // (ExecuteIsolatingFailures), and these sequences' own parts failed.
  int64_t failed_sequences = 0;
  int64_t executions = 1;  // ModelRunner::Execute calls the step took, reruns included
  // Whether any sequence failed in the step, all of them or some alone.
  bool any_failed() const { return !ok || failed_sequences > 0; }
};

class StepObserver {
 public:
  virtual ~StepObserver() = default;
  // Called after every non-empty step; must be quick, must not block and must not call the Engine.
  virtual void OnStep(const StepRecord& step) = 0;
};

// The record of `plan` executed in `duration` with `result` in `executions` runner calls. A block
// chunk yields one embedding per two conv positions; a full re-encode yields the embeddings it
// reports holding.
inline StepRecord MakeStepRecord(const StepPlan& plan, const absl::StatusOr<StepResult>& result,
                                 absl::Duration duration, int64_t executions = 1) {
  StepRecord record;
  record.duration = duration;
  // A step run again in parts in which every sequence failed alone failed as a whole too.
  record.ok = result.ok() && (result->failed_sequences.empty() ||
                              result->failed_sequences.size() < plan.sequence_ids().size());
  record.executions = executions;
  record.decode_graph = result.ok() && result->decode_graph;
  if (result.ok()) {
    record.failed_sequences = static_cast<int64_t>(result->failed_sequences.size());
    record.encoder_time = result->encoder_time;
    record.decoder_time = result->decoder_time;
    record.wait_time = result->wait_time;
  }
  record.sequences = static_cast<int64_t>(plan.prefills.size());
  for (const PrefillItem& item : plan.prefills) {
    const auto tokens = static_cast<int64_t>(item.token_ids.size());
    record.decoder_tokens += tokens;
    // A one-token piece of a longer prefill (no choice) is prefill too.
    if (tokens > 1 || item.first_logit_index != 0) record.prefill_tokens += tokens;
  }
  record.encoder_items = static_cast<int64_t>(plan.encodes.size());
  for (size_t i = 0; i < plan.encodes.size(); ++i) {
    const EncodeItem& item = plan.encodes[i];
    if (item.kind == EncodeItem::Kind::kBlock && item.chunk != nullptr) {
      record.encoder_tokens += (item.chunk->end_position - item.chunk->first_position) / 2;
    } else if (item.segment != nullptr && item.segment->num_audio_embeddings > 0) {
      // Precomputed rows (Recognize's embeddings, an embedding cache hit): no encoder ran.
    } else if (result.ok() && i < result->audio_tokens.size()) {
      record.encoder_tokens += result->audio_tokens[i];
    }
  }
  return record;
}

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_STEP_OBSERVER_H_
