// References, streams and error details of harness.h.
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/output_format.h"
#include "client/pcm_source.h"
#include "engine/model/safetensors.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/server/harness.h"

namespace speechllm::itest {
namespace {

double Seconds(const google::protobuf::Duration& d) { return d.seconds() + d.nanos() * 1e-9; }

}  // namespace

// ---- references ----

std::vector<int64_t> OfflineTokens(const std::string& clip) {
  static std::mutex mu;
  static std::map<std::string, std::vector<int64_t>> cache;
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = cache.find(clip); it != cache.end()) return it->second;
  const ProcessResult r =
      RunProcess({SPEECHLLM_TEST_TRANSCRIBE_BIN, "--model=" + SourcePath("models/qwen2-audio-tiny"),
                  "--wav=" + ClipPath(clip), "--prompt_ids=1,2,3,501,500,502,10,11,12",
                  "--max_new_tokens=24"});
  std::vector<int64_t> ids;
  const std::string first_line = r.out.substr(0, r.out.find('\n'));
  for (absl::string_view piece : absl::StrSplit(first_line, ' ', absl::SkipEmpty())) {
    int64_t id = 0;
    if (!absl::SimpleAtoi(piece, &id)) {
      ids.clear();
      break;
    }
    ids.push_back(id);
  }
  if (r.exit_code != 0 || ids.size() != 24) {
    ADD_FAILURE() << "speechllm-transcribe failed for " << clip << " (exit " << r.exit_code
                  << "): " << r.out << r.err;
    return {};
  }
  std::printf("[offline] %s: %s\n", clip.c_str(), Ids(ids).c_str());
  cache[clip] = ids;
  return ids;
}

grpc::Status RecognizeOn(v1::StreamingSpeech::StubInterface* stub,
                         const v1::RecognizeRequest& request, v1::RecognizeResponse* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  return stub->Recognize(&context, request, response);
}

std::vector<int64_t> GoldenTokens(const std::string& clip) {
  const std::string key = clip == "clip_a" ? "greedy_a" : "greedy_b";
  auto file = engine::SafetensorsFile::Open(
      SourcePath("tests/data/qwen2-audio-tiny-golden/golden.safetensors"));
  if (!file.ok()) {
    ADD_FAILURE() << file.status();
    return {};
  }
  auto view = (*file)->Get(key);
  if (!view.ok()) {
    ADD_FAILURE() << view.status();
    return {};
  }
  auto ids = view->ToInt64();
  if (!ids.ok()) {
    ADD_FAILURE() << ids.status();
    return {};
  }
  return *ids;
}

std::string ClipPcm(const std::string& clip) {
  auto audio = client::ReadWavAsPcm(ClipPath(clip));
  if (!audio.ok()) {
    ADD_FAILURE() << audio.status();
    return "";
  }
  EXPECT_EQ(audio->format.sample_rate_hz(), 16000);
  EXPECT_EQ(audio->format.channels(), 1);
  return audio->data;
}

std::string ClipWavBytes(const std::string& clip) { return ReadFileOrEmpty(ClipPath(clip)); }

std::string Ids(const std::vector<int64_t>& ids) { return absl::StrJoin(ids, " "); }

// ---- streams ----

v1::SessionConfig ExactConfig(bool interim, v1::ResultOptions::CommitPolicy policy) {
  v1::SessionConfig config;
  config.mutable_audio()->set_encoding(v1::AudioFormat::PCM_S16LE);
  config.mutable_audio()->set_sample_rate_hz(16000);
  config.mutable_audio()->set_channels(1);
  v1::ResultOptions* results = config.mutable_results();
  results->set_interim_results(interim);
  results->set_commit_policy(policy);
  results->set_final_mode(v1::ResultOptions::EXACT);
  results->set_token_ids(true);
  config.mutable_endpointing()->set_mode(v1::Endpointing::MANUAL);
  return config;
}

std::vector<v1::StreamingRecognizeResponse> StreamRun::responses() const {
  std::vector<v1::StreamingRecognizeResponse> out;
  for (const auto& record : records) out.push_back(record.response);
  return out;
}

StreamRun Collect(client::StreamingClient* client, absl::Duration timeout) {
  StreamRun run;
  if (!client->WaitForDone(timeout)) {
    ADD_FAILURE() << "stream did not end within " << timeout << "; cancelling";
    client->Cancel();
  }
  run.status = client->Await();
  run.records = client->responses();
  run.wall_s = std::chrono::duration<double>(client->done_time() - client->start_time()).count();
  return run;
}

StreamRun RunStream(v1::StreamingSpeech::StubInterface* stub, const StreamSpec& spec) {
  client::StreamingClientOptions options;
  options.chunk_ms = spec.chunk_ms;
  options.realtime = spec.realtime;
  options.config = spec.config;
  client::StreamingClient client(stub, options);
  StreamRun run;
  if (absl::Status s = client.Start(); !s.ok()) {
    ADD_FAILURE() << s;
    return run;
  }
  EXPECT_TRUE(client.SendAudio(spec.pcm.empty() ? ClipPcm(spec.clip) : spec.pcm).ok());
  EXPECT_TRUE(client.CloseSend().ok());
  return Collect(&client, spec.timeout);
}

std::vector<int64_t> FinalTokenIds(const std::vector<v1::StreamingRecognizeResponse>& responses) {
  std::vector<int64_t> ids;
  for (const auto& r : responses) {
    if (r.has_transcript() && r.transcript().is_final()) {
      for (uint32_t id : r.transcript().token_ids()) ids.push_back(id);
    }
  }
  return ids;
}

int CountFinals(const std::vector<v1::StreamingRecognizeResponse>& responses) {
  int n = 0;
  for (const auto& r : responses) n += r.has_transcript() && r.transcript().is_final();
  return n;
}

int CountTranscripts(const std::vector<v1::StreamingRecognizeResponse>& responses) {
  int n = 0;
  for (const auto& r : responses) n += r.has_transcript();
  return n;
}

bool HasWarning(const std::vector<v1::StreamingRecognizeResponse>& responses,
                v1::Warning::Code code) {
  for (const auto& r : responses) {
    if (r.has_warning() && r.warning().code() == code) return true;
  }
  return false;
}

void ExpectWellFormed(const std::vector<v1::StreamingRecognizeResponse>& responses,
                      const std::string& what) {
  SCOPED_TRACE(what);
  if (responses.empty()) return;
  EXPECT_TRUE(responses.front().has_started()) << "the first response is not SessionStarted";
  double received = 0, processed = 0;
  for (size_t i = 0; i < responses.size(); ++i) {
    const auto& r = responses[i];
    EXPECT_EQ(r.response_seq(), i + 1) << "response_seq must grow by one";
    EXPECT_GE(Seconds(r.audio_received()), received) << "audio_received decreased at " << i;
    EXPECT_GE(Seconds(r.audio_processed()), processed) << "audio_processed decreased at " << i;
    received = std::max(received, Seconds(r.audio_received()));
    processed = std::max(processed, Seconds(r.audio_processed()));
    if (r.has_summary()) {
      EXPECT_EQ(i + 1, responses.size()) << "a summary before the end";
    }
    if (r.has_started()) {
      EXPECT_EQ(i, 0u) << "SessionStarted not first";
    }
    if (r.has_transcript() && r.transcript().is_final()) {
      EXPECT_TRUE(r.transcript().tentative().empty()) << "a final with tentative text";
    }
  }
}

void ExpectMatchesOffline(const StreamRun& run, const std::string& clip, const std::string& what) {
  SCOPED_TRACE(what);
  const auto responses = run.responses();
  EXPECT_TRUE(run.status.ok()) << Describe(run.status);
  ExpectWellFormed(responses, what);
  ASSERT_FALSE(responses.empty());
  ASSERT_TRUE(responses.back().has_summary()) << "the stream did not end with a SessionSummary";
  const double clip_s = ClipPcm(clip).size() / 32000.0;
  EXPECT_NEAR(Seconds(responses.back().summary().audio_total()), clip_s, 0.002);
  EXPECT_EQ(CountFinals(responses), 1);
  const std::vector<int64_t> offline = OfflineTokens(clip);
  ASSERT_EQ(offline.size(), 24u);
  EXPECT_EQ(Ids(FinalTokenIds(responses)), Ids(offline)) << "final differs from offline";
}

HealthyStream::HealthyStream(v1::StreamingSpeech::StubInterface* stub) : pcm_(ClipPcm("clip_a")) {
  // The reference first: computing it later (about 1 s) could idle out streams open meanwhile.
  OfflineTokens("clip_a");
  client::StreamingClientOptions options;
  options.chunk_ms = 100;
  options.realtime = false;
  options.config = ExactConfig(false, v1::ResultOptions::NONE);
  client_ = std::make_unique<client::StreamingClient>(stub, options);
  EXPECT_TRUE(client_->Start().ok());
  const size_t half = (pcm_.size() / 4) * 2;
  EXPECT_TRUE(client_->SendAudio(pcm_.substr(0, half)).ok());
  pcm_ = pcm_.substr(half);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (client_->responses().empty() && !client_->WaitForDone(absl::Milliseconds(5)) &&
         absl::Now() < deadline) {
  }
  EXPECT_FALSE(client_->responses().empty()) << "healthy stream: no SessionStarted";
}

void HealthyStream::Finish(const std::string& what) {
  EXPECT_TRUE(client_->SendAudio(pcm_).ok());
  EXPECT_TRUE(client_->CloseSend().ok());
  const StreamRun run = Collect(client_.get(), absl::Seconds(60));
  std::printf("[healthy] %s: status %s, %zu responses, final %s\n", what.c_str(),
              Describe(run.status).c_str(), run.records.size(),
              Ids(FinalTokenIds(run.responses())).c_str());
  ExpectMatchesOffline(run, "clip_a", "healthy concurrent stream during " + what);
}

void ExpectServerStillServes(ServerProcess* server, const std::string& what) {
  ASSERT_TRUE(server->Running()) << what << "\n" << server->Log();
  ExpectMatchesOffline(RunStream(server->stub(), StreamSpec{}), "clip_a",
                       "a normal stream after " + what);
}

// ---- errors ----

void OutcomeTally::Add(const grpc::Status& status, const std::string& what) {
  ++codes_[status.error_code()];
  EXPECT_TRUE(IsClientError(status.error_code())) << what << ": " << Describe(status);
  if (status.ok()) return;
  const std::string reason = ParseDetails(status).reason;
  EXPECT_FALSE(reason.empty()) << what << ": " << Describe(status);
  ++reasons_[reason];
}

int OutcomeTally::count(grpc::StatusCode code) const {
  const auto it = codes_.find(code);
  return it == codes_.end() ? 0 : it->second;
}

void OutcomeTally::Print(const std::string& label) const {
  for (const auto& [code, n] : codes_) std::printf("[%s] code %2d: %d\n", label.c_str(), code, n);
  for (const auto& [reason, n] : reasons_)
    std::printf("[%s]   reason %-28s %d\n", label.c_str(), reason.c_str(), n);
}

bool IsClientError(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::UNIMPLEMENTED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return true;
    default:
      return false;
  }
}

ErrorDetails ParseDetails(const grpc::Status& status) {
  ErrorDetails out;
  google::rpc::Status details;
  if (status.error_details().empty() || !details.ParseFromString(status.error_details())) {
    return out;
  }
  out.parsed = true;
  for (const google::protobuf::Any& any : details.details()) {
    google::rpc::ErrorInfo info;
    google::rpc::BadRequest bad_request;
    google::rpc::RetryInfo retry;
    if (any.UnpackTo(&info)) {
      out.reason = info.reason();
      out.domain = info.domain();
    } else if (any.UnpackTo(&bad_request)) {
      for (const auto& v : bad_request.field_violations()) out.fields.push_back(v.field());
    } else if (any.UnpackTo(&retry)) {
      out.has_retry_info = true;
      out.retry_delay = absl::Seconds(retry.retry_delay().seconds()) +
                        absl::Nanoseconds(retry.retry_delay().nanos());
    }
  }
  return out;
}

std::string Describe(const grpc::Status& status) {
  const ErrorDetails d = ParseDetails(status);
  return absl::StrCat(client::StatusCodeName(status.error_code()),
                      status.error_message().empty() ? "" : ": " + status.error_message(),
                      d.reason.empty() ? "" : " [" + d.reason + "]",
                      d.fields.empty() ? "" : " field " + absl::StrJoin(d.fields, ","));
}

void ExpectError(const grpc::Status& status, grpc::StatusCode code, const std::string& reason) {
  EXPECT_EQ(client::StatusCodeName(status.error_code()), client::StatusCodeName(code))
      << Describe(status);
  const ErrorDetails d = ParseDetails(status);
  EXPECT_TRUE(d.parsed) << "no google.rpc.Status in grpc-status-details-bin: " << Describe(status);
  EXPECT_EQ(d.reason, reason) << Describe(status);
  EXPECT_EQ(d.domain, "speechllm.v1");
}

}  // namespace speechllm::itest
