// Session: one stream of speech. The input half (called on the gRPC thread that reads the stream,
// one call at a time) runs voice activity, endpointing, the log-mel front end and the chunker, and
// hands chunks and segment ends to the Engine. The output half (the OutputDispatcher thread) turns
// engine outputs into text and events for the ResultSink; state both halves share is behind mu_.
// Owned by the stream reactor through a shared_ptr; the dispatcher holds a weak_ptr.
#ifndef SPEECHLLM_STREAMING_SESSION_H_
#define SPEECHLLM_STREAMING_SESSION_H_

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "engine/engine.h"
#include "engine/model/log_mel.h"
#include "engine/model/tokenizer/tokenizer.h"
#include "streaming/audio_frontend.h"
#include "streaming/chunker.h"
#include "streaming/commit_policy.h"
#include "streaming/endpointer.h"
#include "streaming/result_sink.h"
#include "streaming/session_config.h"
#include "streaming/voice_activity.h"

namespace speechllm::streaming {

class EmbeddingCache;

class Session {
 public:
  struct Dependencies {
    engine::Engine* engine = nullptr;                         // not owned
    const engine::LogMel* log_mel = nullptr;                  // not owned, immutable
    const engine::tokenizer::Tokenizer* tokenizer = nullptr;  // optional: text of results
    // Optional, not owned: exact finals' embeddings are looked up there (a hit skips the encoder)
    // and a miss's are stored (ARCHITECTURE.md 8). Must outlive the engine's answers to lookups.
    EmbeddingCache* embedding_cache = nullptr;
  };

  // Validates `config` (INVALID_ARGUMENT) and admits the stream in the engine (RESOURCE_EXHAUSTED
  // when it is full). `sink` is not owned and must stay valid until Detach() or Finish.
  static absl::StatusOr<std::shared_ptr<Session>> Create(const SessionConfig& config,
                                                         const Dependencies& deps,
                                                         ResultSink* sink);
  ~Session();  // releases the engine sequence

  engine::SequenceId sequence_id() const { return sequence_id_; }
  const SessionConfig& config() const { return config_; }

  // ---- input half: the stream's reader thread ----
  // 16 kHz mono samples that arrived at `arrival_time`; `held_samples` is the audio received
  // behind them that the decoder still holds (AudioDecoder::HeldSamples), reported as received.
  // FAILED_PRECONDITION after FinishInput.
  absl::Status AcceptAudio(absl::Span<const float> samples, absl::Time arrival_time,
                           int64_t held_samples = 0);
  // Finalizes everything received so far now (Flush control); an empty final when nothing is
  // pending.
  absl::Status Flush(absl::Time now);
  // End of input (half-close or EndOfAudio): finalizes the open utterance; the sink is finished
  // once every final is out. INVALID_ARGUMENT when the whole stream held audio but too little for
  // one token.
  absl::Status FinishInput(absl::Time now);
  // The whole input as precomputed audio embeddings (projector outputs, row-major
  // [num_tokens][hidden_size], checked by the caller): one utterance that skips the frontend, the
  // VAD and the encoder, timed at 40 ms per token; ends the input. FAILED_PRECONDITION after any
  // audio. (session_embeddings.cc)
  absl::Status AcceptEmbeddings(std::vector<float> embeddings, int64_t num_tokens, absl::Time now);
  // True while the audio handed to the engine but not reflected in results exceeds
  // max_buffered_audio_ms: the reader should stop reading until ResultSink::OnCapacity().
  bool ShouldPauseReading() ABSL_LOCKS_EXCLUDED(mu_);

  // ---- output half: the dispatcher thread ----
  void OnEngineOutput(engine::SequenceOutput output) ABSL_LOCKS_EXCLUDED(mu_);
  // Sends partials the rate limit held back whose interval has passed by `now` (the dispatcher
  // calls it between outputs, so a partial does not wait for the next engine output).
  void SendHeldPartials(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  // Decodes tentative stability looks back on (API.md 4.3).
  static constexpr size_t kStabilityDecodes = 4;

  // Replaces the prompt (recognition context) from the next utterance on; the running one keeps the
  // prompt already in its KV cache. A longer suffix than the stream reserved KV for grows its
  // reservation first; when the KV cache has no room the old prompt stays and the client gets a
  // CONTEXT_NOT_APPLIED warning (not an error: the stream goes on). Reader thread.
  absl::Status UpdatePrompt(PromptConfig prompt);

  // The audio tokens a segment of a stream with `config` can hold (its max_utterance_ms, a frame of
  // slack): what the stream reserves KV for.
  static int64_t MaxAudioTokensPerSegment(const SessionConfig& config,
                                          const engine::FeatureConfig& features);

  // ---- any thread ----
  // The stream is gone: no more sink calls; the engine frees the sequence at its next step.
  void Detach() ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the stream early with `status` (a server limit, shutdown): the summary is sent first, then
  // the sink is finished. No-op when already finished.
  void Abort(const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the stream with `status` after the finals of everything received so far (API.md 3, "finals
  // first"): the open utterance is finalized as at the end of input, then the summary and `status`
  // follow the last final. Input-half call (the reader thread, or the thread that stops the
  // reader).
  void FinishEarly(const absl::Status& status, absl::Time now);
  // A warning event (audio offsets filled in like every other event). Any thread.
  void SendWarning(SessionEvent::WarningCode code, const std::string& message)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // One utterance as both halves see it, in submission order.
  // A partial update waiting for the rate limit: its delta is cut from committed_text when sent.
  struct HeldPartial {
    SessionEvent event;
    std::string committed_text;
    absl::Time input_time;  // the engine output's input_time, for since_audio_arrival
  };
  struct SegmentRecord {
    int64_t index = 0;
    bool empty = false;  // a Flush with nothing pending: answered without the engine
    bool ends_single_utterance = false;  // an empty one that ends a SINGLE_UTTERANCE stream
    bool closed = false;                 // its SegmentEnd was sent: no more commits
    bool from_flush = false;
    double start_seconds = 0;  // stream offsets (without stream_offset)
    double end_seconds = 0;
    absl::Time first_arrival;  // first audio of the utterance reached the server
    absl::Time endpoint_time;
    absl::Duration endpoint_wait;  // the last loud frame's arrival -> endpoint_time
    bool partial_sent = false;
    absl::Time last_partial_time;
    // Commit state of the utterance (output half; read by the input half for forced prefixes).
    std::vector<int64_t> committed_ids;
    std::string committed_text;
    std::string sent_committed_text;  // the committed text the client has received
    std::string sent_tentative_text;  // the tentative text of the last partial sent
    std::optional<CommitPolicy> commit;
    // Silence guard: the utterance reached the configured amount of speech (always true when the
    // guard is off). Set by the input half, read by the output half.
    bool speech_confirmed = false;
    // Carried context: the prompt the utterance starts with, and whether it waits for the final
    // of an earlier one (its text goes into this prompt).
    PromptConfig prompt;
    bool start_waiting = false;
    // The last kStabilityDecodes partial hypotheses, oldest first (tentative stability).
    std::deque<std::vector<int64_t>> recent_hypotheses;
    // A partial the rate limit held back, sent when partial_interval_ms has passed.
    std::optional<HeldPartial> held_partial;
  };

  Session(const SessionConfig& config, const Dependencies& deps, ResultSink* sink);

  // Input half helpers.
  void ProcessFrame(absl::Span<const float> frame, absl::Time arrival_time);
  // Speech events (session_speech_events.cc): the endpointer's event as a SpeechEvent, if it
  // is one to send; and SPEECH_ENDED for a SPEECH_STARTED still open, before an endpoint, a
  // Flush or a max-length cut ends its utterance, so that every STARTED gets its ENDED.
  void SendSpeechEvent(Endpointer::Event event);
  void EndOpenSpeechEvent();
  void OpenSegment(absl::Time arrival_time);
  absl::Status FeedSegment(absl::Span<const float> samples, absl::Time arrival_time);
  void EmitChunks(absl::Time arrival_time);
  engine::EncoderChunk MakeChunk(const ChunkSpec& spec, float max_log10) const;
  void CloseSegment(bool from_flush, absl::Time now);
  // Posts a closed segment's end, through an embedding cache lookup for exact finals
  // (session_cache.cc).
  void SubmitEnd(std::unique_ptr<engine::SegmentEnd> end);
  // At the end of input: feeds the buffered partial frame to the open segment and closes it.
  void FlushOpenSegment(absl::Time now);
  double SecondsOf(int64_t samples) const;

  // Output half helpers (mu_ held).
  void SendLocked(SessionEvent event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Before an utterance's first committed text (`sent_before` empty) puts the separator from the
  // stream's earlier utterances (UtteranceSeparator), and keeps the transcript's tail.
  void JoinTranscriptLocked(const std::string& sent_before, std::string* committed_delta)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnPartialLocked(const engine::SequenceOutput& output, SegmentRecord* segment)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnFinalLocked(const engine::SequenceOutput& output, SegmentRecord* segment)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendPartialLocked(SegmentRecord* segment, HeldPartial partial, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EmitEmptyFinalLocked(const SegmentRecord& segment) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DrainEmptySegmentsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Text of `ids` (special tokens dropped). Held back: without the bytes of a character the
  // last tokens only began (a partial's tentative text; Decode would show them as U+FFFD).
  std::string Decode(const std::vector<int64_t>& ids, bool hold_back_incomplete = false) const;
  // Starts `record`'s segment in the engine with its prompt, the carried text in it when there is
  // some and room for it; a failure ends the stream. (session_carry.cc)
  void StartSegmentLocked(SegmentRecord* record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends a final's text to the carried text (its last carry_context_chars characters).
  void CarryTextLocked(const std::string& text) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts the first open utterance if it waited for the final just sent.
  void StartWaitingSegmentLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  SummaryEvent SummaryLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The backlog (session_backlog.cc): audio handed to the engine and not yet reflected in its
  // outputs, in seconds; whether it passes max_buffered_audio_ms; recording a submission, which
  // sends Warning{BACKLOG} once when the audio given earlier is still owed after 2 s of it; and
  // re-arming that warning once the backlog has fallen to half of it.
  double UnansweredSecondsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool BacklogExceededLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NoteSubmittedLocked(double audio_end_seconds) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RearmBacklogWarningLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SessionConfig config_;
  const Dependencies deps_;
  engine::SequenceId sequence_id_ = engine::kInvalidSequenceId;
  const int sample_rate_hz_;
  const bool submit_chunks_;

  // Input half: the reader thread only.
  VoiceActivity voice_activity_;
  Endpointer endpointer_;
  AudioFrontend frontend_;
  Chunker chunker_;
  std::vector<float> partial_frame_;        // samples of an incomplete 10 ms frame
  std::deque<std::vector<float>> preroll_;  // recent frames before an utterance opens
  int64_t stream_samples_ = 0;              // samples consumed into frames so far
  int64_t flushed_samples_ = 0;             // the stream's samples when a Flush last answered
  bool speech_event_open_ = false;          // a SPEECH_STARTED was sent, its ENDED not yet
  int64_t last_loud_end_sample_ = 0;        // where the last loud VAD frame ended
  int64_t segment_start_sample_ = 0;
  bool segment_open_ = false;
  int64_t segment_loud_frames_ = 0;   // VAD frames above the thresholds in the open segment
  int64_t silence_guard_frames_ = 0;  // loud frames that confirm speech (0: guard off)
  int64_t next_segment_index_ = 0;
  bool input_finished_ = false;
  bool single_utterance_done_ = false;
  bool speech_start_timed_out_ = false;  // later audio and Flushes are dropped
  PromptConfig prompt_;                  // of the next utterance
  absl::Time segment_first_arrival_;
  // Arrival of the open segment's last loud VAD frame, its last word end (InfinitePast: none).
  absl::Time segment_last_speech_arrival_ = absl::InfinitePast();

  absl::Mutex mu_;
  ResultSink* sink_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool input_done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status final_status_ ABSL_GUARDED_BY(mu_);  // how the stream ends once the finals are out
  bool reader_paused_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<SegmentRecord> segments_ ABSL_GUARDED_BY(mu_);
  std::string carried_text_ ABSL_GUARDED_BY(mu_);  // the end of the committed text so far
  // The last bytes of the committed text sent (every utterance's, with separators).
  std::string transcript_tail_ ABSL_GUARDED_BY(mu_);
  double audio_received_seconds_ ABSL_GUARDED_BY(mu_) = 0;
  // Audio the stream's decoder received but still holds (its resampler's delay): reported as
  // received, not yet accepted here.
  double audio_held_seconds_ ABSL_GUARDED_BY(mu_) = 0;
  double audio_submitted_seconds_ ABSL_GUARDED_BY(mu_) = 0;  // audio handed to the engine
  double audio_processed_seconds_ ABSL_GUARDED_BY(mu_) = 0;
  // Where the backlog counts from: the start of the first utterance submitted while the engine had
  // nothing outstanding (stream time, stream_offset included).
  double backlog_origin_seconds_ ABSL_GUARDED_BY(mu_) = 0;
  bool backlog_warned_ ABSL_GUARDED_BY(mu_) = false;  // Warning{BACKLOG} sent, not yet re-armed
  int64_t utterances_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t tokens_generated_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t commit_conflicts_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t peak_kv_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration compute_time_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Duration> first_partial_latencies_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Duration> final_latencies_ ABSL_GUARDED_BY(mu_);
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_SESSION_H_
