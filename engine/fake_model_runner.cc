#include "engine/fake_model_runner.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "engine/model/audio_lengths.h"

namespace speechllm::engine {

FakeModelRunner::FakeModelRunner(const Options& options)
    : options_(options),
      token_pool_(static_cast<size_t>(options.num_kv_blocks * options.block_size), kNeverWritten) {
  config_ = *ModelConfig::Preset("tiny");
  config_.stop_token_ids = {kStopToken};
}

int64_t FakeModelRunner::NextToken(int64_t num_audio, int64_t tokens_after_audio) {
  const int64_t generated = tokens_after_audio;  // counts the suffix too; only consistency matters
  if (generated >= 4 + 4 + num_audio / 5) return kStopToken;
  if (generated < 4 + 3) return 50 + generated;
  return 100 + (num_audio / 8) * 7 + generated;
}

float FakeModelRunner::LogProbability(int64_t token_id) {
  return -0.05f * static_cast<float>(1 + token_id % 4);
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
  struct Saved {
    SequenceId id;
    std::optional<int64_t> audio_rows, encoder_positions;
  };
  std::vector<Saved> saved;
  auto find = [](const absl::flat_hash_map<SequenceId, int64_t>& map, SequenceId id) {
    const auto it = map.find(id);
    return it == map.end() ? std::nullopt : std::optional<int64_t>(it->second);
  };
  for (const EncodeItem& item : plan.encodes)
    saved.push_back({item.id, find(audio_rows_, item.id), find(encoder_positions_, item.id)});
  absl::StatusOr<StepResult> result = Run(plan);
  if (result.ok()) return result;
  auto restore = [](absl::flat_hash_map<SequenceId, int64_t>& map, SequenceId id,
                    std::optional<int64_t> value) {
    if (value.has_value()) {
      map[id] = *value;
    } else {
      map.erase(id);
    }
  };
  for (const Saved& entry : saved) {  // saved before the step, whatever it changed
    restore(audio_rows_, entry.id, entry.audio_rows);
    restore(encoder_positions_, entry.id, entry.encoder_positions);
  }
  return result;
}

absl::StatusOr<StepResult> FakeModelRunner::Run(const StepPlan& plan) {
  if (options_.first_step_entered != nullptr && !options_.first_step_entered->HasBeenNotified()) {
    options_.first_step_entered->Notify();
  }
  if (options_.hold_steps_until != nullptr) options_.hold_steps_until->WaitForNotification();
  if (options_.step_delay > absl::ZeroDuration()) absl::SleepFor(options_.step_delay);
  if (steps_++ == options_.fail_at_step) return absl::InternalError("fake device failure");
  step_batch_sizes_.push_back(static_cast<int64_t>(plan.prefills.size()));
  StepResult result;
  int64_t positions = 0;
  for (const EncodeItem& item : plan.encodes) {
    int64_t& rows = audio_rows_[item.id];
    int64_t& cached = encoder_positions_[item.id];
    if (item.kind == EncodeItem::Kind::kFull) {
      const bool precomputed = item.segment->num_audio_embeddings > 0;
      rows = precomputed ? item.segment->num_audio_embeddings
                         : AudioTokenCount(item.segment->num_valid_frames);
      if (!precomputed) positions += ConvOutputLength(item.segment->num_valid_frames);
      cached = 0;
      if (!precomputed && item.segment->return_embeddings && rows > 0) {
        // Row r holds r in every column: what the embedding cache stores for the fake model.
        const int64_t hidden = config_.text.hidden_size;
        result.returned_embeddings.resize(plan.encodes.size());
        std::vector<float>& returned =
            result.returned_embeddings[static_cast<size_t>(&item - plan.encodes.data())];
        returned.resize(static_cast<size_t>(rows * hidden));
        for (int64_t r = 0; r < rows; ++r)
          std::fill_n(returned.begin() + r * hidden, hidden, static_cast<float>(r));
      }
    } else {
      // Blocks extend the encoder state as the torch runner's cache does (audio_encoder.cc).
      if (item.chunk->first_position != cached) {
        return absl::InternalError(absl::StrCat("encoder cache of sequence ", item.id, " holds ",
                                                cached, " positions, block starts at ",
                                                item.chunk->first_position));
      }
      cached = item.chunk->end_position;
      rows += (item.chunk->end_position - item.chunk->first_position) / 2;
      positions += item.chunk->end_position - item.chunk->first_position;
    }
    result.audio_tokens.push_back(rows);
  }
  step_encoder_positions_.push_back(positions);
  const int64_t bs = options_.block_size;
  for (const auto& [source, destination] : plan.block_copies) {
    std::copy_n(token_pool_.begin() + source * bs, bs, token_pool_.begin() + destination * bs);
  }
  step_tokens_.push_back(plan.num_tokens());
  for (const PrefillItem& item : plan.prefills) {
    if (options_.fail_on_token_id >= 0 &&
        std::find(item.token_ids.begin(), item.token_ids.end(), options_.fail_on_token_id) !=
            item.token_ids.end()) {
      return absl::InternalError(absl::StrCat("fake model failure: sequence ", item.id,
                                              " holds token ", options_.fail_on_token_id));
    }
    prefill_tokens_ += static_cast<int64_t>(item.token_ids.size());
    auto slot = [&](int64_t position) -> int64_t& {
      return token_pool_[item.block_table[position / bs] * bs + position % bs];
    };
    const int64_t end = item.start_position + static_cast<int64_t>(item.token_ids.size());
    if (static_cast<int64_t>(item.block_table.size()) * bs < end)
      return absl::InternalError("block table too short");
    for (int64_t p = 0; p < item.start_position; ++p) {
      if (slot(p) == kNeverWritten)
        return absl::InternalError(absl::StrCat("position ", p, " was never written"));
    }
    const int64_t audio_needed = item.num_audio_rows;
    if (audio_needed < 0 || audio_needed > static_cast<int64_t>(item.token_ids.size()))
      return absl::InternalError("more audio rows than tokens");
    for (int64_t i = 0; i < audio_needed; ++i) {
      if (item.token_ids[i] != config_.audio_token_id)
        return absl::InternalError("an audio row without the audio placeholder id");
    }
    if (audio_needed > 0 && audio_rows_[item.id] < item.first_audio_row + audio_needed) {
      return absl::InternalError("prefill uses audio embeddings that were never encoded");
    }
    std::vector<TokenChoice> choices;
    for (size_t i = 0; i < item.token_ids.size(); ++i) {
      const int64_t position = item.start_position + static_cast<int64_t>(i);
      slot(position) =
          static_cast<int64_t>(i) < item.num_audio_rows ? kAudioSlot : item.token_ids[i];
      if (static_cast<int64_t>(i) < item.first_logit_index) continue;
      int64_t num_audio = 0, after_audio = 0;
      for (int64_t p = 0; p <= position; ++p) {
        if (slot(p) == kAudioSlot) {
          ++num_audio;
          after_audio = 0;
        } else if (num_audio > 0) {
          ++after_audio;
        }
      }
      const int64_t token = NextToken(num_audio, after_audio);
      const float log_probability = LogProbability(token);
      const bool last = i + 1 == item.token_ids.size();
      choices.push_back(TokenChoice{
          token, 1.0f, log_probability,
          last || item.token_ids[i + 1] == token ? log_probability : kUnchosenLogProbability});
    }
    result.choices.push_back(std::move(choices));
  }
  const absl::Duration cost = SimulatedCost(plan, positions, steps_);
  if (cost > absl::ZeroDuration()) absl::SleepFor(cost);
  return result;
}

absl::Duration FakeModelRunner::SimulatedCost(const StepPlan& plan, int64_t encoder_positions,
                                              int64_t step) const {
  const Options::StepCost& cost = options_.step_cost;
  if (plan.empty()) return absl::ZeroDuration();
  absl::Duration total = cost.base + cost.per_encoder_position * encoder_positions;
  if (cost.outlier_every_steps > 0 && step % cost.outlier_every_steps == 0) total += cost.outlier;
  for (const PrefillItem& item : plan.prefills) {
    const int64_t tokens = static_cast<int64_t>(item.token_ids.size());
    total += tokens == 1 ? cost.per_decode_row : cost.per_prefill_token * tokens;
  }
  return total;
}

void FakeModelRunner::ResetSequence(SequenceId id) {
  audio_rows_.erase(id);
  encoder_positions_.erase(id);
}

}  // namespace speechllm::engine
