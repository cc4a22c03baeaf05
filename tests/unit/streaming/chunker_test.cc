// Chunker: chunk position and frame ranges (two frames of left context, one of lookahead), the
// 40 ms rule, readiness, the tail after end of input, and the 1500-position limit.
#include "streaming/chunker.h"

#include <optional>
#include <ostream>
#include <vector>

#include "engine/model/audio_lengths.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace speechllm::streaming {

void PrintTo(const ChunkSpec& spec, std::ostream* os) { *os << spec.ToString(); }

namespace {

using ::testing::HasSubstr;

ChunkSpec Spec(int64_t first_position, int64_t end_position, int64_t first_frame,
               int64_t end_frame_exclusive) {
  return ChunkSpec{first_position, end_position, first_frame, end_frame_exclusive};
}

// Every chunk a segment of `valid_frames` frames yields once all its final frames are ready.
std::vector<ChunkSpec> Drain(Chunker& chunker, int64_t valid_frames) {
  const int64_t ready = std::min<int64_t>(valid_frames + 2, 3000);
  std::vector<ChunkSpec> chunks;
  while (auto spec = chunker.Next(ready, /*input_finished=*/true, valid_frames)) {
    chunks.push_back(*spec);
  }
  return chunks;
}

TEST(ChunkerTest, ChunkMsRule) {
  for (int ms : {40, 80, 1000, 2000, 30000}) EXPECT_TRUE(Chunker::ValidateChunkMs(ms).ok()) << ms;
  for (int ms : {0, -40, 20, 50, 1010, 30040, 60000}) {
    const absl::Status status = Chunker::ValidateChunkMs(ms);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << ms;
    EXPECT_THAT(std::string(status.message()), HasSubstr("chunk_ms must be a multiple of 40"));
  }
  EXPECT_EQ(Chunker::ChunkMsToFrames(1000), 100);
  EXPECT_EQ(Chunker::ChunkMsToFrames(40), 4);
}

TEST(ChunkerTest, FirstChunkHasNoLeftContextAndWaitsForLookahead) {
  Chunker chunker(100);
  // Chunk 0 needs frames 0 .. 100: not ready with 100 frames, ready with 101.
  EXPECT_EQ(chunker.Next(100, false, 0), std::nullopt);
  EXPECT_EQ(chunker.Next(101, false, 0), Spec(0, 50, 0, 101));
  // Chunk 1 needs frames 98 .. 200.
  EXPECT_EQ(chunker.Next(200, false, 0), std::nullopt);
  EXPECT_EQ(chunker.Next(201, false, 0), Spec(50, 100, 98, 201));
  EXPECT_EQ(chunker.next_position(), 100);
  EXPECT_FALSE(chunker.done());
}

TEST(ChunkerTest, SeveralReadyChunksComeOutOneByOne) {
  Chunker chunker(40);
  EXPECT_EQ(chunker.Next(130, false, 0), Spec(0, 20, 0, 41));
  EXPECT_EQ(chunker.Next(130, false, 0), Spec(20, 40, 38, 81));
  EXPECT_EQ(chunker.Next(130, false, 0), Spec(40, 60, 78, 121));
  EXPECT_EQ(chunker.Next(130, false, 0), std::nullopt);
}

TEST(ChunkerTest, OddTailAfterEndOfInput) {
  // 337 valid frames (clip_a): ConvOutputLength = 169 positions; frames 0 .. 338 exist.
  Chunker chunker(100);
  EXPECT_EQ(engine::ConvOutputLength(337), 169);
  const std::vector<ChunkSpec> chunks = Drain(chunker, 337);
  const std::vector<ChunkSpec> expected = {Spec(0, 50, 0, 101), Spec(50, 100, 98, 201),
                                           Spec(100, 150, 198, 301), Spec(150, 169, 298, 339)};
  EXPECT_EQ(chunks, expected);
  EXPECT_TRUE(chunker.done());
  EXPECT_EQ(chunker.Next(339, true, 337), std::nullopt);
}

TEST(ChunkerTest, TailWaitsForItsFrames) {
  Chunker chunker(100);
  ASSERT_TRUE(chunker.Next(101, false, 0).has_value());
  // 150 valid frames -> 75 positions; the tail needs frames 98 .. 150.
  EXPECT_EQ(chunker.Next(150, true, 150), std::nullopt);
  EXPECT_FALSE(chunker.done());
  EXPECT_EQ(chunker.Next(152, true, 150), Spec(50, 75, 98, 151));
  EXPECT_TRUE(chunker.done());
}

TEST(ChunkerTest, ExactlyAlignedSegmentHasNoEmptyTail) {
  for (int64_t chunk_frames : {4, 40, 100}) {
    Chunker chunker(chunk_frames);
    // 3 chunks' worth of frames: the last full chunk reads frame 3F, one past the valid frames.
    const int64_t valid = 3 * chunk_frames;
    const std::vector<ChunkSpec> chunks = Drain(chunker, valid);
    ASSERT_EQ(chunks.size(), 3u) << chunk_frames;
    EXPECT_EQ(chunks.back().end_position, engine::ConvOutputLength(valid));
    EXPECT_EQ(chunks.back().end_frame_exclusive, valid + 1);
    EXPECT_TRUE(chunker.done());
  }
}

TEST(ChunkerTest, TailOfOneFrameAndShortSegments) {
  Chunker chunker(100);
  // 101 valid frames: chunk 0 covers 50 positions, one more position (frames 98 .. 102) remains.
  EXPECT_EQ(Drain(chunker, 101),
            (std::vector<ChunkSpec>{Spec(0, 50, 0, 101), Spec(50, 51, 98, 103)}));
  chunker.Reset();
  EXPECT_EQ(Drain(chunker, 1), (std::vector<ChunkSpec>{Spec(0, 1, 0, 3)}));
  chunker.Reset();
  EXPECT_EQ(Drain(chunker, 0), std::vector<ChunkSpec>{});
  EXPECT_TRUE(chunker.done());
}

TEST(ChunkerTest, PositionsCoverTheSegmentExactlyOnce) {
  for (int64_t chunk_frames : {4, 12, 16, 100, 200}) {
    for (int64_t valid : {1, 2, 3, 4, 5, 99, 100, 101, 102, 777, 2999, 3000}) {
      Chunker chunker(chunk_frames);
      int64_t next = 0;
      for (const ChunkSpec& spec : Drain(chunker, valid)) {
        ASSERT_EQ(spec.first_position, next) << chunk_frames << " " << valid;
        ASSERT_GT(spec.end_position, spec.first_position);
        ASSERT_EQ(spec.first_frame, std::max<int64_t>(0, 2 * spec.first_position - 2));
        ASSERT_EQ(spec.end_frame_exclusive, std::min<int64_t>(2 * spec.end_position + 1, 3000));
        ASSERT_LE(spec.end_frame_exclusive, std::min<int64_t>(valid + 2, 3000));
        next = spec.end_position;
      }
      EXPECT_EQ(next, engine::ConvOutputLength(valid)) << chunk_frames << " " << valid;
    }
  }
}

TEST(ChunkerTest, NeverPastThe1500Positions) {
  // 16-frame chunks (8 positions) do not divide 1500: the last one is cut at position 1500, and it
  // needs frames only up to 2999 (frame 3000 is the conv's zero padding).
  Chunker chunker(16);
  std::optional<ChunkSpec> last;
  while (auto spec = chunker.Next(2999, false, 0)) last = spec;
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->end_position, 1496);
  EXPECT_EQ(chunker.Next(3000, true, 3000), Spec(1496, 1500, 2990, 3000));
  EXPECT_EQ(chunker.Next(3000, true, 3000), std::nullopt);
  EXPECT_TRUE(chunker.done());

  Chunker whole(3000);
  EXPECT_EQ(whole.Next(2999, false, 0), std::nullopt);
  EXPECT_EQ(whole.Next(3000, true, 3000), Spec(0, 1500, 0, 3000));
  EXPECT_EQ(whole.Next(3000, true, 3000), std::nullopt);
}

}  // namespace
}  // namespace speechllm::streaming
