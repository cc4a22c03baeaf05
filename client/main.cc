// speechllm-client: streams a WAV file or raw S16LE PCM from stdin to a speechllm server and prints
// partial and final transcripts, then client-side latencies and the server's SessionSummary.
// Microphone: arecord -f S16_LE -r 16000 -c 1 | speechllm-client --server HOST:PORT --stdin-pcm
// 16000 Exit code: 0 on OK, otherwise 10 + the gRPC status code (2 for bad flags).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/output_format.h"
#include "client/pcm_source.h"
#include "client/speech_client.h"
#include "grpcpp/grpcpp.h"

ABSL_FLAG(std::string, server, "", "server address HOST:PORT");
ABSL_FLAG(std::string, wav, "", "WAV file to send (as PCM_S16LE at the file's rate and channels)");
ABSL_FLAG(int, stdin_pcm, 0, "read raw mono S16LE PCM at this sample rate (Hz) from stdin");
ABSL_FLAG(int, chunk_ms, 100, "audio per AudioChunk, milliseconds");
ABSL_FLAG(bool, realtime, false, "pace chunks like a microphone (the default)");
ABSL_FLAG(bool, fast, false, "send as fast as flow control allows");
ABSL_FLAG(bool, json, false, "print every response as one line of protobuf JSON");
ABSL_FLAG(bool, no_interim, false, "ask for finals only (interim_results = false)");
ABSL_FLAG(std::string, commit_policy, "", "local-agreement | none (default: server's)");
ABSL_FLAG(std::string, final_mode, "", "exact | fast (default: server's)");
ABSL_FLAG(std::string, endpointing, "", "continuous | single | manual (default: server's)");
ABSL_FLAG(bool, token_ids, false, "ask for the token ids of finals and print them");
ABSL_FLAG(double, deadline_s, 0, "call deadline in seconds (0 = none)");
ABSL_FLAG(std::string, token, "", "bearer token sent as authorization metadata");
ABSL_FLAG(bool, recognize, false, "send the whole audio with the unary Recognize call");

namespace speechllm::client {
namespace {

using speechllm::v1::AudioFormat;
using speechllm::v1::Endpointing;
using speechllm::v1::ResultOptions;
using speechllm::v1::SessionConfig;

constexpr int kExitBadFlags = 2;

int Fail(const std::string& message) {
  std::cerr << "speechllm-client: " << message << "\n";
  return kExitBadFlags;
}

int ExitCode(const grpc::Status& status) {
  if (status.ok()) return 0;
  std::cerr << "status: " << DescribeStatus(status) << "\n";
  return 10 + static_cast<int>(status.error_code());
}

void PrintLine(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

// The session config from the flags; INVALID_ARGUMENT names a bad flag value.
absl::Status BuildConfig(const AudioFormat& audio, SessionConfig* config) {
  *config->mutable_audio() = audio;
  ResultOptions* results = config->mutable_results();
  results->set_interim_results(!absl::GetFlag(FLAGS_no_interim));
  results->set_token_ids(absl::GetFlag(FLAGS_token_ids));
  const std::string policy = absl::GetFlag(FLAGS_commit_policy);
  if (policy == "local-agreement") {
    results->set_commit_policy(ResultOptions::LOCAL_AGREEMENT);
  } else if (policy == "none") {
    results->set_commit_policy(ResultOptions::NONE);
  } else if (!policy.empty()) {
    return absl::InvalidArgumentError("--commit-policy must be local-agreement or none");
  }
  const std::string mode = absl::GetFlag(FLAGS_final_mode);
  if (mode == "exact") {
    results->set_final_mode(ResultOptions::EXACT);
  } else if (mode == "fast") {
    results->set_final_mode(ResultOptions::FAST);
  } else if (!mode.empty()) {
    return absl::InvalidArgumentError("--final-mode must be exact or fast");
  }
  const std::string endpointing = absl::GetFlag(FLAGS_endpointing);
  if (endpointing == "continuous") {
    config->mutable_endpointing()->set_mode(Endpointing::CONTINUOUS);
  } else if (endpointing == "single") {
    config->mutable_endpointing()->set_mode(Endpointing::SINGLE_UTTERANCE);
  } else if (endpointing == "manual") {
    config->mutable_endpointing()->set_mode(Endpointing::MANUAL);
  } else if (!endpointing.empty()) {
    return absl::InvalidArgumentError("--endpointing must be continuous, single or manual");
  }
  return absl::OkStatus();
}

int RunRecognize(speechllm::v1::StreamingSpeech::Stub* stub, const SessionConfig& config,
                 const std::string& audio, bool json) {
  speechllm::v1::RecognizeRequest request;
  *request.mutable_config() = config;
  request.set_audio(audio);
  speechllm::v1::RecognizeResponse response;
  grpc::ClientContext context;
  const double deadline_s = absl::GetFlag(FLAGS_deadline_s);
  if (deadline_s > 0) {
    context.set_deadline(std::chrono::system_clock::now() +
                         absl::ToChronoMicroseconds(absl::Seconds(deadline_s)));
  }
  if (const std::string token = absl::GetFlag(FLAGS_token); !token.empty()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  }
  const Clock::time_point start = Clock::now();
  const grpc::Status status = stub->Recognize(&context, request, &response);
  const absl::Duration wall = absl::FromChrono(Clock::now() - start);
  if (!status.ok()) return ExitCode(status);
  if (json) {
    absl::StatusOr<std::string> line = ToJsonLine(response);
    PrintLine(line.ok() ? *line + "\n" : line.status().ToString() + "\n");
  } else {
    TranscriptPrinter printer(/*terminal=*/false, absl::GetFlag(FLAGS_token_ids));
    for (const auto& result : response.results()) PrintLine(printer.Render(result));
  }
  std::cerr << "recognize: wall " << absl::ToDoubleMilliseconds(wall) << " ms\n";
  return 0;
}

int Run() {
  const std::string server = absl::GetFlag(FLAGS_server);
  const std::string wav_path = absl::GetFlag(FLAGS_wav);
  const int stdin_rate_hz = absl::GetFlag(FLAGS_stdin_pcm);
  if (server.empty()) return Fail("--server HOST:PORT is required");
  if (wav_path.empty() == (stdin_rate_hz <= 0))
    return Fail("give exactly one of --wav, --stdin-pcm");
  if (absl::GetFlag(FLAGS_realtime) && absl::GetFlag(FLAGS_fast)) {
    return Fail("--realtime and --fast exclude each other");
  }
  if (absl::GetFlag(FLAGS_chunk_ms) <= 0) return Fail("--chunk-ms must be positive");
  const bool json = absl::GetFlag(FLAGS_json);

  PcmAudio wav_audio;
  PcmStreamReader stdin_reader(&std::cin, stdin_rate_hz, 1);
  if (!wav_path.empty()) {
    absl::StatusOr<PcmAudio> audio = ReadWavAsPcm(wav_path);
    if (!audio.ok()) return Fail(audio.status().ToString());
    wav_audio = *std::move(audio);
  }
  const AudioFormat format = wav_path.empty() ? stdin_reader.format() : wav_audio.format;
  SessionConfig config;
  if (absl::Status status = BuildConfig(format, &config); !status.ok()) {
    return Fail(std::string(status.message()));
  }

  auto channel = grpc::CreateChannel(server, grpc::InsecureChannelCredentials());
  auto stub = speechllm::v1::StreamingSpeech::NewStub(channel);
  if (absl::GetFlag(FLAGS_recognize)) {
    if (wav_path.empty()) {
      absl::StatusOr<PcmAudio> all = stdin_reader.ReadAll();
      if (!all.ok()) return Fail(all.status().ToString());
      wav_audio = *std::move(all);
    }
    return RunRecognize(stub.get(), config, wav_audio.data, json);
  }

  StreamingClientOptions options;
  options.chunk_ms = absl::GetFlag(FLAGS_chunk_ms);
  options.realtime = !absl::GetFlag(FLAGS_fast);
  options.config = config;
  if (const double deadline_s = absl::GetFlag(FLAGS_deadline_s); deadline_s > 0) {
    options.deadline = absl::Seconds(deadline_s);
  }
  if (const std::string token = absl::GetFlag(FLAGS_token); !token.empty()) {
    options.metadata.emplace_back("authorization", absl::StrCat("Bearer ", token));
  }
  StreamingClient client(stub.get(), options);
  TranscriptPrinter printer(/*terminal=*/isatty(STDOUT_FILENO) != 0,
                            absl::GetFlag(FLAGS_token_ids));
  // Responses arrive one at a time (one read in flight), so the printer needs no lock.
  client.SetResponseCallback([&](const ResponseRecord& record) {
    if (json) {
      absl::StatusOr<std::string> line = ToJsonLine(record.response);
      PrintLine(line.ok() ? *line + "\n" : line.status().ToString() + "\n");
    } else if (record.response.has_transcript()) {
      PrintLine(printer.Render(record.response.transcript()));
    }
  });
  if (absl::Status status = client.Start(); !status.ok()) return Fail(status.ToString());

  if (!wav_path.empty()) {
    (void)client.SendAudio(wav_audio.data);
  } else {
    while (true) {
      absl::StatusOr<std::string> block = stdin_reader.Read(client.chunk_size_bytes());
      if (!block.ok()) {
        std::cerr << "speechllm-client: " << block.status() << "\n";
        break;
      }
      if (block->empty() || client.WaitForDone(absl::ZeroDuration())) break;
      (void)client.SendAudio(*block);
    }
    if (stdin_reader.dropped_bytes() > 0) {
      std::cerr << "speechllm-client: dropped " << stdin_reader.dropped_bytes()
                << " trailing bytes (a partial sample)\n";
    }
  }
  (void)client.CloseSend();
  const grpc::Status status = client.Await();
  if (!json) PrintLine(printer.Finish());

  const std::vector<ResponseRecord> responses = client.responses();
  const speechllm::v1::SessionSummary* summary = nullptr;
  for (const ResponseRecord& record : responses) {
    if (record.response.has_summary()) summary = &record.response.summary();
  }
  const StreamReport report =
      ComputeStreamReport(responses, client.sent_chunks(), client.start_time(), client.done_time());
  std::cerr << FormatStreamReport(report, summary);
  return ExitCode(status);
}

}  // namespace
}  // namespace speechllm::client

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "speechllm-client --server HOST:PORT (--wav FILE | --stdin-pcm RATE) [--chunk-ms N] "
      "[--realtime|--fast] [--json] [--no-interim] [--commit-policy local-agreement|none] "
      "[--final-mode exact|fast] [--endpointing continuous|single|manual] [--token-ids] "
      "[--deadline-s S] [--token TOKEN] [--recognize]");
  // Abseil flag names are identifiers; accept the documented spelling --chunk-ms for --chunk_ms.
  std::vector<std::string> args(argv, argv + argc);
  std::vector<char*> arg_ptrs;
  for (std::string& arg : args) {
    if (arg.size() > 2 && arg.compare(0, 2, "--") == 0) {
      const size_t name_end = std::min(arg.find('='), arg.size());
      std::replace(arg.begin() + 2, arg.begin() + name_end, '-', '_');
    }
    arg_ptrs.push_back(arg.data());
  }
  absl::ParseCommandLine(static_cast<int>(arg_ptrs.size()), arg_ptrs.data());
  return speechllm::client::Run();
}
