// Operations test harness: runs the real speechllm-server as a child process (tiny model, golden
// prompt ids, 24 new tokens, metrics on a free port, both ports read from port files), reads and
// parses its /metrics, runs command-line tools (promtool, prometheus, openssl) and streams the
// golden clip with the speechllm_client library. Test-only; helpers may be called from any test
// thread. A missing tool is a test failure that names the Debian package, never a skip.
#ifndef SPEECHLLM_TESTS_INTEGRATION_OPS_OPS_HARNESS_H_
#define SPEECHLLM_TESTS_INTEGRATION_OPS_OPS_HARNESS_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/speech_client.h"
#include "grpcpp/grpcpp.h"

namespace speechllm::opstest {

// ---- files and tools ----
std::string SourcePath(const std::string& relative);
std::string ClipPath();  // tests/data/qwen2-audio-tiny-golden/clip_a.wav
// This process's scratch directory in the build tree (kept when a test failed).
std::string ScratchDir();
std::string ReadFileOrEmpty(const std::string& path);
bool WriteTextFile(const std::string& path, const std::string& contents);
// The tool's absolute path; NOT_FOUND naming `package` when it is not on PATH.
absl::StatusOr<std::string> RequireTool(const std::string& name, const std::string& package);
// A TCP port that was free a moment ago on 127.0.0.1 (for tools that cannot take port 0).
int FreeLoopbackPort();

struct ProcessResult {
  int exit_code = -1;  // 128 + signal when killed; -1 when it could not start
  std::string out, err;
};
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         const std::string& stdin_path = "/dev/null",
                         absl::Duration timeout = absl::Seconds(120));
// Starts a background process with output into files (exit code 127 when it cannot run).
pid_t SpawnProcess(const std::vector<std::string>& argv, const std::string& stdout_path,
                   const std::string& stderr_path);
// Sends `signal_number`, waits up to `timeout` (SIGKILL then); the exit code as above.
int StopProcess(pid_t pid, int signal_number, absl::Duration timeout);

// ---- the server ----
class ServerProcess {
 public:
  // Starts speechllm-server with the standard flags plus `extra_flags` ("--max_streams=2"; a
  // repeated flag overrides the standard one) and waits (60 s) for its metrics and gRPC port
  // files, or only the metrics one (written before the model loads) with !wait_for_grpc_port.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::vector<std::string>& extra_flags, bool wait_for_grpc_port = true);
  ~ServerProcess();  // SIGKILL unless Stop() ran

  // Waits up to `timeout` for the gRPC port file (written once serving); an error if the server
  // exited or the time ran out.
  absl::Status WaitForGrpcPort(absl::Duration timeout);

  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // SIGTERM and the drain: the exit code (0 = clean).
  int Stop();
  // Sends `signal_number` without waiting.
  void Signal(int signal_number) const;
  std::string Log() const { return ReadFileOrEmpty(log_path_); }
  std::string ErrLog() const { return ReadFileOrEmpty(log_path_ + ".err"); }  // stderr

 private:
  // An error with the exit code and stderr once the process has exited, else OK.
  absl::Status ExitStatus();

  pid_t pid_ = -1;
  int port_ = 0;  // 0 until the gRPC port file was read
  int metrics_port_ = 0;
  std::string log_path_;
  std::string port_file_;
};

// ---- HTTP and metrics ----
// GET http://127.0.0.1:`port``path_and_query`: the body of a 200 answer, else UNAVAILABLE.
absl::StatusOr<std::string> HttpGet(int port, const std::string& path_and_query);
// Percent-encodes everything but unreserved characters (RFC 3986), for query values.
std::string UrlEncode(const std::string& text);
// Samples of a text exposition keyed by their series exactly as written, e.g.
// speechllm_requests_total{code="OK",method="StreamingRecognize"} (labels in name order).
using MetricSamples = std::map<std::string, double>;
absl::StatusOr<MetricSamples> ParseMetrics(const std::string& text);
absl::StatusOr<MetricSamples> Scrape(int metrics_port);
// The sample's value, or 0 when the series is absent (a counter that never moved).
double Value(const MetricSamples& samples, const std::string& series);

// ---- calls ----
// Options for a stream of 16 kHz mono PCM_S16LE (realtime: paced like a microphone), 120 s
// deadline.
client::StreamingClientOptions PcmStreamOptions(bool realtime);
// Streams the golden clip (PCM_S16LE, 100 ms chunks; real time or as fast as flow control allows)
// through `stub` with optional request metadata; the call's final status.
grpc::Status StreamClip(v1::StreamingSpeech::StubInterface* stub, bool realtime,
                        const std::vector<std::pair<std::string, std::string>>& metadata = {});
// The clip's duration from its WAV header, in seconds.
double ClipSeconds();

}  // namespace speechllm::opstest

#endif  // SPEECHLLM_TESTS_INTEGRATION_OPS_OPS_HARNESS_H_
