// Paths, child processes and the speechllm-server process of harness.h.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/integration/server/harness.h"

extern char** environ;

namespace speechllm::itest {
namespace {

std::atomic<int> file_counter{0};

std::string NextScratchFile(const std::string& stem) {
  return absl::StrCat(ScratchDir(), "/", stem, "-", file_counter.fetch_add(1));
}

}  // namespace

std::string SourcePath(const std::string& relative) {
  return absl::StrCat(SPEECHLLM_TEST_SOURCE_DIR, "/", relative);
}

std::string ClipPath(const std::string& clip) {
  return SourcePath("tests/data/qwen2-audio-tiny-golden/" + clip + ".wav");
}

std::string ScratchDir() {
  static const std::string dir = [] {
    const std::string d = absl::StrCat(SPEECHLLM_TEST_SCRATCH_DIR, "/", getpid());
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    // Kept when a test failed (server logs, stdin files); removed otherwise.
    std::atexit([] {
      if (::testing::UnitTest::GetInstance()->Passed()) {
        std::error_code ignored;
        std::filesystem::remove_all(absl::StrCat(SPEECHLLM_TEST_SCRATCH_DIR, "/", getpid()),
                                    ignored);
      }
    });
    return d;
  }();
  return dir;
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
  return static_cast<bool>(out);
}

pid_t Spawn(const std::vector<std::string>& argv, const std::string& stdin_path,
            const std::string& stdout_path, const std::string& stderr_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, stdin_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

namespace {
int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}
}  // namespace

int WaitExit(pid_t pid, absl::Duration timeout, bool* timed_out) {
  if (timed_out != nullptr) *timed_out = false;
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (true) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return DecodeWaitStatus(status);
    if (r < 0) return -1;
    if (absl::Now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (timed_out != nullptr) *timed_out = true;
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return DecodeWaitStatus(status);
}

ProcessResult RunProcess(const std::vector<std::string>& argv, const std::string& stdin_path,
                         absl::Duration timeout) {
  ProcessResult result;
  const std::string out = NextScratchFile("proc-out"), err = NextScratchFile("proc-err");
  const pid_t pid = Spawn(argv, stdin_path, out, err);
  if (pid < 0) {
    result.err = "cannot start " + argv[0];
    return result;
  }
  result.exit_code = WaitExit(pid, timeout, &result.timed_out);
  result.out = ReadFileOrEmpty(out);
  result.err = ReadFileOrEmpty(err);
  return result;
}

// ---- ServerProcess ----

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::vector<std::string>& extra_flags) {
  auto server = std::unique_ptr<ServerProcess>(new ServerProcess());
  const std::string stem = NextScratchFile("server");
  const std::string port_file = stem + ".port";
  server->log_path_ = stem + ".log";
  std::vector<std::string> argv = {SPEECHLLM_TEST_SERVER_BIN,
                                   "--model=" + SourcePath("models/qwen2-audio-tiny"),
                                   "--listen=127.0.0.1:0",
                                   "--port_file=" + port_file,
                                   "--prompt_prefix_ids=1,2,3,501",
                                   "--prompt_suffix_ids=502,10,11,12",
                                   "--max_new_tokens=24"};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  server->pid_ = Spawn(argv, "/dev/null", stem + ".out", server->log_path_);
  if (server->pid_ < 0) return absl::InternalError("cannot spawn " + argv[0]);
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (true) {
    int port = 0;
    std::string text = ReadFileOrEmpty(port_file);
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &port) && port > 0) {
      server->port_ = port;
      break;
    }
    int status = 0;
    if (waitpid(server->pid_, &status, WNOHANG) == server->pid_) {
      server->pid_ = -1;
      return absl::InternalError(absl::StrCat("speechllm-server exited with ",
                                              DecodeWaitStatus(status), " before serving:\n",
                                              server->Log()));
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError("speechllm-server wrote no port file in 60 s:\n" +
                                         server->Log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto channel = grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    return absl::UnavailableError("cannot connect to " + server->address());
  }
  server->stub_ = v1::StreamingSpeech::NewStub(channel);
  std::printf("[server] pid %d on %s, flags: %s\n", server->pid_, server->address().c_str(),
              absl::StrJoin(extra_flags, " ").c_str());
  return server;
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::unique_ptr<v1::StreamingSpeech::Stub> ServerProcess::NewStub() const {
  grpc::ChannelArguments args;
  args.SetInt("grpc.use_local_subchannel_pool", 1);  // a connection of its own
  return v1::StreamingSpeech::NewStub(
      grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args));
}

int64_t ServerProcess::VmRssKb() const {
  std::ifstream in(absl::StrCat("/proc/", pid_, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      int64_t kb = -1;
      std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &kb)) return kb;
    }
  }
  return -1;
}

bool ServerProcess::Running() const { return pid_ > 0 && kill(pid_, 0) == 0; }

int ServerProcess::Stop() {
  if (pid_ <= 0) return -1;
  stub_.reset();
  kill(pid_, SIGTERM);
  const int code = WaitExit(pid_, absl::Seconds(30));
  pid_ = -1;
  return code;
}

void EnsureServer(std::unique_ptr<ServerProcess>* server,
                  const std::vector<std::string>& extra_flags) {
  if (*server != nullptr) return;
  auto started = ServerProcess::Start(extra_flags);
  if (!started.ok()) {
    ADD_FAILURE() << "cannot start speechllm-server: " << started.status();
    return;
  }
  *server = *std::move(started);
}

void StopServerForSuite(std::unique_ptr<ServerProcess>* server) {
  if (*server == nullptr) return;
  const int code = (*server)->Stop();
  std::printf("[server] SIGTERM -> exit code %d\n", code);
  EXPECT_EQ(code, 0) << "speechllm-server did not drain and exit cleanly; log:\n"
                     << (*server)->Log();
  server->reset();
}

}  // namespace speechllm::itest
