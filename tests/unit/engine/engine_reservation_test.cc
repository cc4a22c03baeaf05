// Per-stream KV reservations (SequenceConfig::reserved_audio_tokens / reserved_suffix_tokens,
// Engine::ResizeReservation) on the FakeModelRunner (label unit): a stream reserves its own shape
// instead of the engine's worst case, grows it or is refused when the cache is full, never shrinks
// it, and gives it all back on release, also while a step of it runs; segments beyond the
// reservation are INVALID_ARGUMENT. Encoder positions are reserved the same way where the runner
// counts them, and the automatic encoder budget never refuses a stream the KV blocks admit.
#include <cstdio>
#include <map>
#include <random>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/engine/engine_fixture.h"

namespace speechllm::engine {
namespace {

using ::testing::HasSubstr;

// 32 prefix + 100 audio + 4 suffix + 24 new + 1 = 161 tokens: 11 blocks of 16.
SequenceConfig SmallShape() {
  SequenceConfig config;
  config.max_new_tokens_per_segment = 24;
  config.max_new_tokens_per_update = 8;
  config.reserved_audio_tokens = 100;
  config.reserved_suffix_tokens = 4;
  return config;
}

class EngineReservationTest : public EngineTest {
 protected:
  void SetUp() override {
    FakeModelRunner::Options options;
    options.num_kv_blocks = 70;  // one stream of the engine's worst case (66 blocks)
    MakeEngine(options);
  }
};

TEST_F(EngineReservationTest, AStreamReservesItsOwnShape) {
  EXPECT_EQ(engine_->WorstCaseBlocks(SmallShape()), 11);
  SequenceConfig worst = SmallShape();
  worst.reserved_audio_tokens = worst.reserved_suffix_tokens = 0;  // the engine's bounds
  EXPECT_EQ(engine_->WorstCaseBlocks(worst), (32 + 750 + 16 + 24 + 1 + 15) / 16);
  worst.reserved_audio_tokens = 5000;  // clamped to the bound
  EXPECT_EQ(engine_->WorstCaseBlocks(worst), (32 + 750 + 16 + 24 + 1 + 15) / 16);
  for (int i = 0; i < 6; ++i) Add(SmallShape());
  EXPECT_EQ(engine_->stats().kv_blocks_reserved, 66);
  EXPECT_EQ(engine_->AddSequence(SmallShape()).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(EngineReservationTest, ResizeGrowsOrIsRefusedAndNeverShrinks) {
  const SequenceId a = Add(SmallShape()), b = Add(SmallShape()), c = Add(SmallShape());
  ASSERT_EQ(engine_->stats().kv_blocks_reserved, 33);
  // 30 s and the longest suffix: 52 blocks, 22 - 11 + 52 = 74 > 70.
  const absl::Status refused = engine_->ResizeReservation(a, 750, 16);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.message(), HasSubstr("more blocks"));
  EXPECT_EQ(engine_->stats().kv_blocks_reserved, 33)
      << "a refused growth keeps the old reservation";
  // 400 audio tokens: 461 tokens, 29 blocks.
  ASSERT_TRUE(engine_->ResizeReservation(a, 400, 4).ok());
  EXPECT_EQ(engine_->stats().kv_blocks_reserved, 51);
  ASSERT_TRUE(engine_->ResizeReservation(a, 10, 1).ok());
  EXPECT_EQ(engine_->stats().kv_blocks_reserved, 51) << "reservations never shrink";
  EXPECT_EQ(engine_->ResizeReservation(a, 751, 4).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_->ResizeReservation(a, 100, 17).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_->ResizeReservation(12345, 100, 4).code(), absl::StatusCode::kNotFound);
  engine_->Release(a);
  EXPECT_EQ(engine_->stats().kv_blocks_reserved, 22) << "release gives the grown reservation back";
  engine_->Release(b);
  engine_->Release(c);
  EXPECT_EQ(engine_->stats().kv_blocks_reserved, 0);
}

// A segment that could run past the model's positions (4096 for the fake model) is refused at
// admission: the step that reached them would fail every stream in it.
TEST_F(EngineReservationTest, AShapeBeyondTheModelsPositionsIsRefused) {
  SequenceConfig longest = SmallShape();
  longest.max_new_tokens_per_segment = 4096 - 32 - 100 - 4;  // exactly the model's positions
  ASSERT_EQ(engine_->CheckPositions(longest), absl::OkStatus());
  longest.max_new_tokens_per_segment += 1;
  const absl::StatusOr<SequenceId> refused = engine_->AddSequence(longest);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("may need 4097 positions (32 prefix, 100 audio, 4 prompt after it, 3961 "
                        "new tokens); the model has 4096"));
  EXPECT_EQ(engine_->stats().kv_blocks_reserved, 0);
}

TEST_F(EngineReservationTest, SegmentsBeyondTheReservationAreRefused) {
  const SequenceId id = Add(SmallShape());
  const absl::Status long_suffix = engine_->StartSegment(id, {0, kPrefix, {502, 10, 11, 12, 13}});
  EXPECT_EQ(long_suffix.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(long_suffix.message(), HasSubstr("reservation"));
  ASSERT_TRUE(engine_->StartSegment(id, {0, kPrefix, kSuffix}).ok());
  // 100 audio tokens: chunk positions up to 201, and 403 valid frames at the end.
  EXPECT_EQ(engine_->SubmitChunk(id, Chunk(0, 0, 202)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_->EndSegment(id, End(0, 404, 0)).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(engine_->SubmitChunk(id, Chunk(0, 0, 200)).ok());
  ASSERT_TRUE(engine_->ResizeReservation(id, 101, 4).ok());
  ASSERT_TRUE(engine_->EndSegment(id, End(0, 404, 200)).ok());
  const auto outputs = Collect(1);
  EXPECT_TRUE(outputs.back().status.ok()) << outputs.back().status;
  EXPECT_EQ(outputs.back().token_ids, FakeModelRunner::Greedy(101, 4, 24));
  engine_->Release(id);
  ExpectAllBlocksFree();
  EXPECT_EQ(engine_->StartSegment(id, {1, kPrefix, kSuffix}).code(), absl::StatusCode::kNotFound);
}

// Encoder K/V (ARCHITECTURE.md 5): with a runner that counts encoder positions, each stream also
// reserves 2 positions per reserved audio token against EngineConfig::encoder_kv_cache_bytes,
// is refused like the KV blocks when they do not fit, and gives them back on release.
TEST_F(EngineReservationTest, EncoderPositionsAreReservedAgainstTheirBudget) {
  FakeModelRunner::Options options;
  options.num_kv_blocks = 1000;
  options.encoder_kv_bytes_per_position = 1000;
  EngineConfig config;
  config.encoder_kv_cache_bytes = 502 * 1000 + 999;  // 502 positions: two streams of 201
  MakeEngine(options, config);
  EXPECT_EQ(engine_->EncoderPositions(SmallShape()), 201);  // 2 per audio token and one more
  SequenceConfig no_partials = SmallShape();
  no_partials.partial_updates = false;  // exact finals re-encode: nothing cached
  EXPECT_EQ(engine_->EncoderPositions(no_partials), 0);
  no_partials.final_mode = FinalMode::kFast;  // fast finals use the cached chunks
  EXPECT_EQ(engine_->EncoderPositions(no_partials), 201);
  EXPECT_EQ(engine_->stats().encoder_kv_positions_total, 502);
  EXPECT_EQ(engine_->stats().encoder_kv_bytes_per_position, 1000);
  const SequenceId a = Add(SmallShape()), b = Add(SmallShape());
  EXPECT_EQ(engine_->stats().encoder_kv_positions_reserved, 402);
  const absl::StatusOr<SequenceId> refused = engine_->AddSequence(SmallShape());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("encoder K/V budget exhausted: a stream needs 201 encoder positions, 100 "
                        "of 502 are unreserved"));
  SequenceConfig recognize_shape = SmallShape();  // what Recognize asks for
  recognize_shape.partial_updates = false;
  const SequenceId recognize = Add(recognize_shape);
  EXPECT_EQ(engine_->stats().encoder_kv_positions_reserved, 402) << "a stream that caches none";
  engine_->Release(recognize);
  ASSERT_TRUE(engine_->ResizeReservation(a, 150, 4).ok());  // 100 more: exactly what is left
  EXPECT_EQ(engine_->stats().encoder_kv_positions_reserved, 502);
  const absl::Status grow = engine_->ResizeReservation(b, 101, 4);
  EXPECT_EQ(grow.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(grow.message(), HasSubstr("needs 2 more encoder positions, 0 are unreserved"));
  EXPECT_EQ(engine_->stats().encoder_kv_positions_reserved, 502)
      << "a refused growth keeps the old reservation";
  EXPECT_EQ(engine_->stats().kv_blocks_reserved, engine_->WorstCaseBlocks(SmallShape()) * 2 + 3)
      << "nor does it grow the KV blocks (150 audio tokens: 3 blocks more)";
  engine_->Release(a);
  EXPECT_EQ(engine_->stats().encoder_kv_positions_reserved, 201);
  Add(SmallShape());
  EXPECT_EQ(engine_->stats().encoder_kv_positions_reserved, 402);
}

// The automatic encoder budget (encoder_kv_cache_bytes 0) holds what any mix of streams the KV
// blocks admit reserves: with random shapes and growths, the KV blocks always refuse first.
TEST_F(EngineReservationTest, TheAutomaticEncoderBudgetNeverRefusesFirst) {
  std::mt19937 random(7);
  const auto below = [&](int n) { return static_cast<int64_t>(random() % n); };
  for (int trial = 0; trial < 20; ++trial) {
    FakeModelRunner::Options options;
    options.num_kv_blocks = 200 + below(2000);
    options.encoder_kv_bytes_per_position = 1 + below(5000);
    EngineConfig config;
    config.max_num_sequences = 100000;
    MakeEngine(options, config);
    std::vector<SequenceId> ids;
    absl::Status refusal;
    while (refusal.ok()) {
      SequenceConfig shape;
      // Every other trial takes only the shape with the most encoder positions per block: the
      // longest audio whose blocks are all full (prefix 32, the suffix and the new and end tokens).
      const bool dense = trial % 2 == 0 || below(2) == 0;
      constexpr int64_t kDenseAudio = 750 - (32 + 750 + 3) % 16;
      shape.max_new_tokens_per_segment = dense ? 1 : 1 + below(300);
      shape.max_new_tokens_per_update = 1;
      shape.reserved_audio_tokens = dense ? kDenseAudio : 1 + below(750);
      shape.reserved_suffix_tokens = dense ? 1 : 1 + below(16);
      if (!ids.empty() && below(3) == 0) {
        refusal = engine_->ResizeReservation(ids[below(static_cast<int>(ids.size()))],
                                             shape.reserved_audio_tokens, 0);
        continue;
      }
      const absl::StatusOr<SequenceId> id = engine_->AddSequence(shape);
      if (id.ok()) ids.push_back(*id);
      refusal = id.status();
    }
    const EngineStats stats = engine_->stats();
    EXPECT_EQ(refusal.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_THAT(refusal.message(), HasSubstr("KV cache budget exhausted")) << "trial " << trial;
    EXPECT_LE(stats.encoder_kv_positions_reserved, stats.encoder_kv_positions_total);
    if (trial < 3) {
      std::printf("trial %d: %zu streams, %lld of %lld blocks and %lld of %lld encoder positions\n",
                  trial, ids.size(), static_cast<long long>(stats.kv_blocks_reserved),
                  static_cast<long long>(stats.kv_blocks_total),
                  static_cast<long long>(stats.encoder_kv_positions_reserved),
                  static_cast<long long>(stats.encoder_kv_positions_total));
    }
  }
}

// The automatic budget stays within half of the memory the runner's device had free: an operator
// who sized the KV cache to fill the card gets KV_BUDGET refusals instead of a device out of memory
// mid-step. An explicit budget is the operator's and stays as given.
TEST_F(EngineReservationTest, TheAutomaticEncoderBudgetStaysWithinHalfTheFreeMemory) {
  FakeModelRunner::Options options;
  options.num_kv_blocks = 1000;
  options.encoder_kv_bytes_per_position = 1000;
  MakeEngine(options);
  const int64_t automatic = engine_->stats().encoder_kv_positions_total;
  EXPECT_FALSE(engine_->stats().encoder_kv_capped_by_memory);
  EXPECT_EQ(engine_->stats().free_memory_bytes, -1);
  options.free_memory_bytes = 2 * 1000 * 500 + 1999;  // half holds 500 positions
  MakeEngine(options);
  EngineStats stats = engine_->stats();
  std::printf("automatic budget %lld positions; with %lld bytes free: %lld\n",
              static_cast<long long>(automatic), static_cast<long long>(stats.free_memory_bytes),
              static_cast<long long>(stats.encoder_kv_positions_total));
  EXPECT_GT(automatic, 500);
  EXPECT_EQ(stats.encoder_kv_positions_total, 500);
  EXPECT_TRUE(stats.encoder_kv_capped_by_memory);
  const SequenceId a = Add(SmallShape()), b = Add(SmallShape());  // 201 positions each
  const absl::StatusOr<SequenceId> refused = engine_->AddSequence(SmallShape());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), HasSubstr("encoder K/V budget exhausted"));
  engine_->Release(a);
  engine_->Release(b);
  options.free_memory_bytes = 4 * automatic * 1000;  // plenty: the automatic budget as it was
  MakeEngine(options);
  EXPECT_EQ(engine_->stats().encoder_kv_positions_total, automatic);
  EXPECT_FALSE(engine_->stats().encoder_kv_capped_by_memory);
  options.free_memory_bytes = 1000;  // an explicit budget is not lowered
  EngineConfig config;
  config.encoder_kv_cache_bytes = 900 * 1000;
  MakeEngine(options, config);
  EXPECT_EQ(engine_->stats().encoder_kv_positions_total, 900);
  EXPECT_FALSE(engine_->stats().encoder_kv_capped_by_memory);
}

// Streams cancelled while the step that prefills them runs (a client gone mid-final): their
// reservations come back at once, their outputs never appear, the stream beside them still gets
// its exact final, and every block is free afterwards.
class EngineReleaseTest : public EngineTest {};

TEST_F(EngineReleaseTest, ReleasingSequencesWhoseStepRunsFreesEverything) {
  absl::Notification first_step, released;
  FakeModelRunner::Options options;
  options.first_step_entered = &first_step;
  options.hold_steps_until = &released;
  MakeEngine(options);
  Engine* engine = engine_.get();
  std::vector<SequenceId> ids;
  for (int i = 0; i < 3; ++i) {
    const SequenceId id = Add(SmallShape());
    ids.push_back(id);
    ASSERT_TRUE(engine->StartSegment(id, {0, kPrefix, kSuffix}).ok());
    ASSERT_TRUE(engine->EndSegment(id, End(0, 161, 0)).ok());  // 40 audio tokens
  }
  ASSERT_TRUE(first_step.WaitForNotificationWithTimeout(absl::Seconds(30)));
  const int64_t reserved_before = engine->stats().kv_blocks_reserved;
  engine->Release(ids[0]);
  engine->Release(ids[2]);
  EXPECT_EQ(engine->stats().kv_blocks_reserved, reserved_before - 2 * 11);
  released.Notify();
  std::map<SequenceId, int> finals;
  std::vector<int64_t> kept_final;
  for (int wait = 0; wait < 200 && finals[ids[1]] == 0; ++wait) {
    for (const SequenceOutput& output : engine->PopOutputs(absl::Milliseconds(50))) {
      finals[output.id] += output.is_final;
      if (output.id == ids[1] && output.is_final) kept_final = output.token_ids;
    }
  }
  EXPECT_EQ(finals[ids[0]], 0);
  EXPECT_EQ(finals[ids[2]], 0);
  EXPECT_EQ(kept_final, FakeModelRunner::Greedy(40, 4, 24));
  engine->Release(ids[1]);
  for (int wait = 0; wait < 100 && engine->stats().kv_blocks_used > 0; ++wait)
    absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(engine->stats().kv_blocks_used, 0);
  EXPECT_EQ(engine->stats().kv_blocks_reserved, 0);
}

}  // namespace
}  // namespace speechllm::engine
