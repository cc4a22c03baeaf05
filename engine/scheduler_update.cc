// Scheduler, second half: applying a step's results (Update) to the sequences, i.e. accepting or
// rejecting the verified tokens, appending decoded ones, closing updates and failing sequences.
// Planning (Schedule) is in scheduler.cc; the engine's step thread calls both.
#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "engine/scheduler.h"

namespace speechllm::engine {

void Scheduler::FinishUpdate(Sequence* s, std::vector<SequenceOutput>* out) {
  SequenceOutput output;
  output.id = s->id;
  output.segment_index = s->segment_index;
  output.is_final = s->final_started;
  output.token_ids = s->hypothesis;
  output.token_margins = s->margins;
  output.token_log_probabilities = s->log_probabilities;
  output.commit_conflicts = s->commit_conflicts;
  output.repeated_tokens_cut = s->repeated_tokens_cut;
  s->repeated_tokens_cut = 0;
  output.kv_tokens = s->kv_tokens;
  output.audio_end_seconds = s->audio_end_seconds;
  output.input_time = s->input_time;
  output.compute_time = s->compute_time;
  output.queue_wait = s->queue_wait;
  if (s->final_started && s->returned_rows > 0) {
    output.audio_embeddings = std::move(s->returned_embeddings);
    output.num_audio_embeddings = s->returned_rows;
    output.cache_key = std::move(s->cache_key);
  }
  s->returned_embeddings.clear();
  s->returned_rows = 0;
  out->push_back(std::move(output));
  s->update_open = false;
  s->pending_token = false;
  if (s->final_started) {  // the segment is done: free everything it held
    kv_.Free(s->id);
    prefixes_.EvictUnused();
    runner_resets_.push_back(s->id);
    s->final_started = false;
    s->phase = SegmentPhase::kWaitingStart;
    s->kv_tokens = 0;
    s->audio_in_kv = 0;
  }
}

void Scheduler::Fail(Sequence* s, const absl::Status& status, std::vector<SequenceOutput>* out) {
  if (s->failed) return;
  s->failed = true;
  SequenceOutput output;
  output.id = s->id;
  output.segment_index = s->segment_index;
  output.is_final = true;
  output.status = status;
  out->push_back(std::move(output));
  s->prefill_rest.reset();
  kv_.Free(s->id);
  prefixes_.EvictUnused();  // as a finished segment: shared prefix blocks nobody uses go back
  runner_resets_.push_back(s->id);
  s->chunks.clear();
  s->ends.clear();
  s->starts.clear();
}

void Scheduler::ApplyVerify(Sequence* s, const std::vector<TokenChoice>& choices,
                            std::vector<SequenceOutput>* out) {
  s->audio_in_kv += s->verify_new_audio;
  const int64_t draft_size = static_cast<int64_t>(s->draft.size());
  if (static_cast<int64_t>(choices.size()) != draft_size + 1) {
    Fail(s,
         absl::InternalError(absl::StrCat("runner returned ", choices.size(),
                                          " choices for a draft of ", draft_size)),
         out);
    return;
  }
  const int64_t forced = std::min<int64_t>(static_cast<int64_t>(s->forced.size()), draft_size);
  int64_t accepted = 0;
  while (accepted < draft_size) {
    const bool agrees = choices[accepted].token_id == s->draft[accepted];
    if (accepted < forced) {
      s->commit_conflicts +=
          agrees ? 0 : 1;  // committed text stays, even where the model disagrees
    } else if (!agrees) {
      break;
    }
    ++accepted;
  }
  draft_tokens_ += draft_size - forced;
  draft_accepted_tokens_ += accepted - forced;
  s->hypothesis.assign(s->draft.begin(), s->draft.begin() + accepted);
  s->margins.clear();
  s->log_probabilities.clear();
  for (int64_t i = 0; i < accepted; ++i) {
    s->margins.push_back(choices[i].margin);
    // The draft token's own probability: a committed token the model disagreed with included.
    s->log_probabilities.push_back(choices[i].next_token_log_probability);
  }
  s->kv_tokens = s->verify_first_position + s->verify_new_audio +
                 static_cast<int64_t>(s->suffix_ids.size()) + accepted;
  kv_.Truncate(s->id, s->kv_tokens);
  s->pending_token = false;
  ApplyDecode(s, choices[accepted], out);
}

void Scheduler::ApplyDecode(Sequence* s, const TokenChoice& choice,
                            std::vector<SequenceOutput>* out) {
  if (s->pending_token) ++s->kv_tokens;  // the token fed in this step is now cached
  s->pending_token = false;
  const int max_segment = s->config.max_new_tokens_per_segment;
  if (IsStop(choice.token_id) || static_cast<int>(s->hypothesis.size()) >= max_segment) {
    FinishUpdate(s, out);
    return;
  }
  s->hypothesis.push_back(choice.token_id);
  s->margins.push_back(choice.margin);
  s->log_probabilities.push_back(choice.log_probability);
  s->pending_token = true;
  ++s->new_tokens_in_update;
  ++tokens_generated_;
  if (std::optional<int64_t> keep = FindLoopCut(s->hypothesis, s->config.repetition_guard)) {
    // A loop: the update (or final) ends with its first copy. Committed tokens stay whatever they
    // hold. The KV cache may hold more than the hypothesis now; the next update re-verifies from
    // the audio frontier, and a final frees it.
    const int64_t size = static_cast<int64_t>(s->hypothesis.size());
    const int64_t kept =
        std::max<int64_t>(*keep, std::min<int64_t>(static_cast<int64_t>(s->forced.size()), size));
    s->repeated_tokens_cut += size - kept;
    s->TruncateHypothesis(static_cast<size_t>(kept));
    FinishUpdate(s, out);
    return;
  }
  const bool update_full =
      !s->final_started && s->new_tokens_in_update >= s->config.max_new_tokens_per_update;
  if (update_full || static_cast<int>(s->hypothesis.size()) >= max_segment) FinishUpdate(s, out);
}

std::vector<SequenceOutput> Scheduler::Update(const StepPlan& plan,
                                              absl::StatusOr<StepResult> result,
                                              absl::Duration step_time) {
  std::vector<SequenceOutput> out = std::move(interrupted_outputs_);
  interrupted_outputs_.clear();
  std::vector<Sequence*> touched;
  for (const EncodeItem& item : plan.encodes) touched.push_back(Find(item.id));
  for (const PrefillItem& item : plan.prefills) touched.push_back(Find(item.id));
  if (!result.ok()) {
    for (Sequence* s : touched) {
      if (s != nullptr) Fail(s, result.status(), &out);
    }
  } else if (result->choices.size() != plan.prefills.size()) {
    for (Sequence* s : touched) {
      if (s != nullptr)
        Fail(s, absl::InternalError("runner returned a result of the wrong size"), &out);
    }
  } else {
    // Sequences whose own part of the step failed when it ran again without the others.
    for (const StepResult::SequenceFailure& failure : result->failed_sequences) {
      if (Sequence* s = Find(failure.id); s != nullptr) Fail(s, failure.status, &out);
    }
    // Rows the runner handed back for the embedding cache wait in the sequence for its final.
    for (size_t i = 0; i < plan.encodes.size() && i < result->returned_embeddings.size(); ++i) {
      const EncodeItem& item = plan.encodes[i];
      Sequence* s = Find(item.id);
      if (s == nullptr || s->failed || result->returned_embeddings[i].empty() ||
          item.segment == nullptr || i >= result->audio_tokens.size()) {
        continue;
      }
      s->returned_embeddings = std::move(result->returned_embeddings[i]);
      s->returned_rows = result->audio_tokens[i];
      s->cache_key = item.segment->cache_key;
    }
    const absl::Duration share =
        plan.prefills.empty() ? step_time : step_time / static_cast<double>(plan.prefills.size());
    for (size_t i = 0; i < plan.prefills.size(); ++i) {
      Sequence* s = Find(plan.prefills[i].id);
      if (s == nullptr || s->failed) continue;
      s->compute_time += share;
      switch (s->activity) {
        case Activity::kPrefix:
          s->kv_tokens = static_cast<int64_t>(s->prefix_ids.size());
          s->phase = SegmentPhase::kListening;
          prefixes_.Insert(s->prefix_ids, kv_.BlockTable(s->id));
          break;
        case Activity::kAdvance:
          s->audio_in_kv += s->verify_new_audio;
          s->kv_tokens = s->frontier();
          break;
        case Activity::kVerify:
          ApplyVerify(s, result->choices[i], &out);
          break;
        case Activity::kDecode:
          if (result->choices[i].empty()) {
            Fail(s, absl::InternalError("no choice for a decode token"), &out);
          } else {
            ApplyDecode(s, result->choices[i][0], &out);
          }
          break;
        case Activity::kPiece:  // the rest of the item runs in the next steps
          s->kv_tokens = plan.prefills[i].start_position +
                         static_cast<int64_t>(plan.prefills[i].token_ids.size());
          break;
        case Activity::kIdle:
          break;
      }
    }
  }
  for (Sequence* s : touched) {
    if (s == nullptr) continue;
    s->activity = Activity::kIdle;
    s->chunks_in_step.clear();
    s->end_in_step.reset();
  }
  return out;
}

}  // namespace speechllm::engine
