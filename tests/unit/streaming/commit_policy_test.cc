// CommitPolicy (LocalAgreement-2, holdback) on the tiny fixture model's tokenizer (label unit):
// commits grow only where two hypotheses agree and at word boundaries; a holdback keeps the last
// tokens and the first two updates uncommitted; the caller's committed count is the floor of every
// proposal, and a hypothesis shorter than an earlier agreement never proposes more than it holds
// (the session may drop a proposal, so the policy keeps no count of its own).
#include "streaming/commit_policy.h"

#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/streaming/session_test_fixture.h"

namespace speechllm::streaming {
namespace {

class CommitPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokenizer_ = GoldenTokenizer();
    ASSERT_NE(tokenizer_, nullptr);
  }
  std::vector<int64_t> Ids(const std::string& text) {
    auto ids = tokenizer_->Encode(text);
    EXPECT_TRUE(ids.ok()) << ids.status();
    return std::vector<int64_t>(ids->begin(), ids->end());
  }
  std::unique_ptr<engine::tokenizer::Tokenizer> tokenizer_;
};

TEST_F(CommitPolicyTest, CommitsWhatTwoHypothesesAgreeOnUpToAWordBoundary) {
  CommitPolicy policy(CommitPolicyKind::kLocalAgreement, tokenizer_.get());
  const std::vector<int64_t> first = Ids("the cat sat");
  const std::vector<int64_t> second = Ids("the cat sang loudly");
  EXPECT_EQ(policy.OnHypothesis(first, 0), 0) << "one hypothesis agrees with nothing yet";
  const int64_t committed = policy.OnHypothesis(second, 0);
  const std::vector<int64_t> expected = Ids("the cat");
  ASSERT_EQ(committed, static_cast<int64_t>(expected.size()));
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), second.begin()));
}

// The agreed tokens must end a word in both hypotheses: "to" followed by " me" is a word, but the
// previous hypothesis went on "to|day", so committing "to" could show a committed word that the
// final turns into "today" (whisper_streaming agrees on whole words).
TEST_F(CommitPolicyTest, AWordOnlyOneHypothesisEndsIsNotCommitted) {
  CommitPolicy policy(CommitPolicyKind::kLocalAgreement, tokenizer_.get());
  const std::vector<int64_t> first = Ids("the cat sat today");
  const std::vector<int64_t> second = Ids("the cat sat to me");
  EXPECT_EQ(policy.OnHypothesis(first, 0), 0);
  const int64_t committed = policy.OnHypothesis(second, 0);
  const std::string text =
      *tokenizer_->Decode(std::vector<int32_t>(second.begin(), second.begin() + committed));
  std::printf("\"the cat sat today\" then \"the cat sat to me\": committed \"%s\"\n", text.c_str());
  EXPECT_EQ(text, "the cat sat");
}

TEST_F(CommitPolicyTest, NeverProposesLessThanTheCallersCountNorMoreThanTheHypothesis) {
  CommitPolicy policy(CommitPolicyKind::kLocalAgreement, tokenizer_.get());
  const std::vector<int64_t> long_hypothesis = Ids("one two three four");
  EXPECT_EQ(policy.OnHypothesis(long_hypothesis, 0), 0);
  const int64_t agreed = policy.OnHypothesis(long_hypothesis, 0);
  EXPECT_EQ(agreed, static_cast<int64_t>(Ids("one two three").size()))
      << "all but the last word, whose end is not known yet";
  // The caller dropped that proposal and still holds 0 committed tokens; a shorter hypothesis
  // must get a proposal within its own length (it used to get the remembered, longer count).
  const std::vector<int64_t> shorter = Ids("one two");
  const int64_t next = policy.OnHypothesis(shorter, 0);
  EXPECT_LE(next, static_cast<int64_t>(shorter.size()));
  // The caller's count is a floor, clamped to the hypothesis.
  EXPECT_EQ(policy.OnHypothesis(Ids("something else entirely"), 2), 2);
  EXPECT_EQ(policy.OnHypothesis(shorter, 50), static_cast<int64_t>(shorter.size()));
}

TEST_F(CommitPolicyTest, NoneCommitsNothingBeforeTheFinal) {
  CommitPolicy policy(CommitPolicyKind::kNone, tokenizer_.get());
  const std::vector<int64_t> hypothesis = Ids("the cat sat on the mat");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(policy.OnHypothesis(hypothesis, 0), 0);
}

// LOW's rule (API.md 4.2): no agreement, the last 3 tokens held back, nothing in the first two
// updates; the commit ends at a word boundary.
TEST_F(CommitPolicyTest, HoldbackCommitsAllButTheLastTokensAfterTwoUpdates) {
  CommitRules rules;
  rules.agreement = false;
  rules.holdback_tokens = 3;
  CommitPolicy policy(CommitPolicyKind::kLocalAgreement, tokenizer_.get(), rules);
  const std::vector<int64_t> hypothesis = Ids("the cat sat on the mat today");
  EXPECT_EQ(policy.OnHypothesis(hypothesis, 0), 0) << "first update: cold start";
  EXPECT_EQ(policy.OnHypothesis(hypothesis, 0), 0) << "second update: cold start";
  const int64_t committed = policy.OnHypothesis(hypothesis, 0);
  const std::string text =
      *tokenizer_->Decode(std::vector<int32_t>(hypothesis.begin(), hypothesis.begin() + committed));
  std::printf("%zu tokens, holdback 3: committed %lld tokens, \"%s\"\n", hypothesis.size(),
              static_cast<long long>(committed), text.c_str());
  EXPECT_LE(committed, static_cast<int64_t>(hypothesis.size()) - 3);
  EXPECT_TRUE(policy.IsBoundary(hypothesis, committed));
  EXPECT_GT(committed, 0);
  // Without agreement a different hypothesis commits on its own (at least what is committed).
  const std::vector<int64_t> other = Ids("the cat sat on the mat yesterday evening");
  EXPECT_GE(policy.OnHypothesis(other, committed), committed);
}

// BALANCED's rule: what two hypotheses agree on, but never their last 5 tokens.
TEST_F(CommitPolicyTest, AgreementAndHoldbackCommitTheSmallerOfTheTwo) {
  CommitRules rules;
  rules.holdback_tokens = 5;
  CommitPolicy policy(CommitPolicyKind::kLocalAgreement, tokenizer_.get(), rules);
  CommitPolicy agreement_only(CommitPolicyKind::kLocalAgreement, tokenizer_.get());
  const std::vector<int64_t> hypothesis = Ids("one two three four five six seven eight");
  int64_t with_holdback = 0, without = 0;
  for (int i = 0; i < 3; ++i) {
    with_holdback = policy.OnHypothesis(hypothesis, with_holdback);
    without = agreement_only.OnHypothesis(hypothesis, without);
  }
  std::printf("%zu tokens agreed: agreement alone commits %lld, with holdback 5 %lld\n",
              hypothesis.size(), static_cast<long long>(without),
              static_cast<long long>(with_holdback));
  EXPECT_LE(with_holdback, static_cast<int64_t>(hypothesis.size()) - 5);
  EXPECT_GT(with_holdback, 0);
  EXPECT_LT(with_holdback, without);
  EXPECT_TRUE(policy.IsBoundary(hypothesis, with_holdback));
  // Two hypotheses that disagree early commit nothing more, holdback or not.
  CommitPolicy fresh(CommitPolicyKind::kLocalAgreement, tokenizer_.get(), rules);
  for (int i = 0; i < 3; ++i) fresh.OnHypothesis(Ids("zero one two three four five six"), 0);
  EXPECT_EQ(fresh.OnHypothesis(hypothesis, 0), 0);
}

// A stray byte decodes to U+FFFD whatever follows it, so it does not hold back the commits after
// it (it stopped every commit to the utterance's end); a character split over tokens still does.
TEST_F(CommitPolicyTest, AnIllFormedByteDoesNotStopTheCommits) {
  int32_t stray = -1;
  for (int32_t id = 0; id < tokenizer_->id_limit() && stray < 0; ++id) {
    if (tokenizer_->TokenBytes(id) == absl::string_view("\x80")) stray = id;
  }
  ASSERT_GE(stray, 0) << "the byte-level vocabulary has a token for every byte";
  std::vector<int64_t> hypothesis = Ids("hello");
  hypothesis.push_back(stray);
  for (int64_t id : Ids(" the cat sat on the mat today and")) hypothesis.push_back(id);
  CommitPolicy policy(CommitPolicyKind::kLocalAgreement, tokenizer_.get());
  policy.OnHypothesis(hypothesis, 0);
  const int64_t committed = policy.OnHypothesis(hypothesis, 0);
  const std::string text =
      *tokenizer_->Decode(std::vector<int32_t>(hypothesis.begin(), hypothesis.begin() + committed));
  std::printf("\"hello\\x80 the cat sat on the mat today and\" twice: committed \"%s\"\n",
              text.c_str());
  EXPECT_EQ(text, "hello\xEF\xBF\xBD the cat sat on the mat today");
  // The first two of a character's three bytes end no word.
  const std::vector<int64_t> han = Ids("\xE4\xB8\x80");  // U+4E00
  std::vector<int64_t> split = Ids("hello ");
  for (int64_t id : han) split.push_back(id);
  ASSERT_GT(han.size(), 1u) << "the tiny vocabulary has no token for the whole character";
  for (int64_t count = static_cast<int64_t>(split.size() - han.size()) + 1;
       count < static_cast<int64_t>(split.size()); ++count) {
    EXPECT_FALSE(policy.IsBoundary(split, count)) << count;
  }
  EXPECT_TRUE(policy.IsBoundary(split, static_cast<int64_t>(split.size())));
}

// Korean puts spaces between words, so a Hangul syllable ends no word (it used to count as CJK):
// two hypotheses that share a first syllable commit nothing, as two Latin ones would.
TEST_F(CommitPolicyTest, HangulIsWrittenInWordsLikeLatin) {
  for (const auto& [first, second] : {std::make_pair("학교에 갑니다", "학생은 왔다"),
                                      std::make_pair("school is", "scholar was")}) {
    CommitPolicy policy(CommitPolicyKind::kLocalAgreement, tokenizer_.get());
    policy.OnHypothesis(Ids(first), 0);
    const std::vector<int64_t> hypothesis = Ids(second);
    const int64_t committed = policy.OnHypothesis(hypothesis, 0);
    std::printf("\"%s\" then \"%s\": committed %lld tokens\n", first, second,
                static_cast<long long>(committed));
    EXPECT_EQ(committed, 0) << second;
  }
  // Han commits by character: the shared first character is a word.
  CommitPolicy policy(CommitPolicyKind::kLocalAgreement, tokenizer_.get());
  policy.OnHypothesis(Ids("学校"), 0);
  const std::vector<int64_t> hypothesis = Ids("学生");
  const int64_t committed = policy.OnHypothesis(hypothesis, 0);
  EXPECT_EQ(
      *tokenizer_->Decode(std::vector<int32_t>(hypothesis.begin(), hypothesis.begin() + committed)),
      "学");
}

// A commit never splits what Unicode keeps together (UAX #29 grapheme clusters): an emoji and its
// variation selector, a consonant and its combining vowel sign (Myanmar, Lao), a ZWJ sequence.
// Those characters end words (they are symbols or unspaced scripts), so the next character decides.
// Text one byte token per byte, so that every byte offset is a token count.
TEST_F(CommitPolicyTest, ACommitDoesNotSplitAGraphemeCluster) {
  auto byte_ids = [&](const std::string& text) {
    std::vector<int64_t> ids;
    for (const char byte : text) {
      for (int32_t id = 0; id < tokenizer_->id_limit(); ++id) {
        if (tokenizer_->TokenBytes(id) == absl::string_view(&byte, 1)) {
          ids.push_back(id);
          break;
        }
      }
    }
    EXPECT_EQ(ids.size(), text.size());
    return ids;
  };
  CommitPolicy policy(CommitPolicyKind::kLocalAgreement, tokenizer_.get());
  for (const auto& [name, text, at, boundary] :
       std::vector<std::tuple<std::string, std::string, int64_t, bool>>{
           {"heart | VS16", "\xE2\x9D\xA4\xEF\xB8\x8F ok", 3, false},
           {"Myanmar ka | vowel sign i", "\xE1\x80\x80\xE1\x80\xAD", 3, false},
           {"Lao ko | vowel sign i", "\xE0\xBA\x81\xE0\xBA\xB4", 3, false},
           {"man | ZWJ woman", "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9", 4, false},
           {"man ZWJ | woman", "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9", 7, false},
           {"heart VS16 | space", "\xE2\x9D\xA4\xEF\xB8\x8F ok", 6, true},
           {"hao | de (Han)", "\xE5\xA5\xBD\xE7\x9A\x84", 3, true}}) {
    const bool got = policy.IsBoundary(byte_ids(text), at);
    std::printf("%-26s boundary: %s\n", name.c_str(), got ? "yes" : "no");
    EXPECT_EQ(got, boundary) << name;
  }
}

}  // namespace
}  // namespace speechllm::streaming
