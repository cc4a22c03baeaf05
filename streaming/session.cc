// Session: construction and the input half (reader thread).
#include "streaming/session.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/model/audio_lengths.h"

namespace speechllm::streaming {

Session::Session(const SessionConfig& config, const Dependencies& deps, ResultSink* sink)
    : config_(config),
      deps_(deps),
      sample_rate_hz_(deps.log_mel->config().sample_rate_hz),
      // Chunks feed partials, and fast finals reuse their embeddings; exact finals without partials
      // re-encode the whole utterance and need none.
      submit_chunks_(config.interim_results || config.final_mode == engine::FinalMode::kFast),
      voice_activity_(config.voice_activity, deps.log_mel->config()),
      endpointer_(config.endpoint,
                  deps.log_mel->config().hop_length * 1000 / deps.log_mel->config().sample_rate_hz),
      frontend_(deps.log_mel),
      chunker_(Chunker::ChunkMsToFrames(config.chunk_ms, deps.log_mel->config())),
      prompt_(config.prompt),
      sink_(sink) {
  const int frame_ms = voice_activity_.frame_ms();
  silence_guard_frames_ = (config.silence_guard_min_speech_ms + frame_ms - 1) / frame_ms;
}

absl::StatusOr<std::shared_ptr<Session>> Session::Create(const SessionConfig& config,
                                                         const Dependencies& deps,
                                                         ResultSink* sink) {
  if (absl::Status status = config.Validate(); !status.ok()) return status;
  std::shared_ptr<Session> session(new Session(config, deps, sink));
  engine::SequenceConfig sequence;
  sequence.final_mode = config.final_mode;
  // A finals-only FAST stream still decodes its (unsent) partials: they are the drafts its final
  // verifies in one step. Without them the final decodes token by token, 3x slower on the CPU
  // (design_notes.md, Streaming service).
  sequence.partial_updates = session->submit_chunks_;
  sequence.partials_unsent = !config.interim_results;  // they wait for other streams' work
  sequence.max_new_tokens_per_segment = config.max_new_tokens_per_segment;
  sequence.max_new_tokens_per_update = config.max_new_tokens_per_update;
  sequence.repetition_guard = config.repetition_guard;
  // KV for this stream's own worst segment: its utterance length and its prompt, not the engine's
  // 30 s and longest context (Engine::ResizeReservation grows it for a longer context later).
  sequence.reserved_audio_tokens = MaxAudioTokensPerSegment(config, deps.log_mel->config());
  sequence.reserved_suffix_tokens = static_cast<int64_t>(config.prompt.suffix_ids.size());
  auto id = deps.engine->AddSequence(sequence);
  if (!id.ok()) return id.status();
  session->sequence_id_ = *id;
  return session;
}

Session::~Session() {
  if (sequence_id_ != engine::kInvalidSequenceId) deps_.engine->Release(sequence_id_);
}

absl::Status Session::UpdatePrompt(PromptConfig prompt) {
  // The engine keeps the larger of the reserved and the asked sizes (0: keep the audio's).
  absl::Status grown = deps_.engine->ResizeReservation(
      sequence_id_, 0, static_cast<int64_t>(prompt.suffix_ids.size()));
  if (absl::IsResourceExhausted(grown)) {
    // Admitted streams never fail for lack of memory (API.md 1, point 5): the stream goes on with
    // the prompt it has, and the client learns why its context is not used.
    SendWarning(SessionEvent::WarningCode::kContextNotApplied,
                absl::StrCat("the new context was not applied, the previous one stays: ",
                             grown.message(), " (send it again later)"));
    return absl::OkStatus();
  }
  if (!grown.ok()) return grown;
  prompt_ = std::move(prompt);
  return absl::OkStatus();
}

int64_t Session::MaxAudioTokensPerSegment(const SessionConfig& config,
                                          const engine::FeatureConfig& features) {
  // The endpointer never lets an utterance pass max_utterance_ms; the last partial frame of a
  // Flush or of the end of input can add less than one hop.
  const int64_t samples =
      static_cast<int64_t>(config.endpoint.max_utterance_ms) * features.sample_rate_hz / 1000 +
      2 * features.hop_length;
  return engine::AudioTokenCount(engine::NumValidFrames(samples, features)) + 1;
}

double Session::SecondsOf(int64_t samples) const {
  return static_cast<double>(samples) / sample_rate_hz_;
}

absl::Status Session::AcceptAudio(absl::Span<const float> samples, absl::Time arrival_time,
                                  int64_t held_samples) {
  // After the speech start timeout the stream ends with OK while a pending final (MANUAL) goes
  // out; audio the client sent meanwhile is dropped, not an error (API.md 4.4).
  if (speech_start_timed_out_) return absl::OkStatus();
  if (input_finished_) return absl::FailedPreconditionError("audio after the end of input");
  {
    absl::MutexLock lock(&mu_);
    audio_received_seconds_ += SecondsOf(static_cast<int64_t>(samples.size()));
    audio_held_seconds_ = SecondsOf(held_samples);
  }
  const size_t frame_samples = static_cast<size_t>(voice_activity_.frame_samples());
  size_t pos = 0;
  if (!partial_frame_.empty() && !input_finished_) {
    const size_t take = std::min(frame_samples - partial_frame_.size(), samples.size());
    partial_frame_.insert(partial_frame_.end(), samples.begin(), samples.begin() + take);
    pos = take;
    if (partial_frame_.size() == frame_samples) {
      std::vector<float> frame;
      frame.swap(partial_frame_);
      ProcessFrame(frame, arrival_time);
    }
  }
  // A frame can end the input (the speech start timeout): the rest of the audio is dropped.
  for (; pos + frame_samples <= samples.size() && !input_finished_; pos += frame_samples) {
    ProcessFrame(samples.subspan(pos, frame_samples), arrival_time);
  }
  if (!input_finished_) {
    partial_frame_.insert(partial_frame_.end(), samples.begin() + pos, samples.end());
  }
  return absl::OkStatus();
}

void Session::ProcessFrame(absl::Span<const float> frame, absl::Time arrival_time) {
  const VadFrame vad = voice_activity_.ProcessFrame(frame);
  const Endpointer::Event event = endpointer_.OnFrame(vad.is_speech, vad.loud);
  stream_samples_ += static_cast<int64_t>(frame.size());
  if (vad.loud) last_loud_end_sample_ = stream_samples_;
  if (single_utterance_done_) return;  // later audio is read and dropped
  if (!segment_open_) {
    preroll_.emplace_back(frame.begin(), frame.end());
    const int64_t keep_frames = config_.endpoint.pre_speech_ms / voice_activity_.frame_ms() + 1;
    while (static_cast<int64_t>(preroll_.size()) > keep_frames) preroll_.pop_front();
    if (endpointer_.in_utterance()) {
      // The utterance reaches back to utterance_start_frame (pre-speech padding).
      const int64_t frames =
          std::min<int64_t>(endpointer_.num_frames() - endpointer_.utterance_start_frame(),
                            static_cast<int64_t>(preroll_.size()));
      while (static_cast<int64_t>(preroll_.size()) > frames) preroll_.pop_front();
      segment_start_sample_ = stream_samples_ - frames * static_cast<int64_t>(frame.size());
      OpenSegment(arrival_time);
      for (const std::vector<float>& f : preroll_) FeedSegment(f, arrival_time).IgnoreError();
      preroll_.clear();
    }
  } else {
    FeedSegment(frame, arrival_time).IgnoreError();
  }
  if (segment_open_ && vad.loud)
    segment_last_speech_arrival_ = arrival_time;  // word end, no hangover
  if (segment_open_ && vad.loud && ++segment_loud_frames_ == silence_guard_frames_) {
    absl::MutexLock lock(&mu_);
    if (!segments_.empty()) segments_.back().speech_confirmed = true;
  }
  if (event == Endpointer::Event::kEndpointSilence ||
      event == Endpointer::Event::kEndpointMaxLength) {
    CloseSegment(/*from_flush=*/false, arrival_time);
  }
  SendSpeechEvent(event);
  // Nobody spoke: the event, then the stream ends with OK (API.md 4.4); later audio is dropped.
  if (event == Endpointer::Event::kSpeechStartTimeout) {
    speech_start_timed_out_ = true;
    FinishEarly(absl::OkStatus(), arrival_time);
  }
}

void Session::OpenSegment(absl::Time arrival_time) {
  const int64_t index = next_segment_index_++;
  frontend_.Reset();
  chunker_.Reset();
  segment_open_ = true;
  segment_first_arrival_ = arrival_time;
  segment_last_speech_arrival_ = absl::InfinitePast();
  segment_loud_frames_ = 0;
  absl::MutexLock lock(&mu_);
  if (audio_processed_seconds_ >= audio_submitted_seconds_) {
    // Nothing outstanding: the backlog of this utterance counts from its own start, not from the
    // end of the last output (silence between utterances is never handed to the engine).
    backlog_origin_seconds_ = config_.stream_offset_seconds + SecondsOf(segment_start_sample_);
    RearmBacklogWarningLocked();
  }
  SegmentRecord record;
  record.index = index;
  record.start_seconds = SecondsOf(segment_start_sample_);
  record.first_arrival = arrival_time;
  record.commit.emplace(config_.commit_policy, deps_.tokenizer, config_.commit_rules);
  record.speech_confirmed = silence_guard_frames_ == 0;
  record.prompt = prompt_;
  // With carried context an utterance starts once the earlier ones' finals are out (their text
  // goes into its prompt); its chunks and end wait in the engine meanwhile.
  record.start_waiting = config_.carry_context_chars > 0 &&
                         std::any_of(segments_.begin(), segments_.end(),
                                     [](const SegmentRecord& r) { return !r.empty; });
  segments_.push_back(std::move(record));
  if (!segments_.back().start_waiting) StartSegmentLocked(&segments_.back());
}

absl::Status Session::FeedSegment(absl::Span<const float> samples, absl::Time arrival_time) {
  if (absl::Status status = frontend_.AcceptWaveform(samples); !status.ok()) return status;
  EmitChunks(arrival_time);
  return absl::OkStatus();
}

engine::EncoderChunk Session::MakeChunk(const ChunkSpec& spec, float max_log10) const {
  engine::EncoderChunk chunk;
  chunk.segment_index = next_segment_index_ - 1;
  chunk.first_position = spec.first_position;
  chunk.end_position = spec.end_position;
  chunk.frames = frontend_.FloorAndScaleFrames(spec.first_frame, spec.num_frames(), max_log10);
  // Past the last frame of the 30 s window the conv sees its zero padding, not log-mel values.
  const int64_t frames_needed = 2 * spec.end_position + 1 - spec.first_frame;
  chunk.frames.resize(static_cast<size_t>(frames_needed) * frontend_.num_mel_bins(), 0.0f);
  chunk.audio_end_seconds =
      config_.stream_offset_seconds + SecondsOf(segment_start_sample_) +
      SecondsOf(std::min<int64_t>(2 * spec.end_position * deps_.log_mel->config().hop_length,
                                  frontend_.num_samples()));
  return chunk;
}

void Session::EmitChunks(absl::Time arrival_time) {
  if (!submit_chunks_) return;
  while (auto spec =
             chunker_.Next(frontend_.NumFramesReady(), false, frontend_.num_valid_frames())) {
    auto chunk =
        std::make_unique<engine::EncoderChunk>(MakeChunk(*spec, frontend_.running_max_log10()));
    chunk->arrival_time = arrival_time;
    {
      absl::MutexLock lock(&mu_);
      if (!segments_.empty()) chunk->forced_prefix_ids = segments_.back().committed_ids;
      NoteSubmittedLocked(chunk->audio_end_seconds);
    }
    if (absl::Status status = deps_.engine->SubmitChunk(sequence_id_, std::move(chunk));
        !status.ok()) {
      absl::MutexLock lock(&mu_);
      FinishLocked(status);
      return;
    }
  }
}

void Session::CloseSegment(bool from_flush, absl::Time now) {
  if (!segment_open_) return;
  EndOpenSpeechEvent();  // the utterance's SPEECH_ENDED before its final
  segment_open_ = false;
  frontend_.InputFinished();
  auto end = std::make_unique<engine::SegmentEnd>();
  end->segment_index = next_segment_index_ - 1;
  end->features = frontend_.FinalFeatures();
  end->num_frames = frontend_.num_final_frames();
  end->num_valid_frames = frontend_.num_valid_frames();
  const int64_t conv_positions =
      std::min<int64_t>(engine::ConvOutputLength(end->num_valid_frames),
                        deps_.engine->model_config().audio.max_source_positions);
  end->tail.segment_index = end->segment_index;
  end->tail.first_position = conv_positions;
  end->tail.end_position = conv_positions;
  if (submit_chunks_ && chunker_.next_position() < conv_positions) {
    ChunkSpec spec;
    spec.first_position = chunker_.next_position();
    spec.end_position = conv_positions;
    spec.first_frame = spec.first_position == 0 ? 0 : 2 * spec.first_position - 2;
    spec.end_frame_exclusive =
        std::min<int64_t>(2 * conv_positions + 1, frontend_.num_final_frames());
    end->tail = MakeChunk(spec, frontend_.final_max_log10());
  }
  end->audio_end_seconds =
      config_.stream_offset_seconds + SecondsOf(segment_start_sample_ + frontend_.num_samples());
  end->endpoint_time = now;
  endpointer_.Reset();
  if (config_.endpoint.mode == EndpointMode::kSingleUtterance) single_utterance_done_ = true;
  {
    absl::MutexLock lock(&mu_);
    if (!segments_.empty()) {
      SegmentRecord& record = segments_.back();
      end->forced_prefix_ids = record.committed_ids;
      end->text_wanted = record.speech_confirmed;  // the silence guard drops the text otherwise
      record.closed = true;
      record.from_flush = from_flush;
      record.end_seconds = SecondsOf(segment_start_sample_ + frontend_.num_samples());
      record.endpoint_time = now;
      // No speech frame (a MANUAL utterance of silence): no word end to wait from.
      record.endpoint_wait =
          segment_last_speech_arrival_ == absl::InfinitePast()
              ? absl::ZeroDuration()
              : std::max(absl::ZeroDuration(), now - segment_last_speech_arrival_);
    }
    NoteSubmittedLocked(end->audio_end_seconds);
  }
  SubmitEnd(std::move(end));
}

absl::Status Session::Flush(absl::Time now) {
  if (speech_start_timed_out_) return absl::OkStatus();  // the stream is ending with OK
  if (input_finished_) return absl::FailedPreconditionError("Flush after the end of input");
  // After SINGLE_UTTERANCE's one utterance, later input is read and dropped (API.md 4.4), a
  // Flush too: it used to answer with an empty final of a second utterance.
  if (single_utterance_done_) return absl::OkStatus();
  if (segment_open_) {
    if (!partial_frame_.empty()) {
      FeedSegment(partial_frame_, now).IgnoreError();
      stream_samples_ += static_cast<int64_t>(partial_frame_.size());
      partial_frame_.clear();
    }
    CloseSegment(/*from_flush=*/true, now);
    flushed_samples_ = stream_samples_;
    return absl::OkStatus();
  }
  // Samples short of a VAD frame came before the Flush: no later utterance may start with them
  // (a MANUAL stream cut on a frame boundary carried them into the next one). Under one frame,
  // they are less than an audio token.
  stream_samples_ += static_cast<int64_t>(partial_frame_.size());
  partial_frame_.clear();
  flushed_samples_ = stream_samples_;
  EndOpenSpeechEvent();
  endpointer_.Reset();
  absl::MutexLock lock(&mu_);
  SegmentRecord record;
  record.index = next_segment_index_++;
  record.empty = true;
  record.closed = true;
  record.from_flush = true;
  // In SINGLE_UTTERANCE mode the first Flush ends the utterance even with nothing pending.
  if (config_.endpoint.mode == EndpointMode::kSingleUtterance) {
    single_utterance_done_ = true;
    record.ends_single_utterance = true;
  }
  record.start_seconds = record.end_seconds = SecondsOf(stream_samples_);
  record.endpoint_time = now;
  segments_.push_back(std::move(record));
  DrainEmptySegmentsLocked();
  return absl::OkStatus();
}

void Session::FinishEarly(const absl::Status& status, absl::Time now) {
  {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    if (final_status_.ok()) final_status_ = status;
  }
  if (!input_finished_) {
    input_finished_ = true;
    FlushOpenSegment(now);
  }
  absl::MutexLock lock(&mu_);
  input_done_ = true;
  MaybeFinishLocked();
}

void Session::FlushOpenSegment(absl::Time now) {
  if (segment_open_) {
    if (!partial_frame_.empty()) {
      FeedSegment(partial_frame_, now).IgnoreError();
      stream_samples_ += static_cast<int64_t>(partial_frame_.size());
    }
    CloseSegment(/*from_flush=*/false, now);
  } else {
    stream_samples_ += static_cast<int64_t>(partial_frame_.size());  // under a frame, no token
  }
  partial_frame_.clear();
}

absl::Status Session::FinishInput(absl::Time now) {
  if (input_finished_) return absl::OkStatus();
  input_finished_ = true;
  const int64_t total_samples = stream_samples_ + static_cast<int64_t>(partial_frame_.size());
  // Audio a Flush already answered (its final came) leaves nothing to refuse.
  if (total_samples > flushed_samples_ && engine::AudioTokenCount(engine::NumValidFrames(
                                              total_samples, deps_.log_mel->config())) == 0) {
    // Nothing to transcribe: the open utterance is dropped (no final), the stream ends with the
    // error.
    if (segment_open_) {
      segment_open_ = false;
      absl::MutexLock lock(&mu_);
      if (!segments_.empty() && !segments_.back().empty) segments_.pop_back();
    }
    partial_frame_.clear();
    return absl::InvalidArgumentError(absl::StrCat("the stream held ", total_samples, " samples (",
                                                   1000.0 * total_samples / sample_rate_hz_,
                                                   " ms): too little audio for one audio token"));
  }
  FlushOpenSegment(now);
  absl::MutexLock lock(&mu_);
  input_done_ = true;
  MaybeFinishLocked();
  return absl::OkStatus();
}

void Session::Detach() {
  absl::MutexLock lock(&mu_);
  sink_ = nullptr;
  finished_ = true;
}

}  // namespace speechllm::streaming
