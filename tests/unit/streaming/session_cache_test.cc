// Sessions with the embedding cache (ARCHITECTURE.md 8): a clip's exact finals miss, their rows
// are stored, and the same clip again hits every segment without running the encoder, with the
// same text; a fast final looks nothing up.
#include <filesystem>
#include <string>
#include <vector>

#include "streaming/embedding_cache.h"
#include "tests/unit/streaming/embedding_cache_test_util.h"
#include "tests/unit/streaming/session_test_fixture.h"

namespace speechllm::streaming {
namespace {

class SessionCacheTest : public SessionTest {
 protected:
  void SetUp() override {
    SessionTest::SetUp();
    EmbeddingCacheConfig config;
    config.dir = ::testing::TempDir() + "speechllm_session_cache_" + std::to_string(getpid());
    std::filesystem::remove_all(config.dir);
    config.model_id = "fake";
    config.hidden_size = engine_->model_config().text.hidden_size;
    auto cache = EmbeddingCache::Open(config, &observer_);
    ASSERT_TRUE(cache.ok()) << cache.status();
    cache_ = *std::move(cache);
  }
  void TearDown() override {
    dispatcher_.reset();
    cache_.reset();  // before the engine its lookups answer
    engine_.reset();
  }
  // A fresh engine whose runner counts encoder positions; returns it.
  engine::FakeModelRunner* MakeCountingEngine() {
    dispatcher_.reset();
    engine::EngineConfig config;
    config.max_prefix_tokens = 16;
    config.max_suffix_tokens = 16;
    auto runner = std::make_unique<engine::FakeModelRunner>(engine::FakeModelRunner::Options{});
    engine::FakeModelRunner* raw = runner.get();
    engine_ = std::make_unique<engine::Engine>(config, std::move(runner));
    dispatcher_ = std::make_unique<OutputDispatcher>(engine_.get());
    return raw;
  }
  // Clip A through one session without partials (as Recognize runs): the finals' texts and the
  // encoder positions the engine ran.
  std::vector<std::string> Transcribe(engine::FinalMode mode, int64_t* encoder_positions) {
    engine::FakeModelRunner* runner = MakeCountingEngine();
    SessionConfig config = Config(EndpointMode::kContinuous);
    config.interim_results = false;
    config.final_mode = mode;
    RecordingSink sink;
    auto session =
        Session::Create(config, {engine_.get(), &log_mel_, tokenizer_.get(), cache_.get()}, &sink);
    EXPECT_TRUE(session.ok()) << session.status();
    if (!session.ok()) return {};
    dispatcher_->Register(*session);
    Feed(session->get(), ClipA(), 1600);
    EXPECT_TRUE((*session)->FinishInput(absl::Now()).ok());
    EXPECT_TRUE(sink.WaitFinished(absl::Seconds(30)));
    EXPECT_TRUE(sink.status().ok()) << sink.status();
    dispatcher_->Unregister((*session)->sequence_id());
    session->reset();
    // The stores are queued on the cache's workers: wait for them before the next run.
    EXPECT_TRUE(cache_->WaitIdle(absl::Seconds(30)));
    engine_->Stop();
    *encoder_positions = 0;
    for (int64_t p : runner->step_encoder_positions()) *encoder_positions += p;
    std::vector<std::string> texts;
    // The events outlive the loop: Finals points into them (a temporary died before the body).
    const std::vector<SessionEvent> events = sink.events();
    for (const TranscriptEvent* final : Finals(events)) texts.push_back(final->committed_delta);
    return texts;
  }

  CountingObserver observer_;
  std::unique_ptr<EmbeddingCache> cache_;
};

TEST_F(SessionCacheTest, TheSameClipAgainHitsEverySegmentAndSkipsTheEncoder) {
  int64_t first_positions = 0, second_positions = 0;
  const std::vector<std::string> first = Transcribe(engine::FinalMode::kExact, &first_positions);
  const int segments = static_cast<int>(first.size());
  ASSERT_GE(segments, 1);
  EXPECT_EQ(observer_.Count(CacheResult::kMiss), segments);
  EXPECT_EQ(cache_->disk().num_entries(), segments);
  const std::vector<std::string> second = Transcribe(engine::FinalMode::kExact, &second_positions);
  std::printf("%d segments: encoder positions %lld on the first run, %lld on the second\n",
              segments, static_cast<long long>(first_positions),
              static_cast<long long>(second_positions));
  EXPECT_EQ(second, first);
  EXPECT_EQ(observer_.Count(CacheResult::kHit), segments);
  EXPECT_GT(first_positions, 0);
  EXPECT_EQ(second_positions, 0);
}

TEST_F(SessionCacheTest, FastFinalsLookNothingUp) {
  int64_t positions = 0;
  EXPECT_FALSE(Transcribe(engine::FinalMode::kFast, &positions).empty());
  EXPECT_EQ(observer_.Count(CacheResult::kMiss) + observer_.Count(CacheResult::kHit), 0);
  EXPECT_EQ(cache_->disk().num_entries(), 0);
}

}  // namespace
}  // namespace speechllm::streaming
