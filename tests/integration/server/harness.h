// End-to-end test harness: starts the real speechllm-server (and the client, transcribe and buf
// programs) as processes with posix_spawn, reads the offline and golden references, and runs
// streams with the in-process StreamingClient. Paths come from compile definitions set in
// CMakeLists.txt. server_process.cc holds paths, processes and the server; harness.cc the rest.
// Test-only; the helpers may be called from any test thread unless noted.
#ifndef SPEECHLLM_TESTS_INTEGRATION_SERVER_HARNESS_H_
#define SPEECHLLM_TESTS_INTEGRATION_SERVER_HARNESS_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/speech_client.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "speechllm/v1/speechllm.grpc.pb.h"

namespace speechllm::itest {

namespace v1 = speechllm::v1;

// ---- paths ----
std::string SourcePath(const std::string& relative);  // in the repository
std::string ClipPath(const std::string& clip);        // "clip_a" -> the golden fixture's WAV
// A fresh directory for this process's files (port files, logs, stdin files).
std::string ScratchDir();
std::string ReadFileOrEmpty(const std::string& path);
bool WriteFile(const std::string& path, const std::string& contents);

// ---- processes ----
struct ProcessResult {
  int exit_code = -1;  // 128 + signal when killed by one, -1 when it could not start
  bool timed_out = false;
  std::string out, err;
};
// Starts argv[0] with stdin from `stdin_path` and stdout/stderr into files; -1 on failure.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& stdin_path,
            const std::string& stdout_path, const std::string& stderr_path);
// Waits for `pid` at most `timeout` (SIGKILL then); the exit code as in ProcessResult.
int WaitExit(pid_t pid, absl::Duration timeout, bool* timed_out = nullptr);
// Runs a program to completion and captures its output.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         const std::string& stdin_path = "/dev/null",
                         absl::Duration timeout = absl::Seconds(120));

// A speechllm-server process with the tiny model, the golden prompt ids and 24 new tokens.
class ServerProcess {
 public:
  // `extra_flags` such as "--max_streams=2". Waits for the port file (60 s).
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::vector<std::string>& extra_flags);
  ~ServerProcess();  // SIGKILL if Stop() was not called

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return pid_; }
  v1::StreamingSpeech::Stub* stub() { return stub_.get(); }
  // A stub on a channel of its own (separate HTTP/2 connection).
  std::unique_ptr<v1::StreamingSpeech::Stub> NewStub() const;
  int64_t VmRssKb() const;  // from /proc/PID/status; -1 if unreadable
  bool Running() const;
  // SIGTERM, then waits 30 s for the drain: the exit code (0 = clean).
  int Stop();
  std::string Log() const { return ReadFileOrEmpty(log_path_); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string log_path_;
  std::unique_ptr<v1::StreamingSpeech::Stub> stub_;
};

// One server per test suite. Call EnsureServer from the fixture's SetUp (not SetUpTestSuite:
// GoogleTest reports the tests of a suite whose SetUpTestSuite failed as SKIPPED, which ctest
// counts as a skip); it starts the server on first use and fails the test if it cannot.
// StopServerForSuite (TearDownTestSuite) sends SIGTERM and expects exit code 0.
void EnsureServer(std::unique_ptr<ServerProcess>* server,
                  const std::vector<std::string>& extra_flags);
void StopServerForSuite(std::unique_ptr<ServerProcess>* server);

// A fixture whose test suite shares one server: started on first use with Suite::ServerFlags()
// (none unless the suite declares a public one), stopped after the suite (exit code 0 expected). A
// suite that needs more in SetUp calls SharedServerTest::SetUp() first and returns on a fatal
// failure.
template <typename Suite>
class SharedServerTest : public ::testing::Test {
 public:
  static std::vector<std::string> ServerFlags() { return {}; }

 protected:
  static void TearDownTestSuite() { StopServerForSuite(&server_); }
  void SetUp() override {
    EnsureServer(&server_, Suite::ServerFlags());
    ASSERT_NE(server_, nullptr) << "speechllm-server did not start";
  }

  static inline std::unique_ptr<ServerProcess> server_;
};

// ---- references ----
// speechllm-transcribe's token ids for the clip (run once per process and clip; ADD_FAILURE and
// empty on error).
std::vector<int64_t> OfflineTokens(const std::string& clip);
// A SharedServerTest whose SetUp also computes clip_a's offline reference (24 tokens) up front:
// computing it later (about 1 s) could idle out streams the test has open meanwhile.
template <typename Suite>
class SharedServerWithReferenceTest : public SharedServerTest<Suite> {
 protected:
  void SetUp() override {
    SharedServerTest<Suite>::SetUp();
    if (this->HasFatalFailure()) return;
    ASSERT_EQ(OfflineTokens("clip_a").size(), 24u);
  }
};
// greedy_a / greedy_b of golden.safetensors for clip_a / clip_b.
std::vector<int64_t> GoldenTokens(const std::string& clip);
// The clip as PCM_S16LE 16 kHz mono bytes.
std::string ClipPcm(const std::string& clip);
std::string ClipWavBytes(const std::string& clip);
std::string Ids(const std::vector<int64_t>& ids);  // "1 2 3" for messages

// ---- unary calls ----
// Recognize on `stub` with a 60 s deadline.
grpc::Status RecognizeOn(v1::StreamingSpeech::StubInterface* stub,
                         const v1::RecognizeRequest& request, v1::RecognizeResponse* response);

// ---- streams ----
// PCM_S16LE 16 kHz mono, MANUAL endpointing, EXACT finals with token ids.
v1::SessionConfig ExactConfig(bool interim, v1::ResultOptions::CommitPolicy policy);

struct StreamRun {
  grpc::Status status;
  std::vector<client::ResponseRecord> records;
  double wall_s = 0;
  std::vector<v1::StreamingRecognizeResponse> responses() const;
};
struct StreamSpec {
  std::string clip = "clip_a";
  std::string pcm;  // PCM_S16LE 16 kHz mono to stream instead of the clip, when not empty
  int chunk_ms = 100;
  bool realtime = false;
  v1::SessionConfig config = ExactConfig(false, v1::ResultOptions::NONE);
  absl::Duration timeout = absl::Seconds(120);  // cancelled (and a failure) after this
};
// Streams the whole clip, half-closes and waits for the end.
StreamRun RunStream(v1::StreamingSpeech::StubInterface* stub, const StreamSpec& spec);
// Waits for the end of `client`'s call (cancelling it after `timeout`) and records it.
StreamRun Collect(client::StreamingClient* client, absl::Duration timeout = absl::Seconds(120));

// The concatenated token ids of all finals, and the number of finals.
std::vector<int64_t> FinalTokenIds(const std::vector<v1::StreamingRecognizeResponse>& responses);
int CountFinals(const std::vector<v1::StreamingRecognizeResponse>& responses);
int CountTranscripts(const std::vector<v1::StreamingRecognizeResponse>& responses);
bool HasWarning(const std::vector<v1::StreamingRecognizeResponse>& responses,
                v1::Warning::Code code);
// API invariants of every stream: SessionStarted first, response_seq 1, 2, 3, ...,
// audio_received/audio_processed never decrease, a summary only last.
void ExpectWellFormed(const std::vector<v1::StreamingRecognizeResponse>& responses,
                      const std::string& what);
// Status OK, a SessionSummary last, one final whose token ids are the offline output.
void ExpectMatchesOffline(const StreamRun& run, const std::string& clip, const std::string& what);

// The server still runs, and a new clip_a stream on it gives the offline final (after a test that
// tried to disturb it).
void ExpectServerStillServes(ServerProcess* server, const std::string& what);

// A clip_a stream that stays open across an error test: the constructor sends the config and the
// first half of the audio (fast) and waits for SessionStarted; Finish() sends the rest and
// checks the result against the offline output.
class HealthyStream {
 public:
  explicit HealthyStream(v1::StreamingSpeech::StubInterface* stub);
  void Finish(const std::string& what);

 private:
  std::unique_ptr<client::StreamingClient> client_;
  std::string pcm_;
};

// google.rpc.Status details of an error status.
struct ErrorDetails {
  bool parsed = false;
  std::string reason, domain;
  bool has_retry_info = false;
  absl::Duration retry_delay;
  std::vector<std::string> fields;  // BadRequest field violations
};
ErrorDetails ParseDetails(const grpc::Status& status);
std::string Describe(const grpc::Status& status);
// OK or a status that blames the request (INVALID_ARGUMENT, OUT_OF_RANGE, FAILED_PRECONDITION,
// NOT_FOUND, UNIMPLEMENTED, RESOURCE_EXHAUSTED); never INTERNAL, UNKNOWN or UNAVAILABLE.
bool IsClientError(grpc::StatusCode code);
// Outcomes of many calls that must each end OK or with a client error carrying an ErrorInfo reason
// (the fuzz tests): Add() checks one call and counts it; Print() lists the counts.
class OutcomeTally {
 public:
  void Add(const grpc::Status& status, const std::string& what);
  int count(grpc::StatusCode code) const;
  void Print(const std::string& label) const;

 private:
  std::map<grpc::StatusCode, int> codes_;
  std::map<std::string, int> reasons_;
};
// Expects `code` and ErrorInfo{reason, domain "speechllm.v1"}.
void ExpectError(const grpc::Status& status, grpc::StatusCode code, const std::string& reason);

}  // namespace speechllm::itest

#endif  // SPEECHLLM_TESTS_INTEGRATION_SERVER_HARNESS_H_
