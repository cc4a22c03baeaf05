// Segment ends held for the embedding cache (ARCHITECTURE.md 8): an end posted with
// await_embeddings waits for Engine::ProvideEmbeddings; a hit skips the encoder, a miss encodes the
// features and returns the rows in the final, and a sequence's ends still reach the scheduler in
// segment order whatever order the answers come in.
#include <vector>

#include "engine/model/audio_lengths.h"
#include "gmock/gmock.h"
#include "tests/unit/engine/engine_fixture.h"

namespace speechllm::engine {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kValidFrames = 404;  // 101 audio tokens
constexpr int kMaxTokens = 24;

class HeldEndTest : public EngineTest {
 protected:
  SequenceId AddExact() {
    SequenceConfig config;
    config.partial_updates = false;
    config.max_new_tokens_per_segment = kMaxTokens;
    return Add(config);
  }
  std::unique_ptr<SegmentEnd> AwaitingEnd(int64_t segment) {
    auto end = End(segment, kValidFrames, 0);
    end->await_embeddings = true;
    end->return_embeddings = true;
    return end;
  }
  static std::vector<float> Rows(int64_t rows, int64_t hidden, float value) {
    return std::vector<float>(static_cast<size_t>(rows * hidden), value);
  }
  int64_t hidden() const { return engine_->model_config().text.hidden_size; }
};

TEST_F(HeldEndTest, AHitSkipsTheEncoderAndAMissReturnsTheRows) {
  MakeEngine();
  const SequenceId hit = AddExact(), miss = AddExact();
  for (SequenceId id : {hit, miss}) {
    ASSERT_TRUE(engine_->StartSegment(id, {0, kPrefix, kSuffix}).ok());
    ASSERT_TRUE(engine_->EndSegment(id, AwaitingEnd(0)).ok());
  }
  // Unanswered, the ends wait: no final comes.
  EXPECT_TRUE(engine_->PopOutputs(absl::Milliseconds(200)).empty());
  const int64_t rows = AudioTokenCount(kValidFrames);
  ASSERT_TRUE(engine_->ProvideEmbeddings(hit, {0, Rows(rows, hidden(), 0.5f), rows, ""}).ok());
  std::vector<SequenceOutput> outputs = Collect(1);
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_EQ(outputs[0].id, hit);
  EXPECT_EQ(outputs[0].token_ids, FakeModelRunner::Greedy(rows, 4, kMaxTokens));
  EXPECT_EQ(outputs[0].num_audio_embeddings, 0) << "a hit has nothing to store";
  ASSERT_TRUE(engine_->ProvideEmbeddings(miss, {0, {}, 0, "key-0"}).ok());
  outputs = Collect(1);
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_EQ(outputs[0].token_ids, FakeModelRunner::Greedy(rows, 4, kMaxTokens));
  EXPECT_EQ(outputs[0].num_audio_embeddings, rows);
  ASSERT_EQ(outputs[0].audio_embeddings.size(), static_cast<size_t>(rows * hidden()));
  EXPECT_EQ(outputs[0].audio_embeddings[(rows - 1) * hidden()], static_cast<float>(rows - 1));
  EXPECT_EQ(outputs[0].cache_key, "key-0");
  engine_->Release(hit);
  engine_->Release(miss);
  ExpectAllBlocksFree();
  engine_->Stop();
  // Only the miss encoded: its 202 conv positions.
  EXPECT_EQ(EncodingSteps(), std::vector<int64_t>{ConvOutputLength(kValidFrames)});
}

// Answers out of order: segment 1's answer alone releases nothing (segment 0 still waits), and an
// end posted without a lookup queues behind the held ones.
TEST_F(HeldEndTest, EndsReachTheSchedulerInSegmentOrder) {
  MakeEngine();
  const SequenceId id = AddExact();
  for (int64_t segment = 0; segment < 3; ++segment) {
    ASSERT_TRUE(engine_->StartSegment(id, {segment, kPrefix, kSuffix}).ok());
    ASSERT_TRUE(
        engine_->EndSegment(id, segment < 2 ? AwaitingEnd(segment) : End(segment, kValidFrames, 0))
            .ok());
  }
  ASSERT_TRUE(engine_->ProvideEmbeddings(id, {1, {}, 0, ""}).ok());
  EXPECT_TRUE(engine_->PopOutputs(absl::Milliseconds(200)).empty());
  ASSERT_TRUE(engine_->ProvideEmbeddings(id, {0, {}, 0, ""}).ok());
  const std::vector<SequenceOutput> outputs = Collect(3);
  std::vector<int64_t> segments;
  for (const SequenceOutput& o : outputs) {
    EXPECT_TRUE(o.status.ok()) << o.status;
    segments.push_back(o.segment_index);
  }
  EXPECT_EQ(segments, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(outputs[2].num_audio_embeddings, 0) << "segment 2 asked for no rows";
  engine_->Release(id);
  ExpectAllBlocksFree();
}

// Rows that do not match the features' length are a miss (the encoder runs); malformed answers
// and answers for released sequences are refused.
TEST_F(HeldEndTest, RowsOfAnotherLengthAreAMissAndBadAnswersAreRefused) {
  MakeEngine();
  const SequenceId id = AddExact();
  ASSERT_TRUE(engine_->StartSegment(id, {0, kPrefix, kSuffix}).ok());
  ASSERT_TRUE(engine_->EndSegment(id, AwaitingEnd(0)).ok());
  const int64_t rows = AudioTokenCount(kValidFrames) + 1;
  ASSERT_TRUE(engine_->ProvideEmbeddings(id, {0, Rows(rows, hidden(), 1), rows, ""}).ok());
  std::vector<SequenceOutput> outputs = Collect(1);
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_EQ(outputs[0].num_audio_embeddings, rows - 1) << "encoded from the features";
  // A malformed answer is refused, and its end still goes on as a miss: nothing holds it.
  ASSERT_TRUE(engine_->StartSegment(id, {1, kPrefix, kSuffix}).ok());
  ASSERT_TRUE(engine_->EndSegment(id, AwaitingEnd(1)).ok());
  const absl::Status malformed = engine_->ProvideEmbeddings(id, {1, Rows(2, hidden(), 1), 3, ""});
  EXPECT_EQ(malformed.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(malformed.message(), HasSubstr("3 rows (at most"));
  ASSERT_TRUE(engine_->StartSegment(id, {2, kPrefix, kSuffix}).ok());
  ASSERT_TRUE(engine_->EndSegment(id, AwaitingEnd(2)).ok());
  const int64_t huge = int64_t{1} << 62;  // a row count whose product with the width overflows
  EXPECT_EQ(engine_->ProvideEmbeddings(id, {2, {}, huge, ""}).code(),
            absl::StatusCode::kInvalidArgument);
  outputs = Collect(2);
  ASSERT_EQ(outputs.size(), 2u);
  for (const SequenceOutput& output : outputs) {
    EXPECT_TRUE(output.is_final);
    EXPECT_EQ(output.num_audio_embeddings, rows - 1) << "encoded from the features";
  }
  engine_->Release(id);
  EXPECT_EQ(engine_->ProvideEmbeddings(id, {0, {}, 0, ""}).code(), absl::StatusCode::kNotFound);
  ExpectAllBlocksFree();
  engine_->Stop();
  EXPECT_EQ(EncodingSteps(), std::vector<int64_t>(3, ConvOutputLength(kValidFrames)));
}

// A sequence released while its end waits: nothing is left behind and the engine goes on.
TEST_F(HeldEndTest, ReleasingASequenceDropsItsHeldEnds) {
  MakeEngine();
  const SequenceId gone = AddExact(), other = AddExact();
  ASSERT_TRUE(engine_->StartSegment(gone, {0, kPrefix, kSuffix}).ok());
  ASSERT_TRUE(engine_->EndSegment(gone, AwaitingEnd(0)).ok());
  engine_->Release(gone);
  ASSERT_TRUE(engine_->StartSegment(other, {0, kPrefix, kSuffix}).ok());
  ASSERT_TRUE(engine_->EndSegment(other, End(0, kValidFrames, 0)).ok());
  const std::vector<SequenceOutput> outputs = Collect(1);
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_EQ(outputs[0].id, other);
  engine_->Release(other);
  ExpectAllBlocksFree();
}

}  // namespace
}  // namespace speechllm::engine
