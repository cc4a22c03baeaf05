#include "client/output_format.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace speechllm::client {

using speechllm::v1::TranscriptUpdate;

absl::StatusOr<std::string> ToJsonLine(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat("JSON conversion failed: ", status.ToString()));
  }
  return json;
}

std::string StatusCodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  const int index = static_cast<int>(code);
  if (index >= 0 && index < static_cast<int>(std::size(kNames))) return kNames[index];
  return absl::StrCat("CODE_", index);
}

std::string DescribeStatus(const grpc::Status& status) {
  // The details are Any messages; printing them needs their types in the descriptor pool. A
  // program that never names them would not link them from the static libraries (API.md's
  // linker pitfall): naming them here does.
  static const bool kDetailTypesLinked =
      google::rpc::ErrorInfo::descriptor() != nullptr &&
      google::rpc::BadRequest::descriptor() != nullptr &&
      google::rpc::RetryInfo::descriptor() != nullptr &&
      google::rpc::QuotaFailure::descriptor() != nullptr &&
      google::rpc::PreconditionFailure::descriptor() != nullptr &&
      google::rpc::ResourceInfo::descriptor() != nullptr &&
      google::rpc::DebugInfo::descriptor() != nullptr &&
      google::rpc::Help::descriptor() != nullptr &&
      google::rpc::LocalizedMessage::descriptor() != nullptr;
  (void)kDetailTypesLinked;
  std::string text =
      absl::StrCat(StatusCodeName(status.error_code()), ": ", status.error_message());
  if (!status.error_details().empty()) {
    google::rpc::Status details;
    if (!details.ParseFromString(status.error_details())) {
      absl::StrAppend(&text, " (unparsable details)");
    } else if (absl::StatusOr<std::string> json = ToJsonLine(details); json.ok()) {
      absl::StrAppend(&text, " details: ", *json);
    } else {
      absl::StrAppend(&text, " details: ", details.ShortDebugString());
    }
  }
  return text;
}

TranscriptPrinter::TranscriptPrinter(bool terminal, bool print_token_ids)
    : terminal_(terminal), print_token_ids_(print_token_ids) {}

std::string TranscriptPrinter::Render(const TranscriptUpdate& update) {
  std::string& committed = committed_[update.utterance_id()];
  committed += update.committed_delta();
  // Each utterance gets a line of its own, so the separator the server puts before a later
  // utterance's first words (API.md 2.1: the deltas concatenate to the transcript) is not shown.
  std::string shown = committed + update.tentative();
  if (update.utterance_id() > 0) {
    shown.erase(0, shown.size() - absl::StripLeadingAsciiWhitespace(shown).size());
  }
  std::string out;
  if (!update.is_final()) {
    if (terminal_) {
      out = absl::StrCat("\r\033[K", shown);
      line_open_ = true;
    } else {
      out = absl::StrCat("partial: ", shown, "\n");
    }
    return out;
  }
  out = absl::StrCat(terminal_ ? "\r\033[K" : "final: ", shown, "\n");
  line_open_ = false;
  if (print_token_ids_) {
    absl::StrAppend(&out, "tokens: ", absl::StrJoin(update.token_ids(), " "), "\n");
  }
  committed_.erase(update.utterance_id());
  return out;
}

std::string TranscriptPrinter::Finish() {
  if (!line_open_) return "";
  line_open_ = false;
  return "\n";
}

StreamReport ComputeStreamReport(const std::vector<ResponseRecord>& responses,
                                 const std::vector<SentChunk>& sent_chunks,
                                 Clock::time_point start_time, Clock::time_point end_time,
                                 std::optional<absl::Duration> audio_duration) {
  StreamReport report;
  report.wall_time = absl::FromChrono(end_time - start_time);
  if (!sent_chunks.empty()) report.audio_sent = sent_chunks.back().audio_end;
  if (audio_duration.has_value()) report.audio_sent = *audio_duration;
  if (report.audio_sent > absl::ZeroDuration()) {
    report.real_time_factor = absl::FDivDuration(report.wall_time, report.audio_sent);
  }
  for (const ResponseRecord& record : responses) {
    if (!record.response.has_transcript() || record.chunks_sent == 0) continue;
    const TranscriptUpdate& update = record.response.transcript();
    const bool has_text = !update.committed_delta().empty() || !update.tentative().empty();
    // A final is not a partial: without interim results there is no first partial.
    if (!report.first_partial_latency.has_value() && has_text && !update.is_final()) {
      report.first_partial_latency =
          absl::FromChrono(record.arrival_time - sent_chunks.front().send_time);
    }
    if (update.is_final()) {
      report.finalization_latencies.push_back(
          absl::FromChrono(record.arrival_time - record.last_audio_sent_time));
    }
  }
  return report;
}

namespace {

std::string Ms(absl::Duration d) {
  return absl::StrFormat("%.1f ms", absl::ToDoubleMilliseconds(d));
}

std::string Ms(const google::protobuf::Duration& d) {
  return Ms(absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos()));
}

std::string LatencyStatsText(const speechllm::v1::LatencyStats& stats) {
  return absl::StrCat("p50 ", Ms(stats.p50()), ", p95 ", Ms(stats.p95()), ", max ",
                      Ms(stats.max()));
}

}  // namespace

std::string FormatStreamReport(const StreamReport& report,
                               const speechllm::v1::SessionSummary* summary) {
  std::string text;
  // What the client can time on its own, named for what it is: from its first chunk (the API's
  // first-partial latency counts from the speech onset), and from its last chunk before each
  // final (in real time the next chunk is at most a chunk away, so this stays under one chunk;
  // the API's finalization latency is the server's line below).
  absl::StrAppend(&text, "first partial after the first audio sent: ",
                  report.first_partial_latency ? Ms(*report.first_partial_latency) : "none", "\n");
  const std::vector<absl::Duration>& finals = report.finalization_latencies;
  if (finals.empty()) {
    absl::StrAppend(&text, "final after the last audio sent before it: none\n");
  } else {
    absl::Duration sum;
    for (absl::Duration d : finals) sum += d;
    absl::StrAppend(&text, "final after the last audio sent before it: mean ",
                    Ms(sum / finals.size()), ", max ",
                    Ms(*std::max_element(finals.begin(), finals.end())), ", last ",
                    Ms(finals.back()), " (", finals.size(), " finals)\n");
  }
  absl::StrAppend(&text,
                  absl::StrFormat("real-time factor: %.3f (wall %.3f s / audio %.3f s)\n",
                                  report.real_time_factor, absl::ToDoubleSeconds(report.wall_time),
                                  absl::ToDoubleSeconds(report.audio_sent)));
  if (summary != nullptr) {
    absl::StrAppend(&text, "server summary: audio ", Ms(summary->audio_total()), ", utterances ",
                    summary->utterances(), ", tokens ", summary->tokens_generated(),
                    ", peak KV tokens ", summary->peak_kv_tokens(), ", compute RTF ",
                    absl::StrFormat("%.3f", summary->compute_rtf()), ", commit conflicts ",
                    summary->commit_conflicts(), "\n");
    absl::StrAppend(
        &text, "server first-partial latency: ",
        summary->has_first_partial() ? LatencyStatsText(summary->first_partial()) : "none", "\n");
    absl::StrAppend(
        &text, "server finalization latency: ",
        summary->has_finalization() ? LatencyStatsText(summary->finalization()) : "none", "\n");
  }
  return text;
}

}  // namespace speechllm::client
