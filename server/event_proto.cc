#include "server/event_proto.h"

#include <algorithm>
#include <cmath>

namespace speechllm::server {

google::protobuf::Duration DurationProto(double seconds) {
  // google.protobuf.Duration: |seconds| <= 315,576,000,000 (10,000 years), nanos with the sign of
  // seconds and |nanos| < 1e9. NaN gives 0.
  constexpr double kMaxSeconds = 315576000000.0;
  google::protobuf::Duration d;
  if (std::isnan(seconds)) return d;
  seconds = std::clamp(seconds, -kMaxSeconds, kMaxSeconds);
  int64_t whole = static_cast<int64_t>(std::trunc(seconds));
  int64_t nanos = std::llround((seconds - static_cast<double>(whole)) * 1e9);
  // Rounding can reach a whole second (0.9999999999999999 s, the sum of ten 0.1 s chunks): carry
  // it, or the value would lose that second.
  if (nanos >= 1000000000) {
    ++whole;
    nanos -= 1000000000;
  } else if (nanos <= -1000000000) {
    --whole;
    nanos += 1000000000;
  }
  d.set_seconds(whole);
  d.set_nanos(static_cast<int32_t>(nanos));
  return d;
}

google::protobuf::Duration DurationProto(absl::Duration duration) {
  return DurationProto(absl::ToDoubleSeconds(duration));
}

void ToProto(const streaming::TranscriptEvent& t, v1::TranscriptUpdate* u) {
  u->set_utterance_id(static_cast<uint32_t>(t.utterance_id));
  u->set_committed_delta(t.committed_delta);
  u->set_tentative(t.tentative);
  u->set_tentative_stability(t.stability);
  u->set_is_final(t.is_final);
  u->set_from_flush(t.from_flush);
  u->set_confidence(t.confidence);
  *u->mutable_utterance_start() = DurationProto(t.utterance_start_seconds);
  *u->mutable_result_end() = DurationProto(t.result_end_seconds);
  for (int64_t id : t.token_ids) u->add_token_ids(static_cast<uint32_t>(id));
  auto* timing = u->mutable_timing();
  // API.md 5: on an utterance's first non-empty update, from the arrival of its speech onset (the
  // first-partial latency); on the others, from the arrival of the audio that triggered them.
  *timing->mutable_since_audio_arrival() =
      DurationProto(t.first_partial_latency.value_or(t.since_audio_arrival));
  *timing->mutable_endpoint_wait() = DurationProto(t.endpoint_wait);
  *timing->mutable_processing() = DurationProto(t.processing);
  *timing->mutable_queue_wait() = DurationProto(t.queue_wait);
}

void ApplyResultExtras(const ResultExtras& extras, v1::TranscriptUpdate* update) {
  update->set_language_code(extras.language_code);
  if (!extras.timing) update->clear_timing();
}

void ToProto(const streaming::SessionEvent& event, v1::StreamingRecognizeResponse* response) {
  using Kind = streaming::SessionEvent::Kind;
  *response->mutable_audio_received() = DurationProto(event.audio_received_seconds);
  *response->mutable_audio_processed() = DurationProto(event.audio_processed_seconds);
  switch (event.kind) {
    case Kind::kTranscript:
      ToProto(event.transcript, response->mutable_transcript());
      break;
    case Kind::kSpeechEvent: {
      auto* e = response->mutable_speech_event();
      using T = streaming::SessionEvent::SpeechEventType;
      switch (event.speech_event) {
        case T::kSpeechStarted:
          e->set_type(v1::SpeechEvent::SPEECH_STARTED);
          break;
        case T::kSpeechEnded:
          e->set_type(v1::SpeechEvent::SPEECH_ENDED);
          break;
        case T::kEndOfUtterance:
          e->set_type(v1::SpeechEvent::END_OF_UTTERANCE);
          break;
        case T::kEndOfSingleUtterance:
          e->set_type(v1::SpeechEvent::END_OF_SINGLE_UTTERANCE);
          break;
        case T::kSpeechStartTimeout:
          e->set_type(v1::SpeechEvent::SPEECH_START_TIMEOUT);
          break;
      }
      *e->mutable_offset() = DurationProto(event.event_offset_seconds);
      e->set_utterance_id(static_cast<uint32_t>(event.utterance_id));
      break;
    }
    case Kind::kWarning: {
      auto* w = response->mutable_warning();
      using W = streaming::SessionEvent::WarningCode;
      switch (event.warning) {
        case W::kBacklog:
          w->set_code(v1::Warning::BACKLOG);
          break;
        case W::kFlowControl:
          w->set_code(v1::Warning::FLOW_CONTROL);
          break;
        case W::kAudioClipped:
          w->set_code(v1::Warning::AUDIO_CLIPPED);
          break;
        case W::kSeqGap:
          w->set_code(v1::Warning::SEQ_GAP);
          break;
        case W::kSilenceSuppressed:
          w->set_code(v1::Warning::SILENCE_SUPPRESSED);
          break;
        case W::kRepetitionSuppressed:
          w->set_code(v1::Warning::REPETITION_SUPPRESSED);
          break;
        case W::kContextNotApplied:
          w->set_code(v1::Warning::CONTEXT_NOT_APPLIED);
          break;
      }
      w->set_message(event.message);
      break;
    }
    case Kind::kSummary: {
      const streaming::SummaryEvent& s = event.summary;
      auto* summary = response->mutable_summary();
      *summary->mutable_audio_total() = DurationProto(s.audio_total_seconds);
      summary->set_utterances(static_cast<uint32_t>(s.utterances));
      summary->set_tokens_generated(static_cast<uint32_t>(s.tokens_generated));
      summary->set_commit_conflicts(static_cast<uint32_t>(s.commit_conflicts));
      summary->set_peak_kv_tokens(static_cast<uint32_t>(s.peak_kv_tokens));
      summary->set_compute_rtf(static_cast<float>(s.compute_rtf));
      auto latency = [](const streaming::LatencySummary& l, v1::LatencyStats* out) {
        *out->mutable_p50() = DurationProto(l.p50);
        *out->mutable_p95() = DurationProto(l.p95);
        *out->mutable_max() = DurationProto(l.max);
      };
      // A stream without a sample (no partial with text, no final) leaves the field unset, not
      // zeros a client would read as a latency of 0 ms.
      if (s.first_partial.max > absl::ZeroDuration()) {
        latency(s.first_partial, summary->mutable_first_partial());
      }
      if (s.finalization.max > absl::ZeroDuration()) {
        latency(s.finalization, summary->mutable_finalization());
      }
      break;
    }
  }
}

}  // namespace speechllm::server
