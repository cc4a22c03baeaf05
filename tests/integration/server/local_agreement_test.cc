// Local agreement end to end (issue 4, "Must show" 1, second item): interim results on, commit
// policy LOCAL_AGREEMENT, client chunks (and encoder chunks) of 320 ms and 1 s, clips paced in real
// time so that partials arrive. Across all TranscriptUpdates of a stream committed text is never
// revised: the committed text after every update is a prefix of the utterance's final text, so
// every final begins with what was committed before it, and the concatenated committed_delta of the
// stream is the concatenation of its finals. response_seq grows by one and
// audio_received/processed never decrease. Prints how many finals still equal the offline output.
#include <cstdio>
#include <future>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/server/harness.h"

namespace speechllm::itest {
namespace {

class LocalAgreementTest : public SharedServerTest<LocalAgreementTest> {};

struct CommitStats {
  int partials = 0;
  int partials_with_commit = 0;  // partial updates whose committed_delta is not empty
  int finals = 0;
  size_t committed_before_final = 0;  // bytes committed by partials, summed over utterances
  bool final_equals_offline = false;
  uint32_t commit_conflicts = 0;
};

// Checks the commit invariants of one stream's responses.
CommitStats CheckCommits(const std::vector<v1::StreamingRecognizeResponse>& responses,
                         const std::string& what) {
  SCOPED_TRACE(what);
  CommitStats stats;
  // First pass: the final text of every utterance (the final's tentative is empty, so the
  // utterance's text is everything committed in it).
  std::map<uint32_t, std::string> committed, final_text;
  for (const auto& r : responses) {
    if (!r.has_transcript()) continue;
    const v1::TranscriptUpdate& t = r.transcript();
    committed[t.utterance_id()] += t.committed_delta();
    if (t.is_final()) {
      EXPECT_EQ(final_text.count(t.utterance_id()), 0u) << "two finals for one utterance";
      final_text[t.utterance_id()] = committed[t.utterance_id()];
    }
  }
  // Second pass: committed text only grows and every intermediate state is a prefix of the final.
  std::map<uint32_t, std::string> so_far;
  std::string all_committed, all_finals;
  uint32_t last_utterance = 0;
  for (const auto& r : responses) {
    if (!r.has_transcript()) continue;
    const v1::TranscriptUpdate& t = r.transcript();
    EXPECT_GE(t.utterance_id(), last_utterance) << "utterance ids went back";
    last_utterance = t.utterance_id();
    if (final_text.count(t.utterance_id()) == 0) {
      ADD_FAILURE() << "utterance " << t.utterance_id() << " has no final";
      continue;
    }
    const std::string& final = final_text[t.utterance_id()];
    std::string& text = so_far[t.utterance_id()];
    if (t.is_final()) {
      ++stats.finals;
      stats.committed_before_final += text.size();
      EXPECT_EQ(final.compare(0, text.size(), text), 0)
          << "the final \"" << final << "\" does not begin with the committed text \"" << text
          << "\"";
      all_finals += final;
      EXPECT_TRUE(t.tentative().empty());
    } else {
      ++stats.partials;
      stats.partials_with_commit += !t.committed_delta().empty();
    }
    text += t.committed_delta();
    all_committed += t.committed_delta();
    EXPECT_EQ(final.compare(0, text.size(), text), 0)
        << "committed text \"" << text << "\" was revised: the final is \"" << final << "\"";
  }
  EXPECT_EQ(all_committed, all_finals)
      << "the concatenated committed_delta is not the transcript of the finals";
  if (!responses.empty() && responses.back().has_summary())
    stats.commit_conflicts = responses.back().summary().commit_conflicts();
  return stats;
}

TEST_F(LocalAgreementTest, CommittedTextIsNeverRevised) {
  struct Case {
    std::string clip;
    int chunk_ms;
  };
  const std::vector<Case> cases = {
      {"clip_a", 320}, {"clip_a", 1000}, {"clip_b", 320}, {"clip_b", 1000}};
  // All four streams at once, each paced like a microphone (the longest clip sets the time).
  std::vector<std::future<StreamRun>> runs;
  for (const Case& c : cases) {
    StreamSpec spec;
    spec.clip = c.clip;
    spec.chunk_ms = c.chunk_ms;
    spec.realtime = true;
    spec.config = ExactConfig(/*interim=*/true, v1::ResultOptions::LOCAL_AGREEMENT);
    (*spec.config.mutable_extensions())["chunk_ms"] = std::to_string(c.chunk_ms);
    runs.push_back(
        std::async(std::launch::async, [spec] { return RunStream(server_->stub(), spec); }));
  }
  int finals = 0, finals_equal = 0, partials = 0, partials_with_commit = 0;
  size_t committed_before_final = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const StreamRun run = runs[i].get();
    const std::string what =
        absl::StrCat(cases[i].clip, " chunk ", cases[i].chunk_ms, " ms, local agreement");
    SCOPED_TRACE(what);
    const auto responses = run.responses();
    EXPECT_TRUE(run.status.ok()) << Describe(run.status);
    ExpectWellFormed(responses, what);
    ASSERT_FALSE(responses.empty());
    EXPECT_TRUE(responses.back().has_summary()) << "no SessionSummary last";
    EXPECT_EQ(responses.front().started().effective_config().results().commit_policy(),
              v1::ResultOptions::LOCAL_AGREEMENT);
    const CommitStats stats = CheckCommits(responses, what);
    EXPECT_EQ(stats.finals, 1);
    const bool equal = FinalTokenIds(responses) == OfflineTokens(cases[i].clip);
    finals += stats.finals;
    finals_equal += equal;
    partials += stats.partials;
    partials_with_commit += stats.partials_with_commit;
    committed_before_final += stats.committed_before_final;
    std::printf(
        "[la] %-36s %s in %.2f s: %d partials (%d committing), %zu bytes committed "
        "before the final, commit conflicts %u, final == offline: %s\n",
        what.c_str(), Describe(run.status).c_str(), run.wall_s, stats.partials,
        stats.partials_with_commit, stats.committed_before_final, stats.commit_conflicts,
        equal ? "yes" : "no");
  }
  std::printf(
      "[la] %d of %d finals equal the offline output; %d partials, %d of them committed "
      "text (%zu bytes before finals)\n",
      finals_equal, finals, partials, partials_with_commit, committed_before_final);
  // The checks above are only meaningful if partials arrived and some of them committed text.
  EXPECT_GT(partials, 0) << "no partial results: the real-time streams saw no interim updates";
  EXPECT_GT(partials_with_commit, 0) << "local agreement never committed before a final";
}

// API.md 4.2's presets set the commit rules and echo them in the effective config: LOW commits
// all but the last 3 tokens without agreement (with it when LOCAL_AGREEMENT is asked for by name),
// BALANCED (the default) and ACCURATE agree and hold back 5; the extensions override them; no
// rule at all, or bad values, are BAD_CONFIG before any audio; NONE echoes no rule.
TEST_F(LocalAgreementTest, PresetsSetTheirCommitRules) {
  using Latency = v1::SessionConfig::LatencyMode;
  using Policy = v1::ResultOptions::CommitPolicy;
  constexpr Policy kDefault = v1::ResultOptions::COMMIT_POLICY_UNSPECIFIED;
  struct Case {
    Latency latency;
    Policy policy;
    std::map<std::string, std::string> extensions;
    std::string holdback, agreement;  // expected echoes; empty: refused
  };
  const std::vector<Case> cases = {
      {v1::SessionConfig::LATENCY_MODE_UNSPECIFIED, kDefault, {}, "5", "2"},
      {v1::SessionConfig::LOW, kDefault, {}, "3", "0"},
      {v1::SessionConfig::LOW, v1::ResultOptions::LOCAL_AGREEMENT, {}, "3", "2"},
      {v1::SessionConfig::ACCURATE, kDefault, {}, "5", "2"},
      {v1::SessionConfig::BALANCED, kDefault, {{"holdback_tokens", "0"}}, "0", "2"},
      {v1::SessionConfig::LOW, kDefault, {{"agreement", "2"}}, "3", "2"},
      {v1::SessionConfig::BALANCED,
       v1::ResultOptions::NONE,
       {{"agreement", "2"}},
       "(none)",
       "(none)"},
      {v1::SessionConfig::LOW, kDefault, {{"holdback_tokens", "0"}}, "", ""},
      {v1::SessionConfig::BALANCED, kDefault, {{"agreement", "1"}}, "", ""},
      {v1::SessionConfig::BALANCED, kDefault, {{"holdback_tokens", "65"}}, "", ""}};
  for (const Case& c : cases) {
    StreamSpec spec;
    spec.config = ExactConfig(/*interim=*/true, c.policy);
    spec.config.set_latency(c.latency);
    for (const auto& [key, value] : c.extensions) (*spec.config.mutable_extensions())[key] = value;
    std::string what = absl::StrCat(v1::SessionConfig::LatencyMode_Name(c.latency), " ",
                                    v1::ResultOptions::CommitPolicy_Name(c.policy));
    for (const auto& [key, value] : c.extensions) absl::StrAppend(&what, " ", key, "=", value);
    SCOPED_TRACE(what);
    const StreamRun run = RunStream(server_->stub(), spec);
    if (c.holdback.empty()) {
      std::printf("[commit rules] %-48s -> %s\n", what.c_str(), Describe(run.status).c_str());
      ExpectError(run.status, grpc::StatusCode::INVALID_ARGUMENT, "BAD_CONFIG");
      continue;
    }
    ASSERT_TRUE(run.status.ok()) << Describe(run.status);
    const auto responses = run.responses();
    ASSERT_FALSE(responses.empty());
    const auto& extensions = responses.front().started().effective_config().extensions();
    const auto echo = [&](const std::string& key) {
      const auto it = extensions.find(key);
      return it == extensions.end() ? std::string("(none)") : it->second;
    };
    std::printf("[commit rules] %-48s -> holdback_tokens %s, agreement %s, chunk_ms %s\n",
                what.c_str(), echo("holdback_tokens").c_str(), echo("agreement").c_str(),
                echo("chunk_ms").c_str());
    EXPECT_EQ(echo("holdback_tokens"), c.holdback);
    EXPECT_EQ(echo("agreement"), c.agreement);
    const CommitStats stats = CheckCommits(responses, what);
    EXPECT_EQ(stats.finals, 1);
  }
}

}  // namespace
}  // namespace speechllm::itest
