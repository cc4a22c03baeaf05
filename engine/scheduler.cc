#include "engine/scheduler.h"

#include <algorithm>

#include "engine/model/audio_lengths.h"

namespace speechllm::engine {
namespace {

// Drops the queued chunks of the segment `s` is finalizing: its final re-encodes the whole segment
// (or, without wanted text, encodes nothing), so they will never be encoded on their own.
void DropCurrentSegmentChunks(Sequence* s) {
  while (!s->chunks.empty() && s->chunks.front()->segment_index == s->segment_index)
    s->chunks.pop_front();
}

}  // namespace

Scheduler::Scheduler(const EngineConfig& config, const ModelConfig& model, int64_t num_kv_blocks,
                     int64_t block_size)
    : config_(config),
      model_(model),
      kv_(num_kv_blocks, block_size),
      prefixes_(&kv_, /*max_entries=*/32) {}

Sequence* Scheduler::Find(SequenceId id) {
  auto it = sequences_.find(id);
  return it == sequences_.end() ? nullptr : it->second.get();
}

void Scheduler::AddSequence(SequenceId id, const SequenceConfig& config) {
  auto sequence = std::make_unique<Sequence>();
  sequence->id = id;
  sequence->config = config;
  sequences_[id] = std::move(sequence);
  order_.push_back(id);
}

void Scheduler::RemoveSequence(SequenceId id) {
  if (Find(id) == nullptr) return;
  kv_.Free(id);
  prefixes_.EvictUnused();
  runner_resets_.push_back(id);
  sequences_.erase(id);
  order_.erase(std::remove(order_.begin(), order_.end(), id), order_.end());
}

void Scheduler::StartSegment(SequenceId id, SegmentStart start) {
  if (Sequence* s = Find(id); s != nullptr && !s->failed) s->starts.push_back(std::move(start));
}

void Scheduler::AddChunk(SequenceId id, std::unique_ptr<EncoderChunk> chunk) {
  Sequence* s = Find(id);
  if (s == nullptr || s->failed) return;
  // Without partials an exact final re-encodes the whole segment: chunks would be wasted work.
  if (!s->config.partial_updates && s->config.final_mode == FinalMode::kExact) return;
  s->chunks.push_back(std::move(chunk));
}

void Scheduler::EndSegment(SequenceId id, std::unique_ptr<SegmentEnd> end) {
  if (Sequence* s = Find(id); s != nullptr && !s->failed) s->ends.push_back(std::move(end));
}

bool Scheduler::IsStop(int64_t token_id) const {
  const auto& stops = model_.stop_token_ids;
  return std::find(stops.begin(), stops.end(), token_id) != stops.end();
}

int64_t Scheduler::AudioTokensOf(const EncoderChunk& chunk) const {
  return (chunk.end_position - chunk.first_position) / 2;  // pooling pairs inside the chunk
}

void Scheduler::MaybeBeginSegment(Sequence* s) {
  if (s->phase != SegmentPhase::kWaitingStart || s->starts.empty()) return;
  SegmentStart start = std::move(s->starts.front());
  s->starts.pop_front();
  s->segment_index = start.segment_index;
  s->prefix_ids = std::move(start.prefix_ids);
  s->suffix_ids = std::move(start.suffix_ids);
  s->kv_tokens = 0;
  s->audio_in_kv = 0;
  s->update_open = false;
  s->final_started = false;
  s->forced.clear();
  s->TruncateHypothesis(0);
  s->pending_token = false;
  s->new_tokens_in_update = 0;
  s->commit_conflicts = 0;
  s->prefill_rest.reset();  // none is left when a segment closes; never carried into the next
  // A prefix other sequences already computed is shared block by block.
  kv_.Free(s->id);
  const PrefixRegistry::Match match = prefixes_.Lookup(s->prefix_ids);
  s->prefix_cached_tokens = match.tokens;
  if (match.tokens > 0) {
    kv_.Fork(s->id, match.blocks);
    s->kv_tokens = match.tokens;
  }
  // Work of earlier segments can no longer be used.
  while (!s->chunks.empty() && s->chunks.front()->segment_index < s->segment_index)
    s->chunks.pop_front();
  while (!s->ends.empty() && s->ends.front()->segment_index < s->segment_index) s->ends.pop_front();
  const int64_t prefix_size = static_cast<int64_t>(s->prefix_ids.size());
  if (s->prefix_cached_tokens >= prefix_size) {
    // No prefix, or all of it shared (whole blocks): the segment listens at once, so its audio
    // work is ordered and budgeted as audio work (it used to pass as cheap prefix work).
    s->phase = SegmentPhase::kListening;
    s->kv_tokens = prefix_size;
  } else {
    s->phase = SegmentPhase::kPrefix;
  }
}

bool Scheduler::AddPrefill(Sequence* s, StepPlan* plan, int64_t start_position,
                           std::vector<int64_t> token_ids, int64_t num_audio_rows,
                           int64_t first_audio_row, int64_t first_logit_index) {
  kv_.Truncate(s->id, start_position);
  const absl::Status reserved =
      kv_.Reserve(s->id, start_position + static_cast<int64_t>(token_ids.size()));
  if (!reserved.ok()) {
    // Its encode items leave the plan too: Fail resets the runner's state of the sequence before
    // the step runs, and encoding onto the reset state would fail every stream of the step.
    plan->encodes.erase(std::remove_if(plan->encodes.begin(), plan->encodes.end(),
                                       [&](const EncodeItem& e) { return e.id == s->id; }),
                        plan->encodes.end());
    Fail(s, reserved, &interrupted_outputs_);
    return false;
  }
  PrefillItem item;
  item.id = s->id;
  item.start_position = start_position;
  item.token_ids = std::move(token_ids);
  item.num_audio_rows = num_audio_rows;
  item.first_audio_row = first_audio_row;
  item.block_table = kv_.BlockTable(s->id);
  item.first_logit_index = first_logit_index;
  plan->prefills.push_back(std::move(item));
  return true;
}

bool Scheduler::PlanVerify(Sequence* s, StepPlan* plan, std::vector<int64_t> tokens,
                           bool with_suffix) {
  const int64_t new_audio = static_cast<int64_t>(tokens.size());
  const int64_t first_audio_row = s->audio_in_kv;
  const int64_t start = s->frontier();
  if (!with_suffix) {
    s->verify_new_audio = new_audio;
    s->activity = Activity::kAdvance;
    return AddPrefill(s, plan, start, std::move(tokens), new_audio, first_audio_row, new_audio);
  }
  // Draft: the committed tokens, then the previous hypothesis where it continues them.
  std::vector<int64_t> draft = s->forced;
  if (s->hypothesis.size() > s->forced.size() &&
      std::equal(s->forced.begin(), s->forced.end(), s->hypothesis.begin())) {
    draft.insert(draft.end(), s->hypothesis.begin() + s->forced.size(), s->hypothesis.end());
  }
  if (static_cast<int>(draft.size()) > s->config.max_new_tokens_per_segment) {
    draft.resize(s->config.max_new_tokens_per_segment);
  }
  tokens.insert(tokens.end(), s->suffix_ids.begin(), s->suffix_ids.end());
  tokens.insert(tokens.end(), draft.begin(), draft.end());
  s->draft = std::move(draft);
  s->verify_first_position = start;
  s->verify_new_audio = new_audio;
  s->activity = Activity::kVerify;
  const int64_t first_logit = new_audio + static_cast<int64_t>(s->suffix_ids.size()) - 1;
  return AddPrefill(s, plan, start, std::move(tokens), new_audio, first_audio_row, first_logit);
}

bool Scheduler::PlanSequence(Sequence* s, StepPlan* plan, int64_t* budget) {
  if (s->failed) return false;
  MaybeBeginSegment(s);
  s->activity = Activity::kIdle;
  if (s->phase == SegmentPhase::kWaitingStart) return false;
  const size_t prefills_before = plan->prefills.size();
  const int64_t prefix_size = static_cast<int64_t>(s->prefix_ids.size());
  if (s->prefill_rest.has_value()) {  // the next piece of a long prefill (its encoding is done)
    PrefillItem rest = std::move(*s->prefill_rest);
    s->prefill_rest.reset();
    s->activity = s->activity_when_done;
    if (!AddPrefill(s, plan, rest.start_position, std::move(rest.token_ids), rest.num_audio_rows,
                    rest.first_audio_row, rest.first_logit_index))
      return false;
  } else if (s->phase == SegmentPhase::kPrefix) {
    s->activity = Activity::kPrefix;
    // The shared whole blocks stay; only the rest of the prefix is computed.
    const int64_t cached = s->prefix_cached_tokens;
    if (!AddPrefill(s, plan, cached,
                    std::vector<int64_t>(s->prefix_ids.begin() + cached, s->prefix_ids.end()), 0, 0,
                    prefix_size - cached))
      return false;
  } else {
    const bool has_end = !s->ends.empty() && s->ends.front()->segment_index == s->segment_index;
    const bool has_chunks =
        !s->chunks.empty() && s->chunks.front()->segment_index == s->segment_index;
    if (has_end && !s->final_started) {
      s->end_in_step = std::move(s->ends.front());
      s->ends.pop_front();
      const SegmentEnd& end = *s->end_in_step;
      s->update_open = true;  // an open partial update is superseded by the final
      s->final_started = true;
      s->phase = SegmentPhase::kFinalizing;
      s->pending_token = false;
      s->new_tokens_in_update = 0;
      s->forced = end.forced_prefix_ids;
      s->audio_end_seconds = end.audio_end_seconds;
      // A held end waited for the embedding cache, not for the engine, until its answer.
      BeginUpdate(s, end.endpoint_time, std::max(end.endpoint_time, end.cache_answer_time));
      if (!end.text_wanted) {  // an empty final at once: nothing to encode or decode
        DropCurrentSegmentChunks(s);
        s->TruncateHypothesis(0);
        FinishUpdate(s, &interrupted_outputs_);
        return false;
      }
      int64_t new_audio = 0;
      if (s->config.final_mode == FinalMode::kExact || end.num_audio_embeddings > 0) {
        DropCurrentSegmentChunks(s);
        new_audio = end.num_audio_embeddings > 0 ? end.num_audio_embeddings
                                                 : AudioTokenCount(end.num_valid_frames);
        s->audio_in_kv = 0;  // the whole segment is re-encoded with full attention
        if (new_audio > 0)
          plan->encodes.push_back({s->id, EncodeItem::Kind::kFull, nullptr, s->end_in_step.get()});
      } else {
        while (!s->chunks.empty() && s->chunks.front()->segment_index == s->segment_index) {
          s->chunks_in_step.push_back(std::move(s->chunks.front()));
          s->chunks.pop_front();
        }
        const bool has_tail = end.tail.end_position > end.tail.first_position;
        for (const auto& chunk : s->chunks_in_step) new_audio += AudioTokensOf(*chunk);
        if (has_tail) new_audio += AudioTokensOf(end.tail);
        // Encoded only when the final has audio tokens: an encode of a segment whose empty final
        // is already out would rebuild the runner's encoder state after its reset, and the next
        // segment's first block would no longer fit it (failing the whole step).
        if (s->audio_in_kv + new_audio > 0) {
          for (const auto& chunk : s->chunks_in_step) {
            plan->encodes.push_back({s->id, EncodeItem::Kind::kBlock, chunk.get(), nullptr});
          }
          if (has_tail) {
            plan->encodes.push_back({s->id, EncodeItem::Kind::kBlock, &end.tail, nullptr});
          }
        }
      }
      if (s->audio_in_kv + new_audio == 0) {  // nothing to transcribe: an empty final
        s->chunks_in_step.clear();
        FinishUpdate(s, &interrupted_outputs_);
        return false;
      }
      if (!PlanVerify(s, plan, std::vector<int64_t>(new_audio, model_.audio_token_id), true))
        return false;
    } else if (has_chunks && !s->final_started) {
      if (s->update_open)
        FinishUpdate(s, &interrupted_outputs_);  // new audio interrupts the update
      int64_t new_audio = 0;
      while (!s->chunks.empty() && s->chunks.front()->segment_index == s->segment_index) {
        new_audio += AudioTokensOf(*s->chunks.front());
        s->chunks_in_step.push_back(std::move(s->chunks.front()));
        s->chunks.pop_front();
      }
      for (const auto& chunk : s->chunks_in_step) {
        plan->encodes.push_back({s->id, EncodeItem::Kind::kBlock, chunk.get(), nullptr});
      }
      const EncoderChunk& last = *s->chunks_in_step.back();
      s->forced = last.forced_prefix_ids;
      s->audio_end_seconds = last.audio_end_seconds;
      BeginUpdate(s, last.arrival_time, s->chunks_in_step.front()->arrival_time);
      s->update_open = s->config.partial_updates;
      s->new_tokens_in_update = 0;
      if (!PlanVerify(s, plan, std::vector<int64_t>(new_audio, model_.audio_token_id),
                      s->config.partial_updates)) {
        return false;
      }
    } else if (s->update_open && s->pending_token) {
      s->activity = Activity::kDecode;
      if (!AddPrefill(s, plan, s->kv_tokens, {s->hypothesis.back()}, 0, 0, 0)) return false;
    } else {
      return false;
    }
  }
  if (plan->prefills.size() > prefills_before) {
    KeepWithinBudget(s, &plan->prefills.back(), *budget);
    *budget -= static_cast<int64_t>(plan->prefills.back().token_ids.size());
  }
  return true;
}

void Scheduler::BeginUpdate(Sequence* s, absl::Time input_time, absl::Time waiting_since) {
  s->input_time = input_time;
  s->compute_time = absl::ZeroDuration();
  s->queue_wait = std::max(absl::ZeroDuration(), plan_time_ - waiting_since);
  s->commit_conflicts = 0;
}

int Scheduler::NextWork(Sequence* s, absl::Time* since) {
  *since = absl::InfiniteFuture();
  if (s->failed) return 0;
  MaybeBeginSegment(s);
  if (s->phase == SegmentPhase::kWaitingStart) return 0;
  if (s->phase == SegmentPhase::kPrefix) {
    *since = absl::InfinitePast();  // cheap and needed before anything else of the segment
    return 2;
  }
  if (s->prefill_rest.has_value()) {  // keeps the place the whole item had
    *since = s->prefill_rest_since;
    return 2;
  }
  const bool has_end = !s->ends.empty() && s->ends.front()->segment_index == s->segment_index;
  const bool has_chunks =
      !s->chunks.empty() && s->chunks.front()->segment_index == s->segment_index;
  if ((has_end || has_chunks) && !s->final_started) {
    *since = has_end ? s->ends.front()->endpoint_time : s->chunks.front()->arrival_time;
    return !has_end && s->config.partials_unsent ? 3 : 2;  // drafts nobody reads go last
  }
  if (s->update_open && s->pending_token) {
    *since = s->input_time;
    return 1;
  }
  return 0;
}

StepPlan Scheduler::Schedule() {
  // Continuous batching: one decode token for every sequence in an update first (cheap, and each
  // update's latency grows with its decode steps), then the other work, most overdue first.
  struct Candidate {
    int kind;
    absl::Time since;
    size_t order;
    Sequence* sequence;
  };
  plan_time_ = absl::Now();
  std::vector<Candidate> candidates;
  const size_t n = order_.size();
  for (size_t i = 0; i < n; ++i) {
    Sequence* s = Find(order_[(next_start_ + i) % n]);
    absl::Time since;
    const int kind = NextWork(s, &since);
    if (kind != 0) candidates.push_back({kind, since, i, s});
  }
  if (n > 0) next_start_ = (next_start_ + 1) % n;
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) {
                     if (a.kind != b.kind) return a.kind < b.kind;
                     return a.since < b.since;
                   });
  StepPlan plan;
  plan.live_sequences = num_sequences();
  int64_t budget = config_.max_step_tokens;
  int64_t encoder_budget = config_.max_step_encoder_positions;
  for (const Candidate& candidate : candidates) {
    if (budget <= 0) break;
    // Encoder work past the step's share waits (most overdue first next time); the first encoder
    // work of a step always goes, so every segment progresses, and work without encoder positions
    // goes whatever is left (the budget can be overdrawn).
    const int64_t positions = PendingEncoderPositions(candidate.sequence);
    if (positions > 0 && positions > encoder_budget && !plan.encodes.empty()) continue;
    // Nor does an item that encodes start with a piece of a few tokens when the step has other
    // work: its whole encode would join the step for almost no decoder progress.
    if (positions > 0 && budget < kv_.block_size() && !plan.prefills.empty()) continue;
    const size_t encodes_before = plan.encodes.size();
    const bool had_rest = candidate.sequence->prefill_rest.has_value();
    PlanSequence(candidate.sequence, &plan, &budget);
    if (!had_rest && candidate.sequence->prefill_rest.has_value())
      candidate.sequence->prefill_rest_since = candidate.since;
    // What was planned, not the estimate: an end without text, an empty final or a refused
    // reservation encodes nothing and leaves the budget to the streams after it.
    for (size_t i = encodes_before; i < plan.encodes.size(); ++i) {
      encoder_budget -= EncodePositions(plan.encodes[i]);
    }
  }
  return plan;
}

std::vector<SequenceId> Scheduler::TakeRunnerResets() {
  std::vector<SequenceId> resets = std::move(runner_resets_);
  runner_resets_.clear();
  return resets;
}

bool Scheduler::HasWork() const {
  if (!interrupted_outputs_.empty()) return true;
  for (const auto& [id, s] : sequences_) {
    if (s->failed) continue;
    if (s->phase == SegmentPhase::kWaitingStart) {
      if (!s->starts.empty()) return true;
      continue;
    }
    if (s->phase == SegmentPhase::kPrefix || s->prefill_rest.has_value()) return true;
    // Work of later segments waits for their StartSegment.
    if (!s->chunks.empty() && s->chunks.front()->segment_index == s->segment_index &&
        !s->final_started)
      return true;
    if (!s->ends.empty() && s->ends.front()->segment_index == s->segment_index && !s->final_started)
      return true;
    if (s->update_open && s->pending_token) return true;
  }
  return false;
}

}  // namespace speechllm::engine
