// speechllm-loadtest: how many real-time streams a running speechllm-server sustains, measured the
// way API.md section 5 defines it (Riva's method): N StreamingRecognize calls, each paced like a
// microphone and looping its test audio (clip, then silence so that the endpointer closes each
// utterance), starts staggered; lag (audio_received - audio_processed) p50/p99 at every update,
// and the client's lag (audio the paced source had captured - audio_processed), end-to-end latency
// of partials and finals from the client's own send times, the server's finalization processing,
// every failed call and FLOW_CONTROL warning (paused reads cap the lag the server reports). Prints
// one JSON line; exit 0 when the target is met, 1 when missed, 2 on bad flags. Ctrl-C ends every
// stream's input and still prints the report of what ran (verdict "interrupted ...", exit 130);
// streams the server ended are not fed further, and the run stops early once none is left.
//   speechllm-loadtest --server 127.0.0.1:50051 --streams 64 --duration_s 300
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/channel_flags.h"
#include "client/client_channel.h"
#include "client/interrupt.h"
#include "client/speech_client.h"
#include "engine/io/program_flags.h"
#include "engine/io/wav_reader.h"
#include "tools/loadtest/stream_metrics.h"

ABSL_FLAG(std::string, server, "", "server address HOST:PORT");
ABSL_FLAG(std::string, wav, "", "comma-separated 16 kHz WAV clips, assigned to streams in turn");
ABSL_FLAG(int, streams, 8, "concurrent streams");
ABSL_FLAG(double, duration_s, 60, "audio each stream sends (API.md's figure uses 300)");
ABSL_FLAG(int, stagger_ms, 8000, "stream starts spread over this many ms");
ABSL_FLAG(int, gap_ms, 1000, "silence after each pass of the clip");
ABSL_FLAG(int, chunk_ms, 100, "audio per AudioChunk");
ABSL_FLAG(int, connections, 0,
          "TCP connections the streams are spread over (0 = one per stream, as independent users)");
ABSL_FLAG(std::string, final_mode, "", "exact | fast (default: the server's)");
ABSL_FLAG(double, lag_p50_s, 1, "target: lag p50 at most this");
ABSL_FLAG(double, lag_p99_s, 2, "target: lag p99 at most this");
ABSL_FLAG(double, final_processing_p95_ms, 0, "target: finalization processing p95 (0 = none)");

namespace speechllm::loadtest {
namespace {

namespace v1 = speechllm::v1;
constexpr int kSampleRateHz = 16000;

int Fail(const std::string& message) {
  std::cerr << "speechllm-loadtest: " << message << "\n";
  return 2;
}

// The audio one stream sends: its clip and the gap, repeated, cut to `duration`.
std::vector<float> LoopedAudio(const std::vector<float>& clip, absl::Duration duration) {
  const size_t total = static_cast<size_t>(absl::ToDoubleSeconds(duration) * kSampleRateHz);
  const size_t gap = static_cast<size_t>(absl::GetFlag(FLAGS_gap_ms)) * kSampleRateHz / 1000;
  std::vector<float> audio;
  audio.reserve(total);
  while (audio.size() < total) {
    audio.insert(audio.end(), clip.begin(), clip.end());
    audio.insert(audio.end(), gap, 0.0f);
  }
  audio.resize(total);
  return audio;
}

int Run() {
  const std::string server = absl::GetFlag(FLAGS_server);
  if (server.empty()) return Fail("--server HOST:PORT is required");
  const int num_streams = absl::GetFlag(FLAGS_streams);
  const absl::Duration duration = absl::Seconds(absl::GetFlag(FLAGS_duration_s));
  if (num_streams < 1) return Fail("--streams must be at least 1");
  // NaN compares false with everything: each check is written so that NaN fails it.
  if (!(absl::GetFlag(FLAGS_duration_s) >= 0.1 && absl::GetFlag(FLAGS_duration_s) <= 86400)) {
    return Fail("--duration_s must be in [0.1, 86400]");
  }
  if (absl::GetFlag(FLAGS_chunk_ms) <= 0) return Fail("--chunk_ms must be positive");
  if (absl::GetFlag(FLAGS_gap_ms) < 0 || absl::GetFlag(FLAGS_gap_ms) > 600000) {
    return Fail("--gap_ms must be in [0, 600000]");
  }
  if (absl::GetFlag(FLAGS_stagger_ms) < 0) return Fail("--stagger_ms must not be negative");
  if (absl::GetFlag(FLAGS_connections) < 0) return Fail("--connections must not be negative");
  for (const auto& [name, value] : {std::make_pair("--lag_p50_s", absl::GetFlag(FLAGS_lag_p50_s)),
                                    std::make_pair("--lag_p99_s", absl::GetFlag(FLAGS_lag_p99_s)),
                                    std::make_pair("--final_processing_p95_ms",
                                                   absl::GetFlag(FLAGS_final_processing_p95_ms))}) {
    if (!(value >= 0 && value < 1e9)) return Fail(absl::StrCat(name, " must be a number >= 0"));
  }
  std::vector<std::string> paths = absl::StrSplit(absl::GetFlag(FLAGS_wav), ',', absl::SkipEmpty());
  if (paths.empty()) return Fail("--wav CLIP[,CLIP...] is required");
  std::vector<std::vector<float>> clips;
  for (const std::string& path : paths) {
    absl::StatusOr<std::vector<float>> clip = engine::ReadMonoWavFile(path, kSampleRateHz);
    if (!clip.ok()) return Fail(clip.status().ToString());
    if (clip->empty()) return Fail(path + " has no audio");
    clips.push_back(LoopedAudio(*clip, duration));
  }

  if (absl::Status flags = client::CheckChannelFlags(); !flags.ok()) return Fail(flags.ToString());
  const client::ChannelSecurity security = client::ChannelSecurityFromFlags();
  // gRPC shares one connection among channels with equal arguments; a local subchannel pool per
  // channel gives each its own.
  const int num_connections = absl::GetFlag(FLAGS_connections) > 0
                                  ? std::min(absl::GetFlag(FLAGS_connections), num_streams)
                                  : num_streams;
  std::vector<std::unique_ptr<v1::StreamingSpeech::Stub>> stubs;
  for (int c = 0; c < num_connections; ++c) {
    grpc::ChannelArguments arguments;
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        client::CreateClientChannel(server, security, arguments);
    if (!channel.ok()) return Fail(channel.status().ToString());
    stubs.push_back(v1::StreamingSpeech::NewStub(*channel));
  }

  client::StreamingClientOptions options;
  options.chunk_ms = absl::GetFlag(FLAGS_chunk_ms);
  options.realtime = true;
  options.config.mutable_audio()->set_encoding(v1::AudioFormat::PCM_S16LE);
  options.config.mutable_audio()->set_sample_rate_hz(kSampleRateHz);
  options.config.mutable_audio()->set_channels(1);
  options.config.mutable_results()->set_interim_results(true);
  options.config.mutable_results()->set_timing(true);
  const std::string final_mode = absl::GetFlag(FLAGS_final_mode);
  if (final_mode == "exact" || final_mode == "fast") {
    options.config.mutable_results()->set_final_mode(
        final_mode == "exact" ? v1::ResultOptions::EXACT : v1::ResultOptions::FAST);
  } else if (!final_mode.empty()) {
    return Fail("--final_mode must be exact or fast");
  }
  if (const auto authorization = client::AuthorizationFromFlags()) {
    options.metadata.push_back(*authorization);
  }

  // Each stream is fed a second ahead of real time (the client paces the writes), so memory stays
  // small whatever the duration.
  struct Stream {
    std::unique_ptr<client::StreamingClient> client;
    const std::vector<float>* audio = nullptr;
    absl::Time start;
    size_t queued = 0;
    bool started = false, closed = false;
  };
  std::vector<Stream> streams(num_streams);
  const absl::Time t0 = absl::Now();
  const absl::Duration stagger = absl::Milliseconds(absl::GetFlag(FLAGS_stagger_ms));
  for (int i = 0; i < num_streams; ++i) {
    streams[i].audio = &clips[i % clips.size()];
    streams[i].start = t0 + stagger * i / num_streams;
    streams[i].client =
        std::make_unique<client::StreamingClient>(stubs[i % num_connections].get(), options);
  }
  client::CatchInterrupts(
      "\nspeechllm-loadtest: interrupted: ending every stream's input, then the report (again to "
      "quit)\n");
  int open = num_streams;
  while (open > 0) {
    const absl::Time now = absl::Now();
    const bool interrupted = client::Interrupted();
    open = 0;
    for (Stream& s : streams) {
      if (s.closed) continue;
      if (interrupted) {  // streams not started yet never start
        if (s.started) (void)s.client->StopAudio();
        s.closed = true;
        continue;
      }
      ++open;
      if (now < s.start) continue;
      if (!s.started) {
        s.started = true;
        if (absl::Status st = s.client->Start(); !st.ok()) return Fail(st.ToString());
      }
      if (s.client->WaitForDone(absl::ZeroDuration())) {  // the server ended it (an error)
        s.closed = true;
        continue;
      }
      const size_t due =
          std::min(s.audio->size(),
                   static_cast<size_t>(absl::ToDoubleSeconds(now - s.start + absl::Seconds(1)) *
                                       kSampleRateHz));
      if (due > s.queued) {
        (void)s.client->SendSamples(
            absl::MakeConstSpan(s.audio->data() + s.queued, due - s.queued));
        s.queued = due;
      }
      if (s.queued == s.audio->size()) {
        (void)s.client->CloseSend();
        s.closed = true;
      }
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  std::vector<StreamSamples> samples;
  for (Stream& s : streams) {
    if (!s.started) continue;
    const grpc::Status status = s.client->Await();
    samples.push_back(MeasureStream(s.client->responses(), s.client->sent_chunks(), status));
  }
  LoadTarget target;
  target.lag_p50 = absl::Seconds(absl::GetFlag(FLAGS_lag_p50_s));
  target.lag_p99 = absl::Seconds(absl::GetFlag(FLAGS_lag_p99_s));
  if (absl::GetFlag(FLAGS_final_processing_p95_ms) > 0) {
    target.final_processing_p95 = absl::Milliseconds(absl::GetFlag(FLAGS_final_processing_p95_ms));
  }
  LoadReport report = Summarize(samples, target);
  if (client::Interrupted()) {
    report.target_met = false;
    report.verdict = absl::StrFormat("interrupted after %.1f s of %.1f s (%s)",
                                     absl::ToDoubleSeconds(absl::Now() - t0),
                                     absl::ToDoubleSeconds(duration + stagger), report.verdict);
  }
  std::cout << ToJson(report) << std::endl;
  if (client::Interrupted()) return 130;
  return report.target_met ? 0 : 1;
}

}  // namespace
}  // namespace speechllm::loadtest

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Opens concurrent real-time streams against a running speechllm-server and reports "
      "latency percentiles as JSON (API.md 5).");
  speechllm::engine::ParseProgramFlagsOnly(argc, argv);
  return speechllm::loadtest::Run();
}
