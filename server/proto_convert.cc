#include "server/proto_convert.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"
#include "server/audio_config.h"
#include "server/event_proto.h"
#include "server/grpc_status.h"
#include "server/languages.h"

namespace speechllm::server {
namespace {

// A century: at this size a double still holds a stream offset to a microsecond.
constexpr int64_t kMaxStreamOffsetSeconds = int64_t{100} * 365 * 24 * 3600;

using v1::Endpointing;
using v1::ResultOptions;

// Extensions this server knows (unknown keys are rejected so that typos fail).
absl::Status ApplyExtensions(const v1::SessionConfig& config, streaming::SessionConfig* session) {
  for (const auto& [key, value] : config.extensions()) {
    int number = 0;
    const bool numeric = absl::SimpleAtoi(value, &number);
    if (key == "chunk_ms" && numeric) {
      session->chunk_ms = number;
    } else if (key == "max_new_tokens_per_update" && numeric) {
      session->max_new_tokens_per_update = number;
    } else if (key == "holdback_tokens" && numeric) {
      if (number < 0 || number > streaming::CommitRules::kMaxHoldbackTokens) {
        return BadConfig(
            "extensions[holdback_tokens]",
            absl::StrCat("must be in [0, ", streaming::CommitRules::kMaxHoldbackTokens, "]"));
      }
      session->commit_rules.holdback_tokens = number;
    } else if (key == "agreement" && numeric && (number == 0 || number == 2)) {
      session->commit_rules.agreement = number == 2;  // LocalAgreement-n: n = 2, or 0 for none
    } else if (key == "agreement") {
      return BadConfig("extensions[agreement]", "must be 2 (LocalAgreement-2) or 0 (none)");
    } else if (key == "chunk_ms" || key == "max_new_tokens_per_update" ||
               key == "holdback_tokens") {
      return BadConfig("extensions[" + key + "]", "must be an integer");
    } else {
      return WithField(
          WithReason(absl::InvalidArgumentError(absl::StrCat(
                         "unknown extension \"", key,
                         "\" (known: chunk_ms, max_new_tokens_per_update, holdback_tokens, "
                         "agreement)")),
                     "UNKNOWN_EXTENSION"),
          "config.extensions");
    }
  }
  return absl::OkStatus();
}

// The first 40 characters of a client's text for an error message, "..." after a cut.
std::string Excerpt(const std::string& text) {
  constexpr int kChars = 40;
  size_t end = 0;
  for (int n = 0; end < text.size() && n < kChars; ++n) {
    ++end;
    while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
  }
  return end < text.size() ? text.substr(0, end) + "..." : text;
}

}  // namespace

absl::Status BadConfig(const std::string& field, const std::string& message,
                       const std::string& reason) {
  return WithField(
      WithReason(absl::InvalidArgumentError(absl::StrCat("config.", field, ": ", message)), reason),
      "config." + field);
}

absl::StatusOr<streaming::PromptConfig> PromptFromContext(const v1::RecognitionContext& context,
                                                          const ServerConfig& server,
                                                          const PromptSource& prompt,
                                                          const std::string& language,
                                                          const std::string& field) {
  auto bad = [&](const std::string& sub, const std::string& message,
                 const std::string& reason = "BAD_CONFIG") {
    return WithField(
        WithReason(absl::InvalidArgumentError(absl::StrCat(field, sub, ": ", message)), reason),
        field + sub);
  };
  // Characters: protobuf has checked the UTF-8, so every byte but a continuation byte starts one.
  const auto chars = [](const std::string& s) {
    return std::count_if(s.begin(), s.end(),
                         [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
  };
  // The sizes go first, before any text is scanned or tokenized: a 27 MB phrase took 4 s and
  // 570 MB to be refused by the token limit. Quotes are excerpts: a phrase holding a control token
  // was copied whole into its status, which BoundedErrorMessage then cut to 512 bytes, reason and
  // all.
  if (context.phrases_size() > server.max_phrases) {
    return bad(".phrases", absl::StrCat("more than ", server.max_phrases, " phrases"));
  }
  if (chars(context.prompt()) > server.max_context_chars) {
    return bad(".prompt", absl::StrCat("longer than ", server.max_context_chars, " characters"));
  }
  ContextText text;
  text.language = language;
  text.prompt = context.prompt();
  // Each phrase is checked in the client's order, then the word list names higher boosts first
  // (ties keep the client's order): boost is emphasis in the prompt (API.md 2.1), its effect on
  // the model heuristic. (Sorted first, a NaN boost broke the sort's ordering before its check.)
  std::vector<const v1::Phrase*> phrases;
  for (int i = 0; i < context.phrases_size(); ++i) {
    const v1::Phrase& phrase = context.phrases(i);
    const std::string path = absl::StrCat(".phrases[", i, "]");  // AIP-193's field path
    if (!(phrase.boost() >= 0 && phrase.boost() <= 20))          // NaN too
      return bad(path + ".boost", absl::StrCat("must be in [0, 20], got ", phrase.boost()));
    if (chars(phrase.text()) > server.max_context_chars) {
      return bad(path + ".text", absl::StrCat("a phrase longer than ", server.max_context_chars,
                                              " characters (\"", Excerpt(phrase.text()), "\")"));
    }
    if (absl::Status status = prompt.CheckContextText(phrase.text()); !status.ok()) {
      return bad(path + ".text",
                 absl::StrCat("\"", Excerpt(phrase.text()), "\" ", status.message()));
    }
    phrases.push_back(&phrase);
  }
  std::stable_sort(phrases.begin(), phrases.end(), [](const v1::Phrase* a, const v1::Phrase* b) {
    return a->boost() > b->boost();
  });
  for (const v1::Phrase* phrase : phrases) text.phrases.push_back(phrase->text());
  if (absl::Status status = prompt.CheckContextText(text.prompt); !status.ok())
    return bad(".prompt", std::string(status.message()));
  auto built = prompt.Build(text);
  if (!built.ok()) {
    // Raw prompt ids take no context: a feature of this server's set-up, not the request's fault.
    return bad("", std::string(built.status().message()),
               absl::IsFailedPrecondition(built.status()) ? "FEATURE_UNAVAILABLE" : "BAD_CONFIG");
  }
  if (static_cast<int64_t>(built->suffix_ids.size()) > server.max_prompt_suffix_tokens) {
    return bad("", absl::StrCat("makes the prompt after the audio ", built->suffix_ids.size(),
                                " tokens long; at most ", server.max_prompt_suffix_tokens,
                                " (shorten the prompt or the phrases)"));
  }
  if (server.carry_context_chars > 0) {
    // `prompt` is the server's and outlives every stream.
    built->suffix_with_previous_text =
        [&prompt, text, max_tokens = server.max_prompt_suffix_tokens](
            const std::string& previous_text) -> absl::StatusOr<std::vector<int64_t>> {
      ContextText with_previous = text;
      with_previous.previous_text = previous_text;
      SPEECHLLM_ASSIGN_OR_RETURN(streaming::PromptConfig carried, prompt.Build(with_previous));
      if (static_cast<int64_t>(carried.suffix_ids.size()) > max_tokens)
        return absl::OutOfRangeError("the prompt with the earlier text is too long");
      return std::move(carried.suffix_ids);
    };
  }
  return built;
}

v1::Limits LimitsProto(const ServerConfig& server) {
  v1::Limits limits;
  *limits.mutable_max_session_duration() = DurationProto(server.max_stream_duration);
  *limits.mutable_idle_timeout() = DurationProto(server.idle_timeout);
  limits.set_max_chunk_bytes(server.max_chunk_bytes);
  *limits.mutable_max_buffered_audio() = DurationProto(server.max_buffered_audio_ms / 1000.0);
  *limits.mutable_max_recognize_audio() = DurationProto(server.max_recognize_audio);
  limits.set_max_embedding_tokens(static_cast<uint32_t>(server.max_embedding_tokens));
  limits.set_max_context_chars(server.max_context_chars);
  limits.set_max_phrases(server.max_phrases);
  return limits;
}

absl::StatusOr<StreamSetup> ConvertConfig(const v1::SessionConfig& config,
                                          const ServerConfig& server, const PromptSource& prompt,
                                          bool for_recognize, absl::string_view audio_bytes) {
  StreamSetup setup;
  streaming::SessionConfig& s = setup.session;
  // Model and languages.
  if (!config.model().empty() && config.model() != server.model_name) {
    return BadConfig("model",
                     absl::StrCat("unknown model \"", config.model(), "\"; this server serves \"",
                                  server.model_name, "\""),
                     "UNKNOWN_MODEL");
  }
  absl::StatusOr<std::string> language = ResolveLanguage(
      {config.language_codes().begin(), config.language_codes().end()}, server.language_codes);
  if (!language.ok()) return BadConfig("language_codes", std::string(language.status().message()));
  setup.result_extras.language_code = *std::move(language);
  setup.result_extras.timing = config.results().timing();
  // Audio format.
  if (absl::Status status = ConvertAudio(config.audio(), for_recognize, audio_bytes, &setup);
      !status.ok()) {
    return status;
  }
  // Enum values this server does not know (a newer client's, or garbage) are refused, not run as
  // the default and echoed back unchanged (API.md 2.1: out-of-range values are INVALID_ARGUMENT).
  if (!v1::SessionConfig::LatencyMode_IsValid(config.latency()))
    return BadConfig("latency", absl::StrCat("unknown LatencyMode ", config.latency()));
  if (!Endpointing::Mode_IsValid(config.endpointing().mode())) {
    return BadConfig("endpointing.mode",
                     absl::StrCat("unknown Endpointing.Mode ", config.endpointing().mode()));
  }
  if (!ResultOptions::CommitPolicy_IsValid(config.results().commit_policy())) {
    return BadConfig("results.commit_policy",
                     absl::StrCat("unknown CommitPolicy ", config.results().commit_policy()));
  }
  if (!ResultOptions::FinalMode_IsValid(config.results().final_mode())) {
    return BadConfig("results.final_mode",
                     absl::StrCat("unknown FinalMode ", config.results().final_mode()));
  }
  // Results.
  const ResultOptions& results = config.results();
  s.interim_results = for_recognize ? false : results.interim_results();
  s.token_ids = results.token_ids();
  if (results.partial_interval_ms() > 60000) {
    return BadConfig("results.partial_interval_ms", "must be at most 60000");
  }
  if (results.partial_interval_ms() != 0) {
    s.partial_interval_ms = static_cast<int>(results.partial_interval_ms());
  }
  if (results.word_timestamps()) {
    return BadConfig("results.word_timestamps", "this model cannot time words",
                     "FEATURE_UNAVAILABLE");
  }
  s.commit_policy = results.commit_policy() == ResultOptions::NONE
                        ? streaming::CommitPolicyKind::kNone
                        : streaming::CommitPolicyKind::kLocalAgreement;
  s.final_mode = results.final_mode() == ResultOptions::FAST ? engine::FinalMode::kFast
                                                             : engine::FinalMode::kExact;
  // Latency mode -> chunk size and commit rules (API.md 4.2 presets): LOW commits all but the
  // last 3 tokens, the others what two hypotheses agree on but the last 5. A commit_policy of
  // LOCAL_AGREEMENT asked for by name keeps the agreement in LOW too (API.md 2.1's meaning).
  switch (config.latency()) {
    case v1::SessionConfig::LOW:
      s.chunk_ms = kLowLatencyChunkMs;
      s.commit_rules.agreement = results.commit_policy() == ResultOptions::LOCAL_AGREEMENT;
      s.commit_rules.holdback_tokens = 3;
      break;
    case v1::SessionConfig::ACCURATE:
      s.chunk_ms = kAccurateChunkMs;
      s.commit_rules.holdback_tokens = 5;
      break;
    default:
      s.chunk_ms = server.default_chunk_ms;
      s.commit_rules.holdback_tokens = 5;
      break;
  }
  // Endpointing.
  const Endpointing& e = config.endpointing();
  switch (e.mode()) {
    case Endpointing::SINGLE_UTTERANCE:
      s.endpoint.mode = streaming::EndpointMode::kSingleUtterance;
      break;
    case Endpointing::MANUAL:
      s.endpoint.mode = streaming::EndpointMode::kManual;
      break;
    default:
      s.endpoint.mode = streaming::EndpointMode::kContinuous;
      break;
  }
  // The client's values are checked as sent, on their own field (they were clamped to 2^30
  // first, and a refusal quoted the clamped number under the internal EndpointConfig name).
  for (const auto& [range, value] :
       {std::pair(streaming::kEndSilenceMsRange, e.end_silence_ms()),
        std::pair(streaming::kMaxUtteranceMsRange, e.max_utterance_ms()),
        std::pair(streaming::kSpeechStartTimeoutMsRange, e.speech_start_timeout_ms())}) {
    if (value != 0 &&
        (value < static_cast<uint32_t>(range.lo) || value > static_cast<uint32_t>(range.hi))) {
      return BadConfig(absl::StrCat("endpointing.", range.field),
                       absl::StrCat("must be in [", range.lo, ", ", range.hi, "]",
                                    range.lo > 0 ? ", or 0 for the default" : "", "; got ", value));
    }
  }
  if (e.end_silence_ms() != 0) s.endpoint.end_silence_ms = static_cast<int>(e.end_silence_ms());
  if (e.max_utterance_ms() != 0) {
    s.endpoint.max_utterance_ms = static_cast<int>(e.max_utterance_ms());
  }
  // A live stream's timeout: a file's leading silence would empty Recognize's result, which has
  // no SPEECH_START_TIMEOUT event to say so. Checked above, not applied there.
  s.endpoint.speech_start_timeout_ms =
      for_recognize ? 0 : static_cast<int>(e.speech_start_timeout_ms());
  s.voice_activity_events = e.voice_activity_events();
  if (absl::Status status = s.endpoint.Validate(); !status.ok()) {
    return BadConfig("endpointing", std::string(status.message()));
  }
  // Context and prompt.
  auto prompt_config = PromptFromContext(config.context(), server, prompt,
                                         setup.result_extras.language_code, "config.context");
  if (!prompt_config.ok()) return prompt_config.status();
  s.prompt = *std::move(prompt_config);
  s.max_new_tokens_per_segment = server.max_new_tokens;
  s.max_new_tokens_per_update = std::min(32, server.max_new_tokens);
  s.repetition_guard.min_loop_tokens = server.repetition_guard_tokens;
  s.silence_guard_min_speech_ms = server.silence_guard_min_speech_ms;
  s.carry_context_chars = server.carry_context_chars;
  s.max_buffered_audio_ms = server.max_buffered_audio_ms;
  if (config.has_stream_offset()) {
    // A valid Duration (google/protobuf/duration.proto: |seconds| <= 315,576,000,000, |nanos| <
    // 1e9 with the seconds' sign), not negative, and within a century: offsets stay exact in the
    // double the session adds them in.
    const google::protobuf::Duration& offset = config.stream_offset();
    if (offset.seconds() < 0 || offset.nanos() < 0 || offset.nanos() >= 1000000000 ||
        offset.seconds() > kMaxStreamOffsetSeconds) {
      return BadConfig("stream_offset",
                       absl::StrCat("must be a duration from 0 to ", kMaxStreamOffsetSeconds,
                                    " s with nanos in [0, 1e9)"));
    }
    s.stream_offset_seconds = static_cast<double>(offset.seconds()) + offset.nanos() * 1e-9;
  }
  if (absl::Status status = ApplyExtensions(config, &s); !status.ok()) return status;
  if (absl::Status status = s.Validate(); !status.ok())
    return BadConfig("extensions", std::string(status.message()));

  // The effective configuration: the request with every default written out.
  setup.effective = config;
  setup.effective.set_model(server.model_name);
  setup.effective.mutable_audio()->set_encoding(setup.encoding);
  // Containers: the declared rate and channels, 0 = from the header.
  setup.effective.mutable_audio()->set_sample_rate_hz(setup.audio.sample_rate_hz);
  setup.effective.mutable_audio()->set_channels(setup.audio.channels);
  auto* r = setup.effective.mutable_results();
  r->set_interim_results(s.interim_results);
  r->set_partial_interval_ms(static_cast<uint32_t>(s.partial_interval_ms));
  r->set_commit_policy(s.commit_policy == streaming::CommitPolicyKind::kNone
                           ? ResultOptions::NONE
                           : ResultOptions::LOCAL_AGREEMENT);
  r->set_final_mode(s.final_mode == engine::FinalMode::kFast ? ResultOptions::FAST
                                                             : ResultOptions::EXACT);
  auto* ep = setup.effective.mutable_endpointing();
  ep->set_mode(e.mode() == Endpointing::MODE_UNSPECIFIED ? Endpointing::CONTINUOUS : e.mode());
  ep->set_end_silence_ms(s.endpoint.end_silence_ms);
  ep->set_max_utterance_ms(s.endpoint.max_utterance_ms);
  if (setup.effective.latency() == v1::SessionConfig::LATENCY_MODE_UNSPECIFIED) {
    setup.effective.set_latency(v1::SessionConfig::BALANCED);
  }
  (*setup.effective.mutable_extensions())["chunk_ms"] = std::to_string(s.chunk_ms);
  (*setup.effective.mutable_extensions())["max_new_tokens_per_update"] =
      std::to_string(s.max_new_tokens_per_update);
  if (s.commit_policy == streaming::CommitPolicyKind::kLocalAgreement) {
    (*setup.effective.mutable_extensions())["holdback_tokens"] =
        std::to_string(s.commit_rules.holdback_tokens);
    (*setup.effective.mutable_extensions())["agreement"] = s.commit_rules.agreement ? "2" : "0";
  } else {  // NONE commits nothing early: no rule applies, none is echoed
    setup.effective.mutable_extensions()->erase("holdback_tokens");
    setup.effective.mutable_extensions()->erase("agreement");
  }
  return setup;
}

}  // namespace speechllm::server
