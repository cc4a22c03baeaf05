#include "engine/fake_model_runner.h"

#include "absl/strings/str_cat.h"
#include "engine/model/audio_lengths.h"

namespace speechllm::engine {

FakeModelRunner::FakeModelRunner(const Options& options) : options_(options) {
  config_ = *ModelConfig::Preset("tiny");
  config_.stop_token_ids = {kStopToken};
}

int64_t FakeModelRunner::NextToken(int64_t num_audio, int64_t tokens_after_audio) {
  const int64_t generated = tokens_after_audio;  // counts the suffix too; only consistency matters
  if (generated >= 4 + 4 + num_audio / 5) return kStopToken;
  if (generated < 4 + 3) return 50 + generated;
  return 100 + (num_audio / 8) * 7 + generated;
}

std::vector<int64_t> FakeModelRunner::Greedy(int64_t num_audio, int64_t suffix_size,
                                             int max_tokens) {
  std::vector<int64_t> out;
  for (int64_t m = suffix_size; static_cast<int>(out.size()) < max_tokens; ++m) {
    const int64_t token = NextToken(num_audio, m);
    if (token == kStopToken) break;
    out.push_back(token);
  }
  return out;
}

absl::StatusOr<StepResult> FakeModelRunner::Execute(const StepPlan& plan) {
  if (options_.step_delay > absl::ZeroDuration()) absl::SleepFor(options_.step_delay);
  if (steps_++ == options_.fail_at_step) return absl::InternalError("fake device failure");
  step_batch_sizes_.push_back(static_cast<int64_t>(plan.prefills.size()));
  StepResult result;
  for (const EncodeItem& item : plan.encodes) {
    int64_t& rows = audio_rows_[item.id];
    if (item.kind == EncodeItem::Kind::kFull) {
      rows = AudioTokenCount(item.segment->num_valid_frames);
    } else {
      rows += (item.chunk->end_position - item.chunk->first_position) / 2;
    }
    result.audio_tokens.push_back(rows);
  }
  for (const PrefillItem& item : plan.prefills) {
    std::vector<int64_t>& kv = kv_mirror_[item.id];
    if (static_cast<int64_t>(kv.size()) < item.start_position) {
      return absl::InternalError(absl::StrCat("prefill at ", item.start_position, " but only ",
                                              kv.size(), " tokens are cached"));
    }
    kv.resize(item.start_position);
    int64_t audio_needed = 0;
    for (int64_t token : item.token_ids) audio_needed += token == config_.audio_token_id;
    if (audio_needed > 0 && audio_rows_[item.id] < item.first_audio_row + audio_needed) {
      return absl::InternalError("prefill uses audio embeddings that were never encoded");
    }
    std::vector<TokenChoice> choices;
    for (size_t i = 0; i < item.token_ids.size(); ++i) {
      kv.push_back(item.token_ids[i]);
      if (static_cast<int64_t>(i) < item.first_logit_index) continue;
      int64_t num_audio = 0, after_audio = 0;
      for (int64_t token : kv) {
        if (token == config_.audio_token_id) {
          ++num_audio;
          after_audio = 0;
        } else if (num_audio > 0) {
          ++after_audio;
        }
      }
      choices.push_back(TokenChoice{NextToken(num_audio, after_audio), 1.0f});
    }
    result.choices.push_back(std::move(choices));
  }
  return result;
}

void FakeModelRunner::ResetSequence(SequenceId id) {
  audio_rows_.erase(id);
  kv_mirror_.erase(id);
}

}  // namespace speechllm::engine
