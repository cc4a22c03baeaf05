// Processes, the server, HTTP and metrics parsing of ops_harness.h.
#include "tests/integration/ops/ops_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/pcm_source.h"
#include "gtest/gtest.h"

namespace speechllm::opstest {
namespace {

std::atomic<int> next_file{0};

std::string ScratchFile(const std::string& stem) {
  return absl::StrCat(ScratchDir(), "/", stem, "-", next_file.fetch_add(1));
}

int ExitCodeOf(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

// Waits for `pid` up to `timeout`; false if it is still running.
bool WaitFor(pid_t pid, absl::Duration timeout, int* exit_code) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      *exit_code = ExitCodeOf(status);
      return true;
    }
    if (done < 0) {
      *exit_code = -1;
      return true;
    }
    if (absl::Now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// The integer in `path` once it exists and parses, else 0.
int ReadPortFile(const std::string& path) {
  int port = 0;
  const std::string text = ReadFileOrEmpty(path);
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &port)) return 0;
  return port;
}

}  // namespace

std::string SourcePath(const std::string& relative) {
  return absl::StrCat(SPEECHLLM_OPS_SOURCE_DIR, "/", relative);
}

std::string ClipPath() { return SourcePath("tests/data/qwen2-audio-tiny-golden/clip_a.wav"); }

std::string ScratchDir() {
  static const std::string dir = [] {
    const std::string path = absl::StrCat(SPEECHLLM_OPS_SCRATCH_DIR, "/", getpid());
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
    std::atexit([] {
      if (::testing::UnitTest::GetInstance()->Passed()) {
        std::error_code ignored;
        std::filesystem::remove_all(absl::StrCat(SPEECHLLM_OPS_SCRATCH_DIR, "/", getpid()),
                                    ignored);
      }
    });
    return path;
  }();
  return dir;
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

bool WriteTextFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
  return static_cast<bool>(out);
}

absl::StatusOr<std::string> RequireTool(const std::string& name, const std::string& package) {
  const char* path_env = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path_env == nullptr ? "" : path_env, ':')) {
    const std::string candidate = absl::StrCat(dir, "/", name);
    if (!dir.empty() && access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return absl::NotFoundError(absl::StrCat(name, " is not on PATH: install the Debian package ",
                                          package, " (scripts/setup_debian.sh does)"));
}

int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

namespace {

// fork + execv with the three standard streams redirected. The child gets SIGKILL when the test
// process dies (PR_SET_PDEATHSIG), so a crashed test leaves no server behind. Only
// async-signal-safe calls run between fork and exec. (The signal follows the forking thread: tests
// start children from their main thread.)
pid_t StartChild(const std::vector<std::string>& argv, const std::string& stdin_path,
                 const std::string& stdout_path, const std::string& stderr_path) {
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid != 0) return pid;  // the parent (or -1)
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(127);
  const int in = open(stdin_path.c_str(), O_RDONLY);
  const int out = open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const int err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) {
    _exit(127);
  }
  execv(args[0], args.data());
  _exit(127);
}

}  // namespace

pid_t SpawnProcess(const std::vector<std::string>& argv, const std::string& stdout_path,
                   const std::string& stderr_path) {
  return StartChild(argv, "/dev/null", stdout_path, stderr_path);
}

int StopProcess(pid_t pid, int signal_number, absl::Duration timeout) {
  if (pid <= 0) return -1;
  kill(pid, signal_number);
  int exit_code = -1;
  if (WaitFor(pid, timeout, &exit_code)) return exit_code;
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  return ExitCodeOf(status);
}

ProcessResult RunProcess(const std::vector<std::string>& argv, const std::string& stdin_path,
                         absl::Duration timeout) {
  ProcessResult result;
  const std::string out = ScratchFile("out"), err = ScratchFile("err");
  const pid_t pid = StartChild(argv, stdin_path, out, err);
  if (pid < 0) {
    result.err = "cannot start " + argv[0];
    return result;
  }
  if (!WaitFor(pid, timeout, &result.exit_code)) {
    result.exit_code = StopProcess(pid, SIGKILL, absl::Seconds(5));
    result.err = "timed out; ";
  }
  result.out = ReadFileOrEmpty(out);
  result.err += ReadFileOrEmpty(err);
  return result;
}

// ---- ServerProcess ----

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::vector<std::string>& extra_flags, bool wait_for_grpc_port) {
  std::unique_ptr<ServerProcess> server(new ServerProcess());
  const std::string stem = ScratchFile("server");
  server->log_path_ = stem + ".log";
  server->port_file_ = stem + ".port";
  std::vector<std::string> argv = {SPEECHLLM_OPS_SERVER_BIN,
                                   "--model=" + SourcePath("models/qwen2-audio-tiny"),
                                   "--listen=127.0.0.1:0",
                                   "--port_file=" + server->port_file_,
                                   "--prompt_prefix_ids=1,2,3,501",
                                   "--prompt_suffix_ids=502,10,11,12",
                                   "--max_new_tokens=24",
                                   "--metrics_listen=127.0.0.1:0",
                                   "--metrics_port_file=" + stem + ".metrics_port"};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  server->pid_ = SpawnProcess(argv, server->log_path_, server->log_path_ + ".err");
  if (server->pid_ < 0) return absl::InternalError("cannot start " + argv[0]);
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    server->metrics_port_ = ReadPortFile(stem + ".metrics_port");
    if (server->metrics_port_ > 0) {
      if (!wait_for_grpc_port) return server;
      // Serving, or exited: WaitForGrpcPort reaps an exited server and returns its exit code.
      const absl::Status serving = server->WaitForGrpcPort(absl::ZeroDuration());
      if (!absl::IsDeadlineExceeded(serving)) {
        if (!serving.ok()) return serving;
        return server;
      }
    } else if (absl::Status exited = server->ExitStatus(); !exited.ok()) {
      return exited;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::DeadlineExceededError("speechllm-server wrote no port files within 60 s: " +
                                     ReadFileOrEmpty(server->log_path_ + ".err"));
}

absl::Status ServerProcess::WaitForGrpcPort(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    port_ = ReadPortFile(port_file_);
    if (port_ > 0) return absl::OkStatus();
    if (absl::Status exited = ExitStatus(); !exited.ok()) return exited;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError("speechllm-server wrote no gRPC port file in time");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

absl::Status ServerProcess::ExitStatus() {
  int exit_code = 0;
  if (pid_ <= 0 || !WaitFor(pid_, absl::ZeroDuration(), &exit_code)) return absl::OkStatus();
  pid_ = -1;
  return absl::InternalError(absl::StrCat("speechllm-server exited with ", exit_code, ": ",
                                          ReadFileOrEmpty(log_path_ + ".err")));
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) StopProcess(pid_, SIGKILL, absl::Seconds(5));
}

void ServerProcess::Signal(int signal_number) const {
  if (pid_ > 0) kill(pid_, signal_number);
}

int ServerProcess::Stop() {
  const int exit_code = StopProcess(pid_, SIGTERM, absl::Seconds(40));
  pid_ = -1;
  return exit_code;
}

// ---- HTTP and metrics ----

absl::StatusOr<std::string> HttpGet(int port, const std::string& path_and_query) {
  httplib::Client http("127.0.0.1", port);
  http.set_connection_timeout(5, 0);
  http.set_read_timeout(10, 0);
  httplib::Result result = http.Get(path_and_query.c_str());
  if (!result) {
    return absl::UnavailableError(absl::StrCat("GET ", path_and_query, " on port ", port,
                                               " failed: ", httplib::to_string(result.error())));
  }
  if (result->status != 200) {
    return absl::UnavailableError(
        absl::StrCat("GET ", path_and_query, " answered ", result->status, ": ", result->body));
  }
  return result->body;
}

std::string UrlEncode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

absl::StatusOr<MetricSamples> ParseMetrics(const std::string& text) {
  MetricSamples samples;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (line.front() == '#') continue;
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space == absl::string_view::npos || !absl::SimpleAtod(line.substr(space + 1), &value)) {
      return absl::InvalidArgumentError(absl::StrCat("not a sample line: ", line));
    }
    samples[std::string(line.substr(0, space))] = value;
  }
  return samples;
}

absl::StatusOr<MetricSamples> Scrape(int metrics_port) {
  auto body = HttpGet(metrics_port, "/metrics");
  if (!body.ok()) return body.status();
  return ParseMetrics(*body);
}

double Value(const MetricSamples& samples, const std::string& series) {
  auto it = samples.find(series);
  return it == samples.end() ? 0.0 : it->second;
}

// ---- calls ----

double ClipSeconds() {
  auto audio = client::ReadWavAsPcm(ClipPath());
  return audio.ok() ? audio->duration_seconds() : -1;
}

client::StreamingClientOptions PcmStreamOptions(bool realtime) {
  client::StreamingClientOptions options;
  options.realtime = realtime;
  options.config.mutable_audio()->set_encoding(v1::AudioFormat::PCM_S16LE);
  options.config.mutable_audio()->set_sample_rate_hz(16000);
  options.config.mutable_audio()->set_channels(1);
  options.deadline = absl::Seconds(120);
  return options;
}

grpc::Status StreamClip(v1::StreamingSpeech::StubInterface* stub, bool realtime,
                        const std::vector<std::pair<std::string, std::string>>& metadata) {
  auto audio = client::ReadWavAsPcm(ClipPath());
  if (!audio.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, audio.status().ToString());
  client::StreamingClientOptions options;
  options.realtime = realtime;
  *options.config.mutable_audio() = audio->format;
  options.config.mutable_results()->set_interim_results(true);
  options.deadline = absl::Seconds(60);
  options.metadata = metadata;
  client::StreamingClient streaming(stub, options);
  if (absl::Status started = streaming.Start(); !started.ok()) {
    return grpc::Status(grpc::StatusCode::INTERNAL, started.ToString());
  }
  (void)streaming.SendAudio(audio->data);
  (void)streaming.CloseSend();
  return streaming.Await();
}

}  // namespace speechllm::opstest
