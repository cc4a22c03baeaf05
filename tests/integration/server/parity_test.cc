// Streaming equals offline (issue 4, "Must show" 1): with nothing committed early (interim results
// off, or interim on with commit policy NONE) and final_mode EXACT, the final of a stream of
// clip_a / clip_b cut into 20, 100, 320 and 1000 ms client chunks equals speechllm-transcribe's
// output token for token and the Hugging Face greedy tokens of the golden fixture. Driven by the
// real speechllm-client program (--json output parsed) and by the in-process StreamingClient; fast
// pacing, plus one stream paced in real time. Every stream ends with a SessionSummary and OK.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/integration/server/harness.h"

namespace speechllm::itest {
namespace {

const std::vector<std::string> kClips = {"clip_a", "clip_b"};
const std::vector<int> kChunkMs = {20, 100, 320, 1000};

struct Mode {
  const char* name;
  bool interim;
};
const std::vector<Mode> kModes = {{"interim off", false}, {"interim on + commit NONE", true}};

class ParityTest : public SharedServerTest<ParityTest> {};

// One protobuf-JSON StreamingRecognizeResponse per line (speechllm-client --json).
std::vector<v1::StreamingRecognizeResponse> ParseJsonLines(const std::string& text) {
  std::vector<v1::StreamingRecognizeResponse> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    v1::StreamingRecognizeResponse response;
    const auto status = google::protobuf::util::JsonStringToMessage(std::string(line), &response);
    EXPECT_TRUE(status.ok()) << "not a response: " << line << ": " << status.ToString();
    out.push_back(std::move(response));
  }
  return out;
}

void ExpectGolden(const std::vector<int64_t>& ids, const std::string& clip,
                  const std::string& what) {
  const std::vector<int64_t> golden = GoldenTokens(clip);
  ASSERT_EQ(golden.size(), 24u);
  EXPECT_EQ(Ids(ids), Ids(golden)) << what << ": final differs from the HF greedy tokens";
}

TEST_F(ParityTest, OfflineReferenceEqualsGolden) {
  for (const std::string& clip : kClips) {
    const std::vector<int64_t> offline = OfflineTokens(clip);
    std::printf("[golden] %s: %s\n", clip.c_str(), Ids(GoldenTokens(clip)).c_str());
    ExpectGolden(offline, clip, "speechllm-transcribe " + clip);
  }
}

// The real client program: every clip, chunk size and mode, --fast.
TEST_F(ParityTest, ClientProgramStreamsEqualOffline) {
  int runs = 0, equal = 0;
  for (const std::string& clip : kClips) {
    for (int chunk_ms : kChunkMs) {
      for (const Mode& mode : kModes) {
        const std::string what =
            absl::StrCat("speechllm-client ", clip, " chunk ", chunk_ms, " ms, ", mode.name);
        SCOPED_TRACE(what);
        std::vector<std::string> argv = {SPEECHLLM_TEST_CLIENT_BIN,
                                         "--server=" + server_->address(),
                                         "--wav=" + ClipPath(clip),
                                         absl::StrCat("--chunk_ms=", chunk_ms),
                                         "--fast",
                                         "--commit_policy=none",
                                         "--final_mode=exact",
                                         "--endpointing=manual",
                                         "--token_ids",
                                         "--json"};
        if (!mode.interim) argv.push_back("--no_interim");
        const ProcessResult r = RunProcess(argv, "/dev/null", absl::Seconds(60));
        ++runs;
        EXPECT_EQ(r.exit_code, 0) << r.err;
        const auto responses = ParseJsonLines(r.out);
        ExpectWellFormed(responses, what);
        ASSERT_FALSE(responses.empty()) << r.err;
        EXPECT_TRUE(responses.back().has_summary()) << "no SessionSummary last";
        EXPECT_TRUE(responses.front().started().effective_config().results().interim_results() ==
                    mode.interim);
        EXPECT_EQ(CountFinals(responses), 1);
        const std::vector<int64_t> ids = FinalTokenIds(responses);
        EXPECT_EQ(Ids(ids), Ids(OfflineTokens(clip))) << "final differs from offline";
        ExpectGolden(ids, clip, what);
        const bool same = ids == OfflineTokens(clip);
        equal += same;
        std::printf("[client] %-55s exit %d, %2zu responses, %d partials, final == offline: %s\n",
                    what.c_str(), r.exit_code, responses.size(),
                    CountTranscripts(responses) - CountFinals(responses), same ? "yes" : "NO");
      }
    }
  }
  std::printf("[client] %d/%d client-program streams equal offline\n", equal, runs);
}

// The in-process StreamingClient: the full matrix for one clip, fast pacing.
void InProcessMatrix(v1::StreamingSpeech::Stub* stub, const std::string& clip) {
  int runs = 0, equal = 0;
  for (int chunk_ms : kChunkMs) {
    for (const Mode& mode : kModes) {
      const std::string what =
          absl::StrCat("in-process ", clip, " chunk ", chunk_ms, " ms, ", mode.name);
      SCOPED_TRACE(what);
      StreamSpec spec;
      spec.clip = clip;
      spec.chunk_ms = chunk_ms;
      spec.config = ExactConfig(mode.interim, v1::ResultOptions::NONE);
      const StreamRun run = RunStream(stub, spec);
      ++runs;
      ExpectMatchesOffline(run, clip, what);
      const auto responses = run.responses();
      ExpectGolden(FinalTokenIds(responses), clip, what);
      const bool same = FinalTokenIds(responses) == OfflineTokens(clip);
      equal += same;
      std::printf("[stream] %-50s %s in %.3f s, %2zu responses, %d partials, == offline: %s\n",
                  what.c_str(), Describe(run.status).c_str(), run.wall_s, responses.size(),
                  CountTranscripts(responses) - CountFinals(responses), same ? "yes" : "NO");
    }
  }
  std::printf("[stream] %s: %d/%d streams equal offline\n", clip.c_str(), equal, runs);
}

TEST_F(ParityTest, InProcessStreamsOfClipAEqualOffline) {
  InProcessMatrix(server_->stub(), "clip_a");
}
TEST_F(ParityTest, InProcessStreamsOfClipBEqualOffline) {
  InProcessMatrix(server_->stub(), "clip_b");
}

// One stream paced like a microphone: partials arrive while it runs, the final is still exact.
TEST_F(ParityTest, RealtimePacedStreamEqualsOffline) {
  StreamSpec spec;
  spec.clip = "clip_a";
  spec.chunk_ms = 100;
  spec.realtime = true;
  spec.config = ExactConfig(/*interim=*/true, v1::ResultOptions::NONE);
  const StreamRun run = RunStream(server_->stub(), spec);
  ExpectMatchesOffline(run, "clip_a", "real-time clip_a, 100 ms, interim + NONE");
  const auto responses = run.responses();
  ExpectGolden(FinalTokenIds(responses), "clip_a", "real-time clip_a");
  const int partials = CountTranscripts(responses) - CountFinals(responses);
  int committed_partials = 0;
  for (const auto& r : responses) {
    if (r.has_transcript() && !r.transcript().is_final())
      committed_partials += !r.transcript().committed_delta().empty();
  }
  std::printf(
      "[realtime] %.3f s for %.3f s of audio, %d partials (%d with committed text), "
      "status %s\n",
      run.wall_s, ClipPcm("clip_a").size() / 32000.0, partials, committed_partials,
      Describe(run.status).c_str());
  EXPECT_GE(run.wall_s, 3.3) << "the stream was not paced in real time";
  EXPECT_GE(partials, 1) << "no partial arrived during a real-time stream with interim results";
  EXPECT_EQ(committed_partials, 0) << "commit policy NONE committed text before the final";
}

}  // namespace
}  // namespace speechllm::itest
