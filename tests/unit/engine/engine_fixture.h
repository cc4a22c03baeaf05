// The Engine over the FakeModelRunner for the engine tests (label unit): a fixture that builds one
// (or one held in its first step), adds sequences and collects outputs, and chunk / segment-end
// builders with zero frames. Test threads only (the engine runs its own loop thread).
#ifndef SPEECHLLM_TESTS_UNIT_ENGINE_ENGINE_FIXTURE_H_
#define SPEECHLLM_TESTS_UNIT_ENGINE_ENGINE_FIXTURE_H_

#include <memory>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "engine/engine.h"
#include "engine/fake_model_runner.h"
#include "engine/model/audio_lengths.h"
#include "gtest/gtest.h"

namespace speechllm::engine {

inline const std::vector<int64_t> kPrefix = {1, 2, 3, 501};
inline const std::vector<int64_t> kSuffix = {502, 10, 11, 12};
inline constexpr int64_t kMels = 128;

inline std::unique_ptr<EncoderChunk> Chunk(int64_t segment, int64_t first, int64_t end,
                                           std::vector<int64_t> forced = {}) {
  auto chunk = std::make_unique<EncoderChunk>();
  chunk->segment_index = segment;
  chunk->first_position = first;
  chunk->end_position = end;
  chunk->frames.assign((2 * (end - first) + (first == 0 ? 1 : 3)) * kMels, 0.0f);
  chunk->forced_prefix_ids = std::move(forced);
  return chunk;
}

// A segment end for `valid_frames` frames whose tail starts at conv position `tail_first`.
inline std::unique_ptr<SegmentEnd> End(int64_t segment, int64_t valid_frames, int64_t tail_first,
                                       std::vector<int64_t> forced = {}) {
  auto end = std::make_unique<SegmentEnd>();
  end->segment_index = segment;
  end->num_valid_frames = valid_frames;
  end->num_frames = valid_frames + 2;
  end->features.assign(end->num_frames * kMels, 0.0f);
  const int64_t conv = ConvOutputLength(valid_frames);
  end->tail.segment_index = segment;
  end->tail.first_position = tail_first;
  end->tail.end_position = conv;
  if (conv > tail_first)
    end->tail.frames.assign((2 * (conv - tail_first) + (tail_first == 0 ? 1 : 3)) * kMels, 0.0f);
  end->forced_prefix_ids = std::move(forced);
  return end;
}

class EngineTest : public ::testing::Test {
 protected:
  void MakeEngine(FakeModelRunner::Options options = {}, EngineConfig config = {}) {
    config.max_prefix_tokens = 32;
    config.max_suffix_tokens = 16;
    auto runner = std::make_unique<FakeModelRunner>(options);
    runner_ = runner.get();
    engine_ = std::make_unique<Engine>(config, std::move(runner));
  }
  SequenceId Add(SequenceConfig config = {}) {
    auto id = engine_->AddSequence(config);
    EXPECT_TRUE(id.ok()) << id.status();
    return *id;
  }
  // Waits for outputs until `finals` finals (or failures) arrived.
  std::vector<SequenceOutput> Collect(int finals) {
    std::vector<SequenceOutput> all;
    int seen = 0;
    for (int wait = 0; wait < 200 && seen < finals; ++wait) {
      for (SequenceOutput& o : engine_->PopOutputs(absl::Milliseconds(50))) {
        seen += o.is_final;
        all.push_back(std::move(o));
      }
    }
    EXPECT_EQ(seen, finals);
    return all;
  }
  // Builds the engine with its steps held: a blocker sequence's prefix prefill (of
  // `blocker_prefix`) is the first step, and the engine waits in it until `*release` is notified,
  // so everything posted meanwhile reaches the scheduler in one drain of its inbox, however early
  // or late the engine thread runs. Returns the blocker's id.
  SequenceId MakeEngineHeldInFirstStep(absl::Notification* release, EngineConfig config = {},
                                       const std::vector<int64_t>& blocker_prefix = kPrefix,
                                       FakeModelRunner::Options options = {}) {
    // A fresh notification for each engine a test builds.
    absl::Notification* first_step =
        first_steps_entered_.emplace_back(std::make_unique<absl::Notification>()).get();
    options.first_step_entered = first_step;
    options.hold_steps_until = release;
    MakeEngine(options, config);
    const SequenceId blocker = Add();
    EXPECT_TRUE(engine_->StartSegment(blocker, {0, blocker_prefix, kSuffix}).ok());
    EXPECT_TRUE(first_step->WaitForNotificationWithTimeout(absl::Seconds(30)));
    return blocker;
  }
  // Encoder positions of every step that encoded something, in order (read after Stop()).
  std::vector<int64_t> EncodingSteps() const {
    std::vector<int64_t> positions;
    for (int64_t p : runner_->step_encoder_positions()) {
      if (p > 0) positions.push_back(p);
    }
    return positions;
  }
  void ExpectAllBlocksFree() {
    for (int wait = 0; wait < 100 && engine_->stats().kv_blocks_used > 0; ++wait)
      absl::SleepFor(absl::Milliseconds(5));
    EXPECT_EQ(engine_->stats().kv_blocks_used, 0);
  }

  // Outlive the engines: their runners read them every step.
  std::vector<std::unique_ptr<absl::Notification>> first_steps_entered_;
  FakeModelRunner* runner_ = nullptr;
  std::unique_ptr<Engine> engine_;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_TESTS_UNIT_ENGINE_ENGINE_FIXTURE_H_
