#include "engine/engine.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "engine/model/audio_lengths.h"
#include "engine/scheduler.h"
#include "engine/status_macros.h"
#include "engine/step_isolation.h"

namespace speechllm::engine {
namespace {

int64_t SteadyNanoseconds() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct Engine::InboxMessage {
  enum class Kind { kAdd, kStart, kChunk, kEnd, kRelease, kEmbeddings };
  InboxMessage(Kind message_kind, SequenceId sequence_id) : kind(message_kind), id(sequence_id) {}
  Kind kind;
  SequenceId id = kInvalidSequenceId;
  SequenceConfig config;
  SegmentStart start;
  std::unique_ptr<EncoderChunk> chunk;
  std::unique_ptr<SegmentEnd> end;
  CachedEmbeddings cached;  // kEmbeddings
};

Engine::Engine(const EngineConfig& config, std::unique_ptr<ModelRunner> runner)
    : config_(config),
      model_config_(runner->config()),
      block_size_(runner->block_size()),
      scheduler_(std::make_unique<Scheduler>(config, runner->config(), runner->num_kv_blocks(),
                                             runner->block_size())),
      runner_(std::move(runner)),
      encoder_counted_(runner_->encoder_kv_bytes_per_position() > 0),
      encoder_budget_(ChooseEncoderBudget()) {
  {
    absl::MutexLock lock(&mutex_);
    stats_.kv_blocks_total = runner_->num_kv_blocks();
    stats_.encoder_kv_positions_total = encoder_budget_.positions;
    stats_.encoder_kv_bytes_per_position = runner_->encoder_kv_bytes_per_position();
    stats_.free_memory_bytes = runner_->free_memory_bytes();
    stats_.encoder_kv_capped_by_memory = encoder_budget_.capped_by_memory;
  }
  absl::MutexLock join(&join_mutex_);
  loop_ = std::thread([this] { Loop(); });
}

Engine::~Engine() { Stop(); }

void Engine::Stop() {
  {
    absl::MutexLock lock(&mutex_);
    stopping_ = true;
  }
  // Any number of threads may stop the engine at once (a drain and a signal, say): one joins, the
  // others wait for it. The loop thread never takes join_mutex_, so it cannot deadlock.
  absl::MutexLock join(&join_mutex_);
  if (loop_.joinable()) loop_.join();
}

absl::Status Engine::Post(InboxMessage message) {
  absl::MutexLock lock(&mutex_);
  if (stopping_) return absl::UnavailableError("engine stopped");
  inbox_.push_back(std::move(message));
  return absl::OkStatus();
}

absl::StatusOr<SequenceId> Engine::AddSequence(const SequenceConfig& config) {
  absl::MutexLock lock(&mutex_);
  SPEECHLLM_ASSIGN_OR_RETURN(const SequenceId id, Reserve(config));
  InboxMessage message{InboxMessage::Kind::kAdd, id};
  message.config = config;
  inbox_.push_back(std::move(message));
  return id;
}

absl::Status Engine::StartSegment(SequenceId id, SegmentStart start) {
  if (static_cast<int64_t>(start.prefix_ids.size()) > config_.max_prefix_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("segment prefix of ", start.prefix_ids.size(),
                                                   " tokens exceeds max_prefix_tokens ",
                                                   config_.max_prefix_tokens));
  }
  SPEECHLLM_ASSIGN_OR_RETURN(const SequenceConfig shape, ShapeOf(id));
  if (start.suffix_ids.empty() ||
      static_cast<int64_t>(start.suffix_ids.size()) > shape.reserved_suffix_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("segment suffix must hold 1 to ", shape.reserved_suffix_tokens,
                     " tokens (the stream's reservation), got ", start.suffix_ids.size()));
  }
  for (const auto* ids : {&start.prefix_ids, &start.suffix_ids}) {
    if (absl::Status s = model_config_.CheckPromptIds(*ids); !s.ok()) return s;
  }
  InboxMessage message{InboxMessage::Kind::kStart, id};
  message.start = std::move(start);
  return Post(std::move(message));
}

absl::Status Engine::CheckChunkShape(const EncoderChunk& chunk) const {
  // The positions are checked before any arithmetic on them.
  const bool positions_ok = chunk.first_position >= 0 && chunk.first_position % 2 == 0 &&
                            chunk.end_position > chunk.first_position &&
                            chunk.end_position <= model_config_.audio.max_source_positions;
  const int64_t frames_expected = positions_ok ? 2 * (chunk.end_position - chunk.first_position) +
                                                     (chunk.first_position == 0 ? 1 : 3)
                                               : 0;
  if (!positions_ok || static_cast<int64_t>(chunk.frames.size()) !=
                           frames_expected * model_config_.audio.num_mel_bins) {
    return absl::InvalidArgumentError(absl::StrCat("malformed encoder chunk [",
                                                   chunk.first_position, ", ", chunk.end_position,
                                                   ") with ", chunk.frames.size(), " values"));
  }
  return absl::OkStatus();
}

absl::Status Engine::ContinueChunks(SequenceId id, int64_t segment_index,
                                    const EncoderChunk& chunk) {
  absl::MutexLock lock(&mutex_);
  const auto r = FindReservation(id);
  if (r == reservations_.end()) return absl::NotFoundError(absl::StrCat("no sequence ", id));
  const int64_t expected = segment_index == r->chunk_segment ? r->next_chunk_position : 0;
  if (chunk.first_position != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        "encoder chunk [", chunk.first_position, ", ", chunk.end_position, ") of segment ",
        segment_index, " does not continue the segment's positions at ", expected));
  }
  r->chunk_segment = segment_index;
  r->next_chunk_position = chunk.end_position;
  return absl::OkStatus();
}

absl::Status Engine::SubmitChunk(SequenceId id, std::unique_ptr<EncoderChunk> chunk) {
  SPEECHLLM_RETURN_IF_ERROR(CheckChunkShape(*chunk));
  // Forced ids become draft tokens: one outside the vocabulary would fail the whole step.
  SPEECHLLM_RETURN_IF_ERROR(
      model_config_.CheckPromptIds(chunk->forced_prefix_ids, /*audio_placeholders=*/true));
  SPEECHLLM_ASSIGN_OR_RETURN(const SequenceConfig shape, ShapeOf(id));
  if (chunk->end_position / 2 > shape.reserved_audio_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("encoder chunk up to position ", chunk->end_position,
                     " passes the stream's reservation of ", shape.reserved_audio_tokens,
                     " audio tokens per segment"));
  }
  SPEECHLLM_RETURN_IF_ERROR(ContinueChunks(id, chunk->segment_index, *chunk));
  InboxMessage message{InboxMessage::Kind::kChunk, id};
  message.chunk = std::move(chunk);
  return Post(std::move(message));
}

absl::Status Engine::EndSegment(SequenceId id, std::unique_ptr<SegmentEnd> end) {
  if (end->num_audio_embeddings > 0) {
    const int64_t hidden = model_config_.text.hidden_size;
    if (end->num_audio_embeddings > config_.max_audio_tokens_per_segment ||
        static_cast<int64_t>(end->audio_embeddings.size()) != end->num_audio_embeddings * hidden ||
        !end->features.empty() || end->num_frames != 0 ||
        end->tail.end_position != end->tail.first_position) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed segment end embeddings: ", end->num_audio_embeddings, " rows of ",
                       hidden, " (at most ", config_.max_audio_tokens_per_segment, " rows) in ",
                       end->audio_embeddings.size(), " values, without features"));
    }
  } else if (end->num_frames < 0 || end->num_valid_frames < 0 ||
             end->num_frames > model_config_.features.max_frames() ||  // before the product
             end->num_frames * model_config_.audio.num_mel_bins !=
                 static_cast<int64_t>(end->features.size()) ||
             end->num_valid_frames > end->num_frames) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed segment end features: ", end->num_valid_frames, " valid of ",
                     end->num_frames, " frames in ", end->features.size(), " values"));
  }
  // A fast final's tail is encoded like a chunk (a malformed one failed every stream of its step).
  if (end->tail.end_position != end->tail.first_position) {
    SPEECHLLM_RETURN_IF_ERROR(CheckChunkShape(end->tail));
  }
  SPEECHLLM_RETURN_IF_ERROR(
      model_config_.CheckPromptIds(end->forced_prefix_ids, /*audio_placeholders=*/true));
  SPEECHLLM_ASSIGN_OR_RETURN(const SequenceConfig shape, ShapeOf(id));
  const int64_t audio_tokens =
      end->num_audio_embeddings > 0
          ? end->num_audio_embeddings
          : std::max(AudioTokenCount(end->num_valid_frames), end->tail.end_position / 2);
  if (audio_tokens > shape.reserved_audio_tokens) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a segment of ", audio_tokens, " audio tokens passes the stream's reservation of ",
        shape.reserved_audio_tokens));
  }
  if (end->tail.end_position != end->tail.first_position) {
    SPEECHLLM_RETURN_IF_ERROR(ContinueChunks(id, end->segment_index, end->tail));
  }
  InboxMessage message{InboxMessage::Kind::kEnd, id};
  message.end = std::move(end);
  return Post(std::move(message));
}

absl::Status Engine::ProvideEmbeddings(SequenceId id, CachedEmbeddings cached) {
  const int64_t hidden = model_config_.text.hidden_size;
  // Bounded before the product, so that no row count overflows it.
  absl::Status malformed;
  if (cached.num_rows < 0 || cached.num_rows > config_.max_audio_tokens_per_segment ||
      static_cast<int64_t>(cached.rows.size()) != cached.num_rows * hidden) {
    malformed = absl::InvalidArgumentError(
        absl::StrCat("cached embeddings of ", cached.num_rows, " rows (at most ",
                     config_.max_audio_tokens_per_segment, ") in ", cached.rows.size(),
                     " values: taken as a miss"));
    // The end still goes on, as a miss: an answer refused here would hold it for good.
    cached.rows.clear();
    cached.num_rows = 0;
  }
  {
    absl::MutexLock lock(&mutex_);
    if (FindReservation(id) == reservations_.end())
      return absl::NotFoundError(absl::StrCat("no sequence ", id));
  }
  InboxMessage message{InboxMessage::Kind::kEmbeddings, id};
  message.cached = std::move(cached);
  SPEECHLLM_RETURN_IF_ERROR(Post(std::move(message)));
  return malformed;
}

void Engine::Release(SequenceId id) {
  absl::MutexLock lock(&mutex_);
  const auto it = FindReservation(id);
  if (it == reservations_.end()) return;
  reserved_blocks_ -= it->blocks;
  reserved_encoder_positions_ -= it->encoder_positions;
  reservations_.erase(it);
  InboxMessage message{InboxMessage::Kind::kRelease, id};
  inbox_.push_back(std::move(message));
  // Outputs of the released sequence that were not taken yet are dropped.
  outputs_.erase(
      std::remove_if(outputs_.begin(), outputs_.end(), [id](const auto& o) { return o.id == id; }),
      outputs_.end());
}

std::vector<SequenceOutput> Engine::PopOutputs(absl::Duration timeout) {
  absl::MutexLock lock(&mutex_);
  auto ready = [this]()
                   ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return !outputs_.empty() || stopping_; };
  mutex_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  std::vector<SequenceOutput> out(std::make_move_iterator(outputs_.begin()),
                                  std::make_move_iterator(outputs_.end()));
  outputs_.clear();
  return out;
}

EngineStats Engine::stats() const {
  absl::MutexLock lock(&mutex_);
  EngineStats stats = stats_;
  stats.kv_blocks_reserved = reserved_blocks_;
  stats.encoder_kv_positions_reserved = reserved_encoder_positions_;
  return stats;
}

void Engine::DrainInbox() {
  std::deque<InboxMessage> messages;
  {
    absl::MutexLock lock(&mutex_);
    // Sleep until there is something to do: new messages, or work the scheduler already holds.
    const bool has_work = scheduler_->HasWork();
    auto wake = [this, has_work]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
      return has_work || !inbox_.empty() || stopping_;
    };
    mutex_.Await(absl::Condition(&wake));
    messages.swap(inbox_);
  }
  for (InboxMessage& m : messages) {
    switch (m.kind) {
      case InboxMessage::Kind::kAdd:
        scheduler_->AddSequence(m.id, m.config);
        break;
      case InboxMessage::Kind::kStart:
        scheduler_->StartSegment(m.id, std::move(m.start));
        break;
      case InboxMessage::Kind::kChunk:
        scheduler_->AddChunk(m.id, std::move(m.chunk));
        break;
      case InboxMessage::Kind::kEnd:
        HoldOrPassEnd(m.id, std::move(m.end));
        break;
      case InboxMessage::Kind::kEmbeddings:
        AnswerHeldEnd(m.id, std::move(m.cached));
        break;
      case InboxMessage::Kind::kRelease:
        held_ends_.erase(m.id);
        scheduler_->RemoveSequence(m.id);
        break;
    }
  }
}

absl::Duration Engine::RunningStepTime() const {
  const int64_t started = step_started_ns_.load();
  return started == 0 ? absl::ZeroDuration() : absl::Nanoseconds(SteadyNanoseconds() - started);
}

void Engine::Loop() {
  while (true) {
    DrainInbox();
    {
      absl::MutexLock lock(&mutex_);
      if (stopping_) break;
    }
    const StepPlan plan = scheduler_->Schedule();
    for (SequenceId id : scheduler_->TakeRunnerResets()) runner_->ResetSequence(id);
    absl::StatusOr<StepResult> result = StepResult{};
    absl::Duration step_time;
    if (!plan.empty()) {
      const absl::Time start = absl::Now();
      step_started_ns_.store(SteadyNanoseconds());
      int64_t executions = 1;
      result = ExecuteIsolatingFailures(*runner_, plan, &executions);
      step_started_ns_.store(0);
      step_time = absl::Now() - start;
      if (StepObserver* observer = step_observer_.load()) {
        observer->OnStep(MakeStepRecord(plan, result, step_time, executions));
      }
    }
    absl::Duration encoder_time, decoder_time, wait_time;  // zero for a failed step
    if (result.ok()) {
      encoder_time = result->encoder_time;
      decoder_time = result->decoder_time;
      wait_time = result->wait_time;
    }
    std::vector<SequenceOutput> outputs = scheduler_->Update(plan, std::move(result), step_time);
    for (SequenceId id : scheduler_->TakeRunnerResets()) runner_->ResetSequence(id);
    absl::MutexLock lock(&mutex_);
    if (!plan.empty()) {
      ++stats_.steps;
      stats_.step_sequences += static_cast<int64_t>(plan.prefills.size());
      stats_.busy_time += step_time;
      stats_.encoder_time += encoder_time;
      stats_.decoder_time += decoder_time;
      stats_.wait_time += wait_time;
    }
    stats_.active_sequences = scheduler_->num_sequences();
    stats_.kv_blocks_used = scheduler_->kv().num_blocks() - scheduler_->kv().NumFreeBlocks();
    stats_.kv_blocks_peak = std::max(stats_.kv_blocks_peak, stats_.kv_blocks_used);
    stats_.encoder_kv_positions_used = runner_->encoder_kv_positions_used();
    stats_.encoder_kv_positions_peak =
        std::max(stats_.encoder_kv_positions_peak, stats_.encoder_kv_positions_used);
    stats_.tokens_generated = scheduler_->tokens_generated();
    stats_.draft_tokens = scheduler_->draft_tokens();
    stats_.draft_accepted_tokens = scheduler_->draft_accepted_tokens();
    stats_.prefix_hits = scheduler_->prefixes().hits();
    for (SequenceOutput& output : outputs) {
      // Drop outputs of sequences released meanwhile.
      if (FindReservation(output.id) != reservations_.end()) outputs_.push_back(std::move(output));
    }
  }
}

}  // namespace speechllm::engine
