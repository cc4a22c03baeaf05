// The metrics endpoint end to end (label integration): the real speechllm-server streams the golden
// clip; its /metrics passes `promtool check metrics`; a real Prometheus server on loopback scrapes
// it every second and its query for the audio seconds received returns the clip's duration. The
// metrics port answers while the model loads, with speechllm_ready 0.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/ops/ops_harness.h"

namespace speechllm::opstest {
namespace {

// The value of the first series of an instant query, or NOT_FOUND while there is none.
absl::StatusOr<double> QueryPrometheus(int port, const std::string& promql) {
  auto body = HttpGet(port, "/api/v1/query?query=" + UrlEncode(promql));
  if (!body.ok()) return body.status();
  const nlohmann::json answer = nlohmann::json::parse(*body, nullptr, false);
  if (answer.is_discarded() || answer.value("status", "") != "success") {
    return absl::InternalError("bad answer to " + promql + ": " + *body);
  }
  const nlohmann::json& result = answer["data"]["result"];
  if (!result.is_array() || result.empty()) return absl::NotFoundError("no series yet");
  return std::stod(result[0]["value"][1].get<std::string>());
}

// The build_info series of the version CMake gave the server.
std::string BuildInfoSeries() {
  return absl::StrCat("speechllm_build_info{version=\"", SPEECHLLM_OPS_VERSION, "\"}");
}

TEST(OpsMetrics, PromtoolAndPrometheusSeeTheStreamedAudio) {
  auto promtool = RequireTool("promtool", "prometheus");
  ASSERT_TRUE(promtool.ok()) << promtool.status();
  auto prometheus = RequireTool("prometheus", "prometheus");
  ASSERT_TRUE(prometheus.ok()) << prometheus.status();

  auto server = ServerProcess::Start({});
  ASSERT_TRUE(server.ok()) << server.status();
  auto channel = grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials());
  auto stub = v1::StreamingSpeech::NewStub(channel);
  const double clip_seconds = ClipSeconds();
  ASSERT_NEAR(clip_seconds, 3.37, 0.01);

  // Real time, so that partials (first-partial latency) and lag samples exist.
  const grpc::Status status = StreamClip(stub.get(), /*realtime=*/true);
  ASSERT_TRUE(status.ok()) << status.error_message();

  // promtool lints and parses the exposition.
  auto text = HttpGet((*server)->metrics_port(), "/metrics");
  ASSERT_TRUE(text.ok()) << text.status();
  const std::string metrics_file = ScratchDir() + "/metrics.txt";
  ASSERT_TRUE(WriteTextFile(metrics_file, *text));
  const ProcessResult check = RunProcess({*promtool, "check", "metrics"}, metrics_file);
  EXPECT_EQ(check.exit_code, 0) << "promtool check metrics:\n" << check.out << check.err;
  std::cout << "promtool check metrics: exit " << check.exit_code << ", " << text->size()
            << " bytes of exposition\n";

  auto samples = ParseMetrics(*text);
  ASSERT_TRUE(samples.ok()) << samples.status();
  const double received = Value(*samples, "speechllm_audio_seconds_total");
  const double processed = Value(*samples, "speechllm_audio_processed_seconds_total");
  std::cout << "scraped: audio received " << received << " s, processed " << processed
            << " s, clip " << clip_seconds << " s\n";
  EXPECT_NEAR(received, clip_seconds, 0.005);
  EXPECT_GT(processed, 0.5 * clip_seconds);
  EXPECT_LE(processed, received + 0.005);
  EXPECT_EQ(Value(*samples, R"(speechllm_requests_total{code="OK",method="StreamingRecognize"})"),
            1);
  EXPECT_EQ(Value(*samples, "speechllm_streams_active"), 0);
  EXPECT_EQ(Value(*samples, BuildInfoSeries()), 1);
  EXPECT_GE(Value(*samples, "speechllm_first_partial_latency_seconds_count"), 1);
  EXPECT_EQ(Value(*samples, R"(speechllm_final_latency_seconds_count{part="total"})"), 1);
  EXPECT_EQ(Value(*samples, R"(speechllm_final_latency_seconds_count{part="processing"})"), 1);
  EXPECT_EQ(Value(*samples, R"(speechllm_engine_queue_wait_seconds_count{result="final"})"), 1);
  EXPECT_GE(Value(*samples, R"(speechllm_engine_queue_wait_seconds_count{result="partial"})"), 1);
  EXPECT_EQ(Value(*samples, R"(speechllm_streams_total{code="OK"})"), 1);
  EXPECT_EQ(Value(*samples, "speechllm_partial_erasure_ratio_count"), 1);  // the final has words
  // API.md 5: committed text is never revised; the counter exists and stays 0.
  ASSERT_EQ(samples->count("speechllm_committed_revisions_total"), 1u);
  EXPECT_EQ(Value(*samples, "speechllm_committed_revisions_total"), 0);
  ASSERT_EQ(samples->count("speechllm_commit_conflicts_total"), 1u);
  EXPECT_GE(Value(*samples, "speechllm_stream_lag_seconds_count"), 1);
  EXPECT_GE(Value(*samples, "speechllm_engine_step_duration_seconds_count"), 1);
  EXPECT_GE(Value(*samples, "speechllm_engine_step_sequences_count"), 1);
  EXPECT_GE(Value(*samples, "speechllm_tokens_generated_total"), 24);
  EXPECT_GT(Value(*samples, "speechllm_encoder_tokens_total"), 0);
  EXPECT_GT(Value(*samples, "speechllm_prefill_tokens_total"), 0);
  EXPECT_GT(Value(*samples, "speechllm_kv_cache_blocks_capacity"), 0);
  EXPECT_GT(Value(*samples, "speechllm_kv_cache_blocks_peak"), 0);
  std::cout << "scraped: tokens " << Value(*samples, "speechllm_tokens_generated_total")
            << ", engine steps " << Value(*samples, "speechllm_engine_steps_total")
            << ", encoder tokens " << Value(*samples, "speechllm_encoder_tokens_total")
            << ", prefill tokens " << Value(*samples, "speechllm_prefill_tokens_total")
            << ", first partials "
            << Value(*samples, "speechllm_first_partial_latency_seconds_count") << " (sum "
            << Value(*samples, "speechllm_first_partial_latency_seconds_sum") << " s), finals "
            << Value(*samples, R"(speechllm_final_latency_seconds_count{part="total"})") << " (sum "
            << Value(*samples, R"(speechllm_final_latency_seconds_sum{part="total"})")
            << " s, endpoint wait "
            << Value(*samples, R"(speechllm_final_latency_seconds_sum{part="endpoint_wait"})")
            << " s), queue wait of the final "
            << Value(*samples, R"(speechllm_engine_queue_wait_seconds_sum{result="final"})")
            << " s, partial erasure ratio "
            << Value(*samples, "speechllm_partial_erasure_ratio_sum") << ", commit conflicts "
            << Value(*samples, "speechllm_commit_conflicts_total") << "\n";

  // A real Prometheus scrapes the endpoint every second.
  const int prometheus_port = FreeLoopbackPort();
  ASSERT_GT(prometheus_port, 0);
  const std::string config = ScratchDir() + "/prometheus.yml";
  ASSERT_TRUE(WriteTextFile(
      config, absl::StrCat("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                           "scrape_configs:\n  - job_name: speechllm\n    static_configs:\n"
                           "      - targets: ['127.0.0.1:",
                           (*server)->metrics_port(), "']\n")));
  const pid_t prometheus_pid = SpawnProcess(
      {*prometheus, "--config.file=" + config, "--storage.tsdb.path=" + ScratchDir() + "/tsdb",
       absl::StrCat("--web.listen-address=127.0.0.1:", prometheus_port), "--log.level=warn"},
      ScratchDir() + "/prometheus.out", ScratchDir() + "/prometheus.err");
  ASSERT_GT(prometheus_pid, 0) << "cannot start " << *prometheus;
  absl::StatusOr<double> up = absl::NotFoundError("not queried"), seconds = up, streams = up;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    up = QueryPrometheus(prometheus_port, R"(up{job="speechllm"})");
    seconds = QueryPrometheus(prometheus_port, R"(speechllm_audio_seconds_total{job="speechllm"})");
    streams = QueryPrometheus(
        prometheus_port,
        R"(sum(speechllm_requests_total{job="speechllm",method="StreamingRecognize"}))");
    if (up.ok() && *up == 1 && seconds.ok() && streams.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  const int prometheus_exit = StopProcess(prometheus_pid, SIGTERM, absl::Seconds(20));
  ASSERT_TRUE(up.ok() && seconds.ok() && streams.ok())
      << "Prometheus never returned the series: up " << up.status() << ", audio "
      << seconds.status() << "; its log:\n"
      << ReadFileOrEmpty(ScratchDir() + "/prometheus.err");
  std::cout << "prometheus on port " << prometheus_port << ": up " << *up
            << ", speechllm_audio_seconds_total " << *seconds << " s (clip " << clip_seconds
            << " s), StreamingRecognize calls " << *streams << ", prometheus exit "
            << prometheus_exit << "\n";
  EXPECT_EQ(*up, 1);
  EXPECT_NEAR(*seconds, clip_seconds, 0.005);
  EXPECT_EQ(*streams, 1);
  EXPECT_EQ((*server)->Stop(), 0) << (*server)->Log();
}

// A chunk whose last sample is NaN ends the stream, but the second of audio before it is
// transcribed (API.md 3, finals first), so it counts as received as well as processed.
TEST(OpsMetrics, AudioBeforeABadSampleCountsAsReceived) {
  auto server = ServerProcess::Start({});
  ASSERT_TRUE(server.ok()) << server.status();
  auto channel = grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials());
  auto stub = v1::StreamingSpeech::NewStub(channel);
  client::StreamingClientOptions options = PcmStreamOptions(/*realtime=*/false);
  options.config.mutable_audio()->set_encoding(v1::AudioFormat::PCM_F32LE);
  client::StreamingClient streaming(stub.get(), options);
  ASSERT_TRUE(streaming.Start().ok());
  std::vector<float> samples(16000, 0.01f);  // 1 s, then the bad sample
  samples.push_back(std::nanf(""));
  v1::StreamingRecognizeRequest chunk;
  chunk.mutable_audio()->set_data(
      std::string(reinterpret_cast<const char*>(samples.data()), samples.size() * 4));
  ASSERT_TRUE(streaming.SendRaw(std::move(chunk)).ok());
  (void)streaming.CloseSend();
  const grpc::Status status = streaming.Await();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();

  auto scraped = Scrape((*server)->metrics_port());
  ASSERT_TRUE(scraped.ok()) << scraped.status();
  const double received = Value(*scraped, "speechllm_audio_seconds_total");
  const double processed = Value(*scraped, "speechllm_audio_processed_seconds_total");
  std::cout << "1 s before a NaN: received " << received << " s, processed " << processed
            << " s; status " << status.error_code() << " " << status.error_message() << "\n";
  EXPECT_NEAR(received, 1.0, 0.005);
  EXPECT_LE(processed, received + 0.005);
  EXPECT_EQ((*server)->Stop(), 0) << (*server)->Log();
}

// Writes `text` once into the FIFO at `path` as soon as a reader opens it, unless `stop` is set
// first (then it gives up without writing).
void FeedFifoOnce(const std::string& path, const std::string& text, const std::atomic<bool>& stop) {
  while (!stop) {
    const int fd = open(path.c_str(), O_WRONLY | O_NONBLOCK);  // ENXIO while nobody reads
    if (fd < 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    fcntl(fd, F_SETFL, 0);
    for (size_t written = 0; written < text.size();) {
      const ssize_t n = write(fd, text.data() + written, text.size() - written);
      if (n <= 0) break;
      written += static_cast<size_t>(n);
    }
    close(fd);
    return;
  }
}

TEST(OpsMetrics, MetricsAnswerWhileTheModelLoads) {
  // The model's config.json is a FIFO: the server blocks reading it, i.e. it is loading, for as
  // long as the test withholds the file.
  namespace fs = std::filesystem;
  const fs::path source = SourcePath("models/qwen2-audio-tiny");
  // A new folder on every run, so that --gtest_repeat does not meet the last run's FIFO.
  static int run = 0;
  const fs::path model = absl::StrCat(ScratchDir(), "/loading-model-", run++);
  fs::create_directories(model);
  for (const fs::directory_entry& entry : fs::directory_iterator(source)) {
    if (entry.path().filename() == "config.json") continue;
    fs::copy_file(entry.path(), model / entry.path().filename(),
                  fs::copy_options::overwrite_existing);
  }
  const std::string fifo = (model / "config.json").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0) << fifo << ": " << std::strerror(errno);
  // A server that dies while the feeder writes must fail this test, not kill it with SIGPIPE.
  signal(SIGPIPE, SIG_IGN);

  auto server = ServerProcess::Start({"--model=" + model.string()}, /*wait_for_grpc_port=*/false);
  ASSERT_TRUE(server.ok()) << server.status();
  auto loading = Scrape((*server)->metrics_port());
  ASSERT_TRUE(loading.ok()) << loading.status();
  EXPECT_EQ(loading->count("speechllm_ready"), 1u);
  EXPECT_EQ(Value(*loading, "speechllm_ready"), 0);
  EXPECT_EQ(Value(*loading, BuildInfoSeries()), 1);
  EXPECT_EQ(loading->count("speechllm_kv_cache_blocks_capacity"), 0u);  // no engine yet
  EXPECT_FALSE((*server)->WaitForGrpcPort(absl::Milliseconds(500)).ok()) << "serving already";

  std::atomic<bool> stop{false};
  std::thread feeder(FeedFifoOnce, fifo, ReadFileOrEmpty((source / "config.json").string()),
                     std::cref(stop));
  const absl::Status serving = (*server)->WaitForGrpcPort(absl::Seconds(60));
  stop = true;
  feeder.join();
  ASSERT_TRUE(serving.ok()) << serving;
  auto ready = Scrape((*server)->metrics_port());
  ASSERT_TRUE(ready.ok()) << ready.status();
  std::cout << "while loading: speechllm_ready " << Value(*loading, "speechllm_ready")
            << "; serving: speechllm_ready " << Value(*ready, "speechllm_ready") << ", KV blocks "
            << Value(*ready, "speechllm_kv_cache_blocks_capacity") << "\n";
  EXPECT_EQ(Value(*ready, "speechllm_ready"), 1);
  EXPECT_GT(Value(*ready, "speechllm_kv_cache_blocks_capacity"), 0);
  EXPECT_EQ((*server)->Stop(), 0) << (*server)->Log();
}

}  // namespace
}  // namespace speechllm::opstest
