// Session: the output half (OutputDispatcher thread) and the end of a stream.
#include <algorithm>
#include <cmath>
#include <deque>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/model/tokenizer/incremental_detokenizer.h"
#include "streaming/embedding_cache.h"
#include "streaming/session.h"
#include "streaming/text_scripts.h"

namespace speechllm::streaming {
namespace {

LatencySummary Summarize(std::vector<absl::Duration> values) {
  LatencySummary summary;
  if (values.empty()) return summary;
  std::sort(values.begin(), values.end());
  auto at = [&](double q) {  // nearest rank: ceil(q * n), 1-based
    const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(values.size())));
    return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
  };
  summary.p50 = at(0.5);
  summary.p95 = at(0.95);
  summary.max = values.back();
  return summary;
}

bool StartsWith(const std::vector<int64_t>& ids, const std::vector<int64_t>& prefix) {
  return ids.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), ids.begin());
}

// Whether `earlier` continues the commit point (the first `committed` tokens of `hypothesis`) with
// the current tentative tokens: it goes past the commit point, and the two agree for as long as
// both go on. Decodes of a growing utterance are mostly shorter than the current one, which is why
// "earlier starts with the whole current hypothesis" (the old rule) held for the current decode
// alone and capped stability at 1/4.
bool ContinuesTentative(const std::vector<int64_t>& earlier, const std::vector<int64_t>& hypothesis,
                        int64_t committed) {
  const size_t commit_point = static_cast<size_t>(committed);
  if (earlier.size() <= commit_point || hypothesis.size() <= commit_point) return false;
  const size_t common = std::min(earlier.size(), hypothesis.size());
  return std::equal(hypothesis.begin(), hypothesis.begin() + common, earlier.begin());
}

// API.md 4.3: (share of the last kStabilityDecodes decodes that continue the commit point with the
// current tentative text) x (the tail's lowest token probability, from the engine's
// log-probabilities). The current decode is one of the last kStabilityDecodes.
float TentativeStability(const std::deque<std::vector<int64_t>>& recent_hypotheses,
                         const std::vector<int64_t>& hypothesis, int64_t committed,
                         const std::vector<float>& log_probabilities) {
  int continuing = 0;
  for (const std::vector<int64_t>& earlier : recent_hypotheses) {
    continuing += ContinuesTentative(earlier, hypothesis, committed) ? 1 : 0;
  }
  // Without one log-probability per token (or with a non-finite one) nothing is known: 0.
  float lowest = log_probabilities.size() == hypothesis.size() ? 1.0f : 0.0f;
  for (size_t i = static_cast<size_t>(committed);
       i < hypothesis.size() && i < log_probabilities.size(); ++i) {
    const float probability = std::exp(log_probabilities[i]);
    lowest = std::isfinite(probability) ? std::min(lowest, probability) : 0.0f;
  }
  return std::clamp(static_cast<float>(continuing) / Session::kStabilityDecodes * lowest, 0.0f,
                    1.0f);
}

// API.md 3: a final's confidence is the geometric mean of its tokens' probabilities, i.e. e to
// the mean log-probability; 0 without tokens, without one log-probability per token, or with a
// non-finite one (an overflowing logit).
float FinalConfidence(const std::vector<int64_t>& token_ids,
                      const std::vector<float>& log_probabilities) {
  if (token_ids.empty() || log_probabilities.size() != token_ids.size()) return 0.0f;
  double sum = 0;
  for (float log_probability : log_probabilities) sum += log_probability;
  const double confidence = std::exp(sum / static_cast<double>(log_probabilities.size()));
  if (!std::isfinite(confidence)) return 0.0f;
  return std::clamp(static_cast<float>(confidence), 0.0f, 1.0f);
}

}  // namespace

std::string Session::Decode(const std::vector<int64_t>& ids, bool hold_back_incomplete) const {
  if (deps_.tokenizer == nullptr || ids.empty()) return "";
  std::vector<int32_t> ids32(ids.begin(), ids.end());
  engine::tokenizer::DecodeOptions options;
  options.skip_special_tokens = true;
  options.skip_tag_tokens = true;
  options.skip_unknown_ids = true;
  if (hold_back_incomplete) {
    engine::tokenizer::IncrementalDetokenizer detokenizer(deps_.tokenizer, options);
    auto text = detokenizer.Append(ids32);
    return text.ok() ? *text : "";
  }
  auto text = deps_.tokenizer->Decode(ids32, options);
  return text.ok() ? *text : "";
}

void Session::SendLocked(SessionEvent event) {
  if (sink_ == nullptr || finished_) return;
  event.audio_received_seconds =
      config_.stream_offset_seconds + audio_received_seconds_ + audio_held_seconds_;
  event.audio_processed_seconds = std::max(config_.stream_offset_seconds, audio_processed_seconds_);
  event.commit_conflicts = commit_conflicts_;
  sink_->Send(std::move(event));
}

void Session::JoinTranscriptLocked(const std::string& sent_before, std::string* committed_delta) {
  if (committed_delta->empty()) return;
  // API.md 2.1: the committed deltas of a stream concatenate to its transcript, so two utterances
  // must not run their words together ("10:55" then "my birthday").
  if (sent_before.empty())
    committed_delta->insert(0, UtteranceSeparator(transcript_tail_, *committed_delta));
  transcript_tail_ += *committed_delta;
  constexpr size_t kTailBytes = 8;  // whole characters at the end: UTF-8 takes at most 4 bytes
  if (transcript_tail_.size() > kTailBytes) {
    transcript_tail_.erase(0, transcript_tail_.size() - kTailBytes);
  }
}

void Session::OnEngineOutput(engine::SequenceOutput output) {
  // A miss's rows go to the embedding cache, whatever becomes of the text.
  if (output.is_final && output.status.ok() && output.num_audio_embeddings > 0 &&
      deps_.embedding_cache != nullptr && !output.cache_key.empty()) {
    deps_.embedding_cache->Store(std::move(output.cache_key), std::move(output.audio_embeddings),
                                 output.num_audio_embeddings);
  }
  absl::MutexLock lock(&mu_);
  if (sink_ == nullptr || finished_) return;
  if (!output.status.ok()) {
    FinishLocked(output.status);
    return;
  }
  auto it = std::find_if(segments_.begin(), segments_.end(), [&](const SegmentRecord& r) {
    return !r.empty && r.index == output.segment_index;
  });
  if (it == segments_.end()) return;
  audio_processed_seconds_ = std::max(audio_processed_seconds_, output.audio_end_seconds);
  compute_time_ += output.compute_time;
  // API.md 4: decodes that disagreed with committed text (one however many tokens differed).
  if (output.commit_conflicts > 0) ++commit_conflicts_;
  peak_kv_tokens_ = std::max(peak_kv_tokens_, output.kv_tokens);
  if (output.is_final) {
    OnFinalLocked(output, &*it);
  } else {
    OnPartialLocked(output, &*it);
  }
  RearmBacklogWarningLocked();
  if (reader_paused_ && !BacklogExceededLocked() && sink_ != nullptr && !finished_) {
    reader_paused_ = false;
    sink_->OnCapacity();
  }
}

void Session::OnPartialLocked(const engine::SequenceOutput& output, SegmentRecord* segment) {
  // After the segment end no partial can commit more: the final must begin with what is committed.
  if (!config_.interim_results || segment->closed) return;
  if (!segment->speech_confirmed) return;  // the silence guard holds text back until speech
  const std::vector<int64_t>& hypothesis = output.token_ids;
  if (!StartsWith(hypothesis, segment->committed_ids)) return;  // computed before the last commit
  // The policy proposes, the session's committed ids stay the truth (the policy keeps no count of
  // its own that a return below could leave out of step).
  const int64_t committed = segment->commit->OnHypothesis(
      hypothesis, static_cast<int64_t>(segment->committed_ids.size()));
  std::vector<int64_t> committed_ids(hypothesis.begin(), hypothesis.begin() + committed);
  const std::string committed_text = Decode(committed_ids);
  if (!absl::StartsWith(committed_text, segment->committed_text))
    return;  // cannot happen at boundaries
  // A partial may stop inside a character split over tokens; its tentative text ends before it
  // (it used to end in U+FFFD, which the next partial replaced by the character).
  const std::string full_text = Decode(hypothesis, /*hold_back_incomplete=*/true);
  const std::string tentative = absl::StartsWith(full_text, committed_text)
                                    ? full_text.substr(committed_text.size())
                                    : std::string();
  segment->committed_ids = std::move(committed_ids);
  segment->committed_text = committed_text;
  segment->recent_hypotheses.push_back(hypothesis);
  while (segment->recent_hypotheses.size() > kStabilityDecodes) {
    segment->recent_hypotheses.pop_front();
  }
  // Nothing the client has not seen: compared with what was sent, not with the last hypothesis, so
  // that an update the rate limit held back goes out with the next output.
  if (committed_text == segment->sent_committed_text && tentative == segment->sent_tentative_text) {
    segment->held_partial.reset();  // a held one is older than what the client has
    return;
  }
  HeldPartial partial;
  partial.committed_text = committed_text;
  partial.input_time = output.input_time;
  partial.event.kind = SessionEvent::Kind::kTranscript;
  TranscriptEvent& t = partial.event.transcript;
  t.utterance_id = segment->index;
  t.tentative = tentative;
  t.stability = TentativeStability(segment->recent_hypotheses, hypothesis, committed,
                                   output.token_log_probabilities);
  t.utterance_start_seconds = config_.stream_offset_seconds + segment->start_seconds;
  t.result_end_seconds = output.audio_end_seconds;
  t.processing = output.compute_time;
  t.queue_wait = output.queue_wait;
  // Partials are rate-limited (never finals): one that comes too soon waits, replaced by newer
  // ones, until the interval has passed (SendHeldPartials) or the final makes it moot.
  const absl::Time now = absl::Now();
  if (segment->partial_sent &&
      now - segment->last_partial_time < absl::Milliseconds(config_.partial_interval_ms)) {
    segment->held_partial = std::move(partial);
    return;
  }
  SendPartialLocked(segment, std::move(partial), now);
}

void Session::SendPartialLocked(SegmentRecord* segment, HeldPartial partial, absl::Time now) {
  segment->held_partial.reset();
  segment->last_partial_time = now;
  TranscriptEvent& t = partial.event.transcript;
  // Committed text only grows, so what was sent is a prefix of it.
  t.committed_delta = partial.committed_text.substr(segment->sent_committed_text.size());
  JoinTranscriptLocked(segment->sent_committed_text, &t.committed_delta);
  segment->sent_committed_text = partial.committed_text;
  segment->sent_tentative_text = t.tentative;
  t.since_audio_arrival = now - partial.input_time;
  if (!segment->partial_sent && !(t.committed_delta.empty() && t.tentative.empty())) {
    segment->partial_sent = true;
    t.first_partial_latency = now - segment->first_arrival;
    first_partial_latencies_.push_back(*t.first_partial_latency);
  }
  SendLocked(std::move(partial.event));
}

void Session::SendHeldPartials(absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  for (SegmentRecord& segment : segments_) {
    if (segment.held_partial.has_value() &&
        now - segment.last_partial_time >= absl::Milliseconds(config_.partial_interval_ms)) {
      SendPartialLocked(&segment, *std::move(segment.held_partial), now);
    }
  }
}

void Session::OnFinalLocked(const engine::SequenceOutput& output, SegmentRecord* segment) {
  segment->held_partial.reset();  // the final carries all of its text
  // Silence guard: an utterance without enough speech ends with an empty final.
  const bool suppressed = !segment->speech_confirmed;
  const std::vector<int64_t> no_tokens;
  const std::vector<int64_t>& token_ids = suppressed ? no_tokens : output.token_ids;
  // The repetition guard and the token limit cut by tokens, which can split a character's bytes
  // (byte-level BPE splits rare characters and emoji): the text of a cut final ends before that
  // character instead of in U+FFFD, which the next utterance's context would carry. Committed
  // text always ends on a whole character, so the final still extends it. A final the model
  // ended keeps HF's decoding. (A final of max_new_tokens_per_segment tokens was cut: the engine
  // stops it there.)
  const bool cut = output.repeated_tokens_cut > 0 ||
                   static_cast<int64_t>(token_ids.size()) >= config_.max_new_tokens_per_segment;
  const std::string text = Decode(token_ids, /*hold_back_incomplete=*/cut);
  const absl::Time now = absl::Now();
  SessionEvent event;
  event.kind = SessionEvent::Kind::kTranscript;
  TranscriptEvent& t = event.transcript;
  t.utterance_id = segment->index;
  // The engine forced the committed tokens, so the final text extends the committed text; if it
  // ever did not, the whole text goes out and the revision is counted (never silently).
  t.revises_committed = !absl::StartsWith(text, segment->sent_committed_text);
  t.committed_delta = t.revises_committed ? text : text.substr(segment->sent_committed_text.size());
  JoinTranscriptLocked(segment->sent_committed_text, &t.committed_delta);
  t.is_final = true;
  t.from_flush = segment->from_flush;
  t.stability = 1.0f;
  t.confidence = FinalConfidence(token_ids, output.token_log_probabilities);
  if (config_.token_ids) t.token_ids = token_ids;
  t.utterance_start_seconds = config_.stream_offset_seconds + segment->start_seconds;
  t.result_end_seconds = config_.stream_offset_seconds + segment->end_seconds;
  t.since_audio_arrival = now - output.input_time;
  t.endpoint_wait = segment->endpoint_wait;
  t.processing = now - segment->endpoint_time;
  t.queue_wait = output.queue_wait;
  final_latencies_.push_back(t.endpoint_wait + t.processing);  // API.md 5's total
  ++utterances_;
  tokens_generated_ += static_cast<int64_t>(token_ids.size());
  // A guard's warning goes before the final it explains (END_OF_UTTERANCE must follow the final).
  SessionEvent warning;
  warning.kind = SessionEvent::Kind::kWarning;
  if (suppressed) {
    warning.warning = SessionEvent::WarningCode::kSilenceSuppressed;
    warning.message =
        absl::StrCat("utterance ", segment->index, ": less than ",
                     config_.silence_guard_min_speech_ms, " ms of speech: no text (silence guard)");
    SendLocked(std::move(warning));
  } else if (output.repeated_tokens_cut > 0) {
    warning.warning = SessionEvent::WarningCode::kRepetitionSuppressed;
    warning.message =
        absl::StrCat("utterance ", segment->index, ": the transcript ended in a loop; ",
                     output.repeated_tokens_cut, " repeated tokens were cut and decoding stopped");
    SendLocked(std::move(warning));
  }
  SendLocked(std::move(event));

  SessionEvent end_of_utterance;
  end_of_utterance.kind = SessionEvent::Kind::kSpeechEvent;
  end_of_utterance.speech_event = SessionEvent::SpeechEventType::kEndOfUtterance;
  end_of_utterance.utterance_id = segment->index;
  end_of_utterance.event_offset_seconds = t.result_end_seconds;
  SendLocked(end_of_utterance);
  if (config_.endpoint.mode == EndpointMode::kSingleUtterance) {
    end_of_utterance.speech_event = SessionEvent::SpeechEventType::kEndOfSingleUtterance;
    SendLocked(end_of_utterance);
  }
  // Suppressed text never becomes context (API.md 4.5).
  if (config_.carry_context_chars > 0 && !suppressed) CarryTextLocked(text);
  segments_.erase(std::find_if(segments_.begin(), segments_.end(),
                               [&](const SegmentRecord& r) { return &r == segment; }));
  DrainEmptySegmentsLocked();
  if (config_.carry_context_chars > 0) StartWaitingSegmentLocked();
  MaybeFinishLocked();
}

void Session::EmitEmptyFinalLocked(const SegmentRecord& segment) {
  SessionEvent event;
  event.kind = SessionEvent::Kind::kTranscript;
  event.transcript.utterance_id = segment.index;
  event.transcript.is_final = true;
  event.transcript.from_flush = segment.from_flush;
  event.transcript.empty_flush = true;
  event.transcript.stability = 1.0f;
  // It may have waited behind the finals of earlier utterances.
  event.transcript.processing = absl::Now() - segment.endpoint_time;
  event.transcript.utterance_start_seconds = config_.stream_offset_seconds + segment.start_seconds;
  event.transcript.result_end_seconds = config_.stream_offset_seconds + segment.end_seconds;
  SendLocked(std::move(event));
  SessionEvent end_of_utterance;
  end_of_utterance.kind = SessionEvent::Kind::kSpeechEvent;
  end_of_utterance.speech_event = SessionEvent::SpeechEventType::kEndOfUtterance;
  end_of_utterance.utterance_id = segment.index;
  end_of_utterance.event_offset_seconds = config_.stream_offset_seconds + segment.end_seconds;
  SendLocked(end_of_utterance);
  if (segment.ends_single_utterance) {
    end_of_utterance.speech_event = SessionEvent::SpeechEventType::kEndOfSingleUtterance;
    SendLocked(end_of_utterance);
  }
}

void Session::DrainEmptySegmentsLocked() {
  while (!segments_.empty() && segments_.front().empty) {
    EmitEmptyFinalLocked(segments_.front());
    segments_.pop_front();
  }
}

SummaryEvent Session::SummaryLocked() const {
  SummaryEvent summary;
  // What the events reported as received: the held part is 0 once the decoder was drained, and
  // after a speech start timeout it is what the resampler held when the input was cut.
  summary.audio_total_seconds = audio_received_seconds_ + audio_held_seconds_;
  summary.utterances = utterances_;
  summary.tokens_generated = tokens_generated_;
  summary.commit_conflicts = commit_conflicts_;
  summary.peak_kv_tokens = peak_kv_tokens_;
  summary.compute_rtf = audio_received_seconds_ > 0
                            ? absl::ToDoubleSeconds(compute_time_) / audio_received_seconds_
                            : 0.0;
  summary.first_partial = Summarize(first_partial_latencies_);
  summary.finalization = Summarize(final_latencies_);
  return summary;
}

void Session::MaybeFinishLocked() {
  if (!input_done_ || !segments_.empty() || finished_) return;
  SessionEvent summary;
  summary.kind = SessionEvent::Kind::kSummary;
  summary.summary = SummaryLocked();
  SendLocked(std::move(summary));
  FinishLocked(final_status_);
}

void Session::FinishLocked(const absl::Status& status) {
  if (finished_) return;
  finished_ = true;
  ResultSink* sink = sink_;
  sink_ = nullptr;
  if (sink != nullptr) sink->Finish(status);
}

void Session::SendWarning(SessionEvent::WarningCode code, const std::string& message) {
  SessionEvent event;
  event.kind = SessionEvent::Kind::kWarning;
  event.warning = code;
  event.message = message;
  absl::MutexLock lock(&mu_);
  SendLocked(std::move(event));
}

void Session::Abort(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  SessionEvent summary;
  summary.kind = SessionEvent::Kind::kSummary;
  summary.summary = SummaryLocked();
  SendLocked(std::move(summary));
  FinishLocked(status);
}

}  // namespace speechllm::streaming
