// speechllm-client as a person at a microphone uses it (label integration): Ctrl-C ends the input
// and still prints the last final and the report (it killed the client, losing both); stdin is sent
// as it arrives (pacing it again held every chunk back one chunk_ms more); and a call that ends
// (here its deadline) ends the client while the recorder is quiet (a blocking read held it until
// the recorder wrote again); SINGLE_UTTERANCE ends the client after its utterance; --latency and
// --extension set the session config; --realtime paces Opus encoded from piped PCM. Live input is
// a FIFO the test writes and keeps open.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/integration/server/harness.h"

namespace speechllm::itest {
namespace {

class ClientProgramTest : public SharedServerTest<ClientProgramTest> {
 protected:
  std::vector<std::string> ClientArgs(std::vector<std::string> extra) const {
    std::vector<std::string> args = {SPEECHLLM_TEST_CLIENT_BIN, "--server=" + server_->address(),
                                     "--endpointing=manual"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
};

// A client process whose stdin is a FIFO this test writes and holds open (a live recorder).
struct LiveClient {
  pid_t pid = -1;
  int writer_fd = -1;
  std::string out_path, err_path;

  explicit LiveClient(const std::vector<std::string>& argv) {
    static int next = 0;
    const std::string stem = absl::StrCat(ScratchDir(), "/live-client-", next++);
    const std::string fifo = stem + ".fifo";
    out_path = stem + ".out";
    err_path = stem + ".err";
    EXPECT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    // Opening either end alone blocks; a reader of our own lets the writer open at once, and the
    // child's read end then opens without waiting (posix_spawn waits for the child's exec).
    const int own_reader = open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
    writer_fd = open(fifo.c_str(), O_WRONLY);
    pid = Spawn(argv, fifo, out_path, err_path);
    close(own_reader);
    EXPECT_GE(writer_fd, 0);
    EXPECT_GT(pid, 0);
  }
  ~LiveClient() {
    if (writer_fd >= 0) close(writer_fd);
    if (pid > 0) WaitExit(pid, absl::Seconds(10));
  }
  void Write(const std::string& bytes) {
    signal(SIGPIPE, SIG_IGN);
    for (size_t done = 0; done < bytes.size();) {
      const ssize_t n = write(writer_fd, bytes.data() + done, bytes.size() - done);
      ASSERT_GT(n, 0) << "the client stopped reading";
      done += static_cast<size_t>(n);
    }
  }
  ProcessResult Wait(absl::Duration timeout) {
    ProcessResult result;
    result.exit_code = WaitExit(pid, timeout, &result.timed_out);
    pid = -1;
    result.out = ReadFileOrEmpty(out_path);
    result.err = ReadFileOrEmpty(err_path);
    return result;
  }
};

// The number after `label` in the client's report ("wall 1.234 s"); -1 if absent.
double ReportFigure(const std::string& report, const std::string& label) {
  const size_t at = report.find(label);
  if (at == std::string::npos) return -1;
  const size_t start = at + label.size();
  double value = -1;
  if (!absl::SimpleAtod(report.substr(start, report.find(' ', start) - start), &value)) return -1;
  return value;
}

// A 7.9 s clip paced in real time, Ctrl-C after 2 s: the rest is not sent, the final of what was
// sent is printed, then the report; exit 0.
TEST_F(ClientProgramTest, CtrlCEndsAPacedFileAndStillPrintsItsFinal) {
  const std::string out = ScratchDir() + "/ctrl-c-file.out",
                    err = ScratchDir() + "/ctrl-c-file.err";
  const pid_t pid = Spawn(ClientArgs({"--wav=" + ClipPath("clip_b")}), "/dev/null", out, err);
  ASSERT_GT(pid, 0);
  absl::SleepFor(absl::Seconds(2));
  kill(pid, SIGINT);
  bool timed_out = false;
  const int exit_code = WaitExit(pid, absl::Seconds(60), &timed_out);
  const std::string stdout_text = ReadFileOrEmpty(out), stderr_text = ReadFileOrEmpty(err);
  const double audio_s = ReportFigure(stderr_text, "/ audio ");
  std::printf("exit %d, audio sent %.3f s of 7.910 s\n%s%s", exit_code, audio_s,
              stdout_text.c_str(), stderr_text.c_str());
  EXPECT_FALSE(timed_out);
  EXPECT_EQ(exit_code, 0);
  EXPECT_NE(stdout_text.find("final: "), std::string::npos);
  EXPECT_NE(stderr_text.find("server summary:"), std::string::npos);
  EXPECT_GT(audio_s, 0.5);
  EXPECT_LT(audio_s, 6.0) << "the audio after Ctrl-C was sent";
}

// The recorder wrote 3.37 s and stays open and quiet: Ctrl-C ends the input; all of it was sent
// and its final printed.
TEST_F(ClientProgramTest, CtrlCOnAQuietLiveInputStillPrintsTheFinal) {
  LiveClient live(ClientArgs({"--stdin_pcm=16000"}));
  live.Write(ClipPcm("clip_a"));
  absl::SleepFor(absl::Seconds(2));
  kill(live.pid, SIGINT);
  const ProcessResult run = live.Wait(absl::Seconds(60));
  std::printf("exit %d\n%s%s", run.exit_code, run.out.c_str(), run.err.c_str());
  EXPECT_FALSE(run.timed_out);
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_NE(run.out.find("final: "), std::string::npos);
  EXPECT_NE(run.err.find("server summary: audio 3370.0 ms"), std::string::npos);
}

// SINGLE_UTTERANCE from a recorder that stays open: after the first utterance's final and
// END_OF_SINGLE_UTTERANCE the client stops reading and ends on its own, exit 0 (it used to read
// the quiet recorder until Ctrl-C, the server dropping whatever came).
TEST_F(ClientProgramTest, SingleUtteranceEndsTheClientAfterItsUtterance) {
  LiveClient live(ClientArgs({"--stdin_pcm=16000", "--endpointing=single"}));
  live.Write(ClipPcm("clip_a") + std::string(2 * 32000, '\0'));  // speech, then 2 s of silence
  const ProcessResult run = live.Wait(absl::Seconds(20));
  std::printf("exit %d, timed out %d\n%s%s", run.exit_code, run.timed_out ? 1 : 0, run.out.c_str(),
              run.err.c_str());
  EXPECT_FALSE(run.timed_out) << "the client kept reading after the single utterance";
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_NE(run.out.find("final: "), std::string::npos);
}

// 7.9 s of PCM already in the stdin file, 1 s chunks: sent as fast as it is read, so the whole call
// takes far less than the audio (paced again, it took the audio's 7.9 s and more).
TEST_F(ClientProgramTest, StdinIsSentAsItArrivesNotPacedAgain) {
  const std::string pcm_path = ScratchDir() + "/clip_b.pcm";
  ASSERT_TRUE(WriteFile(pcm_path, ClipPcm("clip_b")));
  const ProcessResult run =
      RunProcess(ClientArgs({"--stdin_pcm=16000", "--chunk_ms=1000"}), pcm_path);
  const double wall_s = ReportFigure(run.err, "(wall ");
  std::printf("exit %d, wall %.3f s for 7.910 s of audio\n", run.exit_code, wall_s);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_GT(wall_s, 0);
  EXPECT_LT(wall_s, 5.0) << run.err;
}

// A partial sample at the end of stdin is reported on every stdin path: sent as it is read, encoded
// as Opus, and read whole for --recognize (the last two dropped it without a word).
TEST_F(ClientProgramTest, EveryStdinPathReportsADroppedPartialSample) {
  const std::string pcm_path = ScratchDir() + "/odd.pcm";
  ASSERT_TRUE(WriteFile(pcm_path, ClipPcm("clip_a") + "x"));
  for (const std::vector<std::string>& flags :
       std::vector<std::vector<std::string>>{{"--stdin_pcm=16000"},
                                             {"--stdin_pcm=16000", "--encode=opus"},
                                             {"--stdin_pcm=16000", "--recognize"}}) {
    const ProcessResult run = RunProcess(ClientArgs(flags), pcm_path);
    std::printf("%s: exit %d\n", flags.back().c_str(), run.exit_code);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    EXPECT_NE(run.err.find("dropped 1 trailing bytes (a partial sample)"), std::string::npos)
        << flags.back() << ": " << run.err;
  }
}

// --realtime paces piped PCM that --encode opus encodes by the PCM's time: 2 s of audio written
// at once take about 2 s to send (they went out at once, with a note that they were not paced).
TEST_F(ClientProgramTest, RealtimePacesOpusEncodedFromPipedPcm) {
  const std::string pcm_path = ScratchDir() + "/two_seconds.pcm";
  ASSERT_TRUE(WriteFile(pcm_path, ClipPcm("clip_a").substr(0, 2 * 32000)));
  const absl::Time start = absl::Now();
  const ProcessResult run =
      RunProcess(ClientArgs({"--stdin_pcm=16000", "--encode=opus", "--realtime"}), pcm_path);
  const double wall_s = absl::ToDoubleSeconds(absl::Now() - start);
  std::printf("exit %d, wall %.3f s for 2.000 s of audio\n", run.exit_code, wall_s);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_GE(wall_s, 1.8) << run.err;
  EXPECT_EQ(run.err.find("without pacing"), std::string::npos) << run.err;
}

// Nothing arrives on stdin and the call's 1 s deadline passes: the client ends with
// DEADLINE_EXCEEDED (exit 14) while the recorder stays open.
TEST_F(ClientProgramTest, TheCallsDeadlineEndsTheClientWhileStdinIsQuiet) {
  LiveClient live(ClientArgs({"--stdin_pcm=16000", "--deadline_s=1"}));
  const absl::Time start = absl::Now();
  const ProcessResult run = live.Wait(absl::Seconds(20));
  std::printf("exit %d after %.1f s: %s", run.exit_code, absl::ToDoubleSeconds(absl::Now() - start),
              run.err.c_str());
  EXPECT_FALSE(run.timed_out) << "the client waited for stdin after its call ended";
  EXPECT_EQ(run.exit_code, 14) << run.err;
}

// --latency, --extension and --language reach the server: the effective config the client
// prints (--json) echoes LOW's commit rules with the extension's holdback and the language, which
// the transcripts report; a malformed --extension or --latency is refused before connecting (a
// non-zero exit naming the flag).
TEST_F(ClientProgramTest, LatencyAndExtensionFlagsSetTheSessionConfig) {
  const ProcessResult run =
      RunProcess(ClientArgs({"--wav=" + ClipPath("clip_a"), "--fast", "--json", "--latency=low",
                             "--extension=holdback_tokens=1", "--language=en-US"}));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::string first_line = run.out.substr(0, run.out.find('\n'));
  std::printf("%s\n", first_line.substr(0, 400).c_str());
  EXPECT_NE(first_line.find("\"latency\":\"LOW\""), std::string::npos) << first_line;
  EXPECT_NE(first_line.find("\"languageCodes\":[\"en-US\"]"), std::string::npos) << first_line;
  EXPECT_NE(run.out.find("\"languageCode\":\"en-US\""), std::string::npos)
      << "the transcripts report the hint";
  EXPECT_NE(first_line.find("\"holdback_tokens\":\"1\""), std::string::npos) << first_line;
  EXPECT_NE(first_line.find("\"agreement\":\"0\""), std::string::npos) << first_line;
  for (const std::string bad : {"--extension=holdback_tokens", "--latency=fastest"}) {
    const ProcessResult refused =
        RunProcess(ClientArgs({"--wav=" + ClipPath("clip_a"), "--fast", bad}));
    std::printf("%s -> exit %d: %s", bad.c_str(), refused.exit_code, refused.err.c_str());
    EXPECT_NE(refused.exit_code, 0);
    EXPECT_NE(refused.err.find(bad.substr(2, bad.find('=') - 2)), std::string::npos) << refused.err;
  }
}

}  // namespace
}  // namespace speechllm::itest
