// The Engine facade, scheduler and KV bookkeeping on the FakeModelRunner (label unit): partials and
// finals equal the toy model's greedy output, drafts, forced (committed) prefixes, interruption,
// admission refusal, failures, segment order, precomputed audio embeddings, and every KV block free
// at the end.
#include "engine/engine.h"

#include <cstdio>
#include <map>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "engine/fake_model_runner.h"
#include "engine/model/audio_lengths.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/engine/engine_fixture.h"

namespace speechllm::engine {
namespace {

using ::testing::HasSubstr;

TEST_F(EngineTest, PartialsAndExactFinalFollowTheModel) {
  MakeEngine();
  const SequenceId id = Add();
  ASSERT_TRUE(engine_->StartSegment(id, {0, kPrefix, kSuffix}).ok());
  ASSERT_TRUE(engine_->SubmitChunk(id, Chunk(0, 0, 50)).ok());  // 25 audio tokens
  std::vector<SequenceOutput> partial;
  for (int wait = 0; wait < 100 && partial.empty(); ++wait)
    partial = engine_->PopOutputs(absl::Milliseconds(50));
  ASSERT_EQ(partial.size(), 1u);
  EXPECT_FALSE(partial[0].is_final);
  EXPECT_EQ(partial[0].token_ids, FakeModelRunner::Greedy(25, 4, 32));

  ASSERT_TRUE(engine_->SubmitChunk(id, Chunk(0, 50, 100)).ok());  // 50 audio tokens
  partial.clear();
  for (int wait = 0; wait < 100 && partial.empty(); ++wait)
    partial = engine_->PopOutputs(absl::Milliseconds(50));
  ASSERT_EQ(partial.size(), 1u);
  EXPECT_EQ(partial[0].token_ids, FakeModelRunner::Greedy(50, 4, 32));

  ASSERT_TRUE(engine_->EndSegment(id, End(0, 337, 100)).ok());  // 84 tokens when re-encoded
  const auto outputs = Collect(1);
  ASSERT_FALSE(outputs.empty());
  EXPECT_TRUE(outputs.back().is_final);
  EXPECT_EQ(outputs.back().token_ids, FakeModelRunner::Greedy(84, 4, 256));
  // Each update verified the previous hypothesis as a draft: the tokens it agreed with were kept.
  const auto common = [](const std::vector<int64_t>& draft, const std::vector<int64_t>& choices) {
    size_t n = 0;
    while (n < draft.size() && n < choices.size() && draft[n] == choices[n]) ++n;
    return static_cast<int64_t>(n);
  };
  const std::vector<int64_t> first = FakeModelRunner::Greedy(25, 4, 32);
  const std::vector<int64_t> second = FakeModelRunner::Greedy(50, 4, 32);
  const EngineStats stats = engine_->stats();
  EXPECT_EQ(stats.draft_tokens, static_cast<int64_t>(first.size() + second.size()));
  EXPECT_EQ(stats.draft_accepted_tokens,
            common(first, second) + common(second, FakeModelRunner::Greedy(84, 4, 256)));
  EXPECT_LT(stats.draft_accepted_tokens, stats.draft_tokens);
  engine_->Release(id);
  ExpectAllBlocksFree();
}

TEST_F(EngineTest, FastFinalUsesTheIncrementalAudio) {
  MakeEngine();
  SequenceConfig config;
  config.final_mode = FinalMode::kFast;
  const SequenceId id = Add(config);
  ASSERT_TRUE(engine_->StartSegment(id, {0, kPrefix, kSuffix}).ok());
  ASSERT_TRUE(engine_->SubmitChunk(id, Chunk(0, 0, 50)).ok());
  Collect(0);
  ASSERT_TRUE(engine_->EndSegment(id, End(0, 337, 50)).ok());  // tail [50, 169) -> 59 more tokens
  const auto outputs = Collect(1);
  EXPECT_EQ(outputs.back().token_ids, FakeModelRunner::Greedy(25 + 59, 4, 256));
  engine_->Release(id);
  ExpectAllBlocksFree();
}

TEST_F(EngineTest, CommittedPrefixIsForcedAndConflictsCounted) {
  MakeEngine();
  const SequenceId id = Add();
  ASSERT_TRUE(engine_->StartSegment(id, {0, kPrefix, kSuffix}).ok());
  // The model would say 54 55 56 ...; the session committed 54 99.
  ASSERT_TRUE(engine_->SubmitChunk(id, Chunk(0, 0, 50, {54, 99})).ok());
  std::vector<SequenceOutput> partial;
  for (int wait = 0; wait < 100 && partial.empty(); ++wait)
    partial = engine_->PopOutputs(absl::Milliseconds(50));
  ASSERT_EQ(partial.size(), 1u);
  ASSERT_GE(partial[0].token_ids.size(), 2u);
  EXPECT_EQ(partial[0].token_ids[1], 99);
  EXPECT_EQ(partial[0].commit_conflicts, 1);
  ASSERT_TRUE(engine_->EndSegment(id, End(0, 200, 50, {54, 99})).ok());
  const auto outputs = Collect(1);
  ASSERT_FALSE(outputs.empty());
  const SequenceOutput& final_output = outputs.back();
  ASSERT_GE(final_output.token_ids.size(), 2u);
  EXPECT_EQ(final_output.token_ids[0], 54);
  EXPECT_EQ(final_output.token_ids[1], 99);
  EXPECT_EQ(final_output.commit_conflicts, 1);
  engine_->Release(id);
}

TEST_F(EngineTest, UpdatesAreBoundedByMaxNewTokensPerUpdate) {
  MakeEngine();
  SequenceConfig config;
  config.max_new_tokens_per_update = 2;
  const SequenceId id = Add(config);
  ASSERT_TRUE(engine_->StartSegment(id, {0, kPrefix, kSuffix}).ok());
  ASSERT_TRUE(engine_->SubmitChunk(id, Chunk(0, 0, 100)).ok());
  std::vector<SequenceOutput> partial;
  for (int wait = 0; wait < 100 && partial.empty(); ++wait)
    partial = engine_->PopOutputs(absl::Milliseconds(50));
  ASSERT_EQ(partial.size(), 1u);
  EXPECT_EQ(partial[0].token_ids.size(), 2u);
  // The next update takes them as a draft and adds two more.
  ASSERT_TRUE(engine_->SubmitChunk(id, Chunk(0, 100, 102)).ok());
  partial.clear();
  for (int wait = 0; wait < 100 && partial.empty(); ++wait)
    partial = engine_->PopOutputs(absl::Milliseconds(50));
  ASSERT_EQ(partial.size(), 1u);
  EXPECT_EQ(partial[0].token_ids.size(), 4u);
  engine_->Release(id);
  ExpectAllBlocksFree();
}

TEST_F(EngineTest, LaterSegmentsWaitForTheirStart) {
  MakeEngine();
  const SequenceId id = Add();
  ASSERT_TRUE(engine_->StartSegment(id, {0, kPrefix, kSuffix}).ok());
  ASSERT_TRUE(engine_->EndSegment(id, End(0, 100, 0)).ok());
  // Segment 1 arrives before it is started: it waits.
  ASSERT_TRUE(engine_->SubmitChunk(id, Chunk(1, 0, 50)).ok());
  ASSERT_TRUE(engine_->EndSegment(id, End(1, 200, 50)).ok());
  auto first = Collect(1);
  EXPECT_EQ(first.back().segment_index, 0);
  EXPECT_EQ(first.back().token_ids, FakeModelRunner::Greedy(25, 4, 256));
  EXPECT_TRUE(engine_->PopOutputs(absl::Milliseconds(100)).empty());
  ASSERT_TRUE(engine_->StartSegment(id, {1, kPrefix, kSuffix}).ok());
  auto second = Collect(1);
  EXPECT_EQ(second.back().segment_index, 1);
  EXPECT_EQ(second.back().token_ids, FakeModelRunner::Greedy(50, 4, 256));
  engine_->Release(id);
  ExpectAllBlocksFree();
}

TEST_F(EngineTest, EmptySegmentGivesAnEmptyFinal) {
  MakeEngine();
  const SequenceId id = Add();
  ASSERT_TRUE(engine_->StartSegment(id, {0, kPrefix, kSuffix}).ok());
  ASSERT_TRUE(engine_->EndSegment(id, End(0, 2, 0)).ok());  // 2 frames: no audio token
  const auto outputs = Collect(1);
  EXPECT_TRUE(outputs.back().status.ok());
  EXPECT_TRUE(outputs.back().token_ids.empty());
  engine_->Release(id);
}

// A segment whose text nobody will read (the session's silence guard) ends with an empty final at
// once: no encoder pass, no decoded token.
TEST_F(EngineTest, ASegmentEndWithoutTextWantedDecodesNothing) {
  MakeEngine();
  const SequenceId id = Add();
  ASSERT_TRUE(engine_->StartSegment(id, {0, kPrefix, kSuffix}).ok());
  auto end = End(0, 337, 0);
  end->text_wanted = false;
  ASSERT_TRUE(engine_->EndSegment(id, std::move(end)).ok());
  const auto outputs = Collect(1);
  EXPECT_TRUE(outputs.back().status.ok());
  EXPECT_TRUE(outputs.back().token_ids.empty());
  EXPECT_EQ(engine_->stats().tokens_generated, 0);
  engine_->Release(id);
  ExpectAllBlocksFree();
  engine_->Stop();
  for (int64_t positions : runner_->step_encoder_positions()) EXPECT_EQ(positions, 0);
}

// Stop() from several threads at once (a drain and a signal handler, say): one joins the loop,
// the others wait for it, and every caller returns with the loop gone. Two threads
// joining one std::thread at once was undefined behaviour before.
TEST_F(EngineTest, StopFromSeveralThreadsAtOnceJoinsOnce) {
  for (int round = 0; round < 20; ++round) {
    FakeModelRunner::Options options;
    options.step_delay = absl::Milliseconds(1);
    MakeEngine(options);
    Add();
    absl::Notification go;
    std::vector<std::thread> stoppers;
    for (int t = 0; t < 4; ++t) {
      stoppers.emplace_back([&] {
        go.WaitForNotification();
        engine_->Stop();
      });
    }
    go.Notify();
    for (std::thread& t : stoppers) t.join();
    engine_.reset();  // ~Engine stops once more
  }
}

TEST_F(EngineTest, AdmissionRefusesBeyondTheLimits) {
  EngineConfig config;
  config.max_num_sequences = 2;
  MakeEngine({}, config);
  Add();
  const SequenceId second = Add();
  auto third = engine_->AddSequence({});
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(third.status().message(), HasSubstr("2 concurrent"));
  engine_->Release(second);
  EXPECT_TRUE(engine_->AddSequence({}).ok());
  EXPECT_EQ(engine_->stats().admission_rejections, 1);

  // KV budget: 70 blocks of 16 tokens hold one worst-case segment (32 + 750 + 16 + 256 + 1 tokens).
  FakeModelRunner::Options small;
  small.num_kv_blocks = 70;
  MakeEngine(small);
  Add();
  auto refused = engine_->AddSequence({});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), HasSubstr("KV cache budget"));
}

TEST_F(EngineTest, RunnerFailureFailsTheSequenceOnly) {
  FakeModelRunner::Options options;
  options.fail_at_step = 0;
  MakeEngine(options);
  const SequenceId id = Add();
  ASSERT_TRUE(engine_->StartSegment(id, {0, kPrefix, kSuffix}).ok());
  const auto outputs = Collect(1);
  EXPECT_EQ(outputs.back().status.code(), absl::StatusCode::kInternal);
  engine_->Release(id);
  // The engine keeps serving other sequences.
  const SequenceId other = Add();
  ASSERT_TRUE(engine_->StartSegment(other, {0, kPrefix, kSuffix}).ok());
  ASSERT_TRUE(engine_->EndSegment(other, End(0, 100, 0)).ok());
  EXPECT_TRUE(Collect(1).back().status.ok());
  engine_->Release(other);
  ExpectAllBlocksFree();
}

// A failed sequence gives back the whole blocks of its shared prompt prefix at once (as a finished
// segment does), not only when it is released or another segment ends.
TEST_F(EngineTest, AFailedSequenceHoldsNoSharedPrefixBlocks) {
  FakeModelRunner::Options options;
  options.fail_at_step = 1;  // after the prefix's prefill, which registers its two whole blocks
  MakeEngine(options);
  std::vector<int64_t> prefix;
  for (int64_t id = 1; id < 32; ++id) prefix.push_back(id);
  prefix.push_back(kPrefix.back());  // 32 tokens: two blocks of 16
  const SequenceId id = Add();
  ASSERT_TRUE(engine_->StartSegment(id, {0, prefix, kSuffix}).ok());
  ASSERT_TRUE(engine_->EndSegment(id, End(0, 100, 0)).ok());
  const auto outputs = Collect(1);
  ASSERT_EQ(outputs.back().status.code(), absl::StatusCode::kInternal);
  for (int wait = 0; wait < 100 && engine_->stats().kv_blocks_used > 0; ++wait)
    absl::SleepFor(absl::Milliseconds(5));
  std::printf("KV blocks in use after the failure, before Release: %lld\n",
              static_cast<long long>(engine_->stats().kv_blocks_used));
  EXPECT_EQ(engine_->stats().kv_blocks_used, 0);
  engine_->Release(id);
  ExpectAllBlocksFree();
}

// Chunks that do not continue their segment's encoder positions, and forced ids outside the
// vocabulary, are refused at submission: in a step they failed every sequence batched with them.
TEST_F(EngineTest, AChunkThatDoesNotContinueItsSegmentIsRefusedAlone) {
  MakeEngine();
  const SequenceId a = Add(), b = Add();
  for (SequenceId id : {a, b}) ASSERT_TRUE(engine_->StartSegment(id, {0, kPrefix, kSuffix}).ok());
  ASSERT_TRUE(engine_->SubmitChunk(a, Chunk(0, 0, 50)).ok());
  const absl::Status gap = engine_->SubmitChunk(a, Chunk(0, 100, 150));
  const absl::Status overlap = engine_->SubmitChunk(a, Chunk(0, 40, 90));
  const absl::Status first_not_at_zero = engine_->SubmitChunk(b, Chunk(0, 50, 100));
  const absl::Status tail_gap = engine_->EndSegment(a, End(0, 400, 60));
  const absl::Status forced = engine_->SubmitChunk(a, Chunk(0, 50, 100, {1 << 30}));
  std::printf("gap: %s\noverlap: %s\nfirst chunk at 50: %s\ntail gap: %s\nforced id: %s\n",
              gap.ToString().c_str(), overlap.ToString().c_str(),
              first_not_at_zero.ToString().c_str(), tail_gap.ToString().c_str(),
              forced.ToString().c_str());
  for (const absl::Status& refused : {gap, overlap, first_not_at_zero, tail_gap, forced}) {
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << refused;
  }
  // The streams go on: each continues where it stands, and both finals come back OK.
  ASSERT_TRUE(engine_->SubmitChunk(a, Chunk(0, 50, 100)).ok());
  ASSERT_TRUE(engine_->SubmitChunk(b, Chunk(0, 0, 50)).ok());
  ASSERT_TRUE(engine_->EndSegment(a, End(0, 400, 100)).ok());
  ASSERT_TRUE(engine_->EndSegment(b, End(0, 200, 50)).ok());
  int finals = 0;
  for (const SequenceOutput& output : Collect(2)) {
    EXPECT_TRUE(output.status.ok()) << output.status;
    finals += output.is_final;
  }
  EXPECT_EQ(finals, 2);
  for (SequenceId id : {a, b}) engine_->Release(id);
  ExpectAllBlocksFree();
}

TEST_F(EngineTest, ManySequencesAreBatchedIntoOneStep) {
  absl::Notification queued;  // steps wait until all eight segments are queued
  FakeModelRunner::Options options;
  options.hold_steps_until = &queued;
  MakeEngine(options);
  std::vector<SequenceId> ids;
  for (int i = 0; i < 8; ++i) {
    ids.push_back(Add());
    EXPECT_TRUE(engine_->StartSegment(ids.back(), {0, kPrefix, kSuffix}).ok());
    EXPECT_TRUE(engine_->EndSegment(ids.back(), End(0, 100 + 40 * i, 0)).ok());
  }
  queued.Notify();
  const auto outputs = Collect(8);
  std::map<SequenceId, std::vector<int64_t>> finals;
  for (const auto& o : outputs) finals[o.id] = o.token_ids;
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(finals[ids[i]], FakeModelRunner::Greedy(AudioTokenCount(100 + 40 * i), 4, 256));
  for (SequenceId id : ids) engine_->Release(id);
  engine_->Stop();
  int64_t largest = 0;
  for (int64_t size : runner_->step_batch_sizes()) largest = std::max(largest, size);
  EXPECT_GT(largest, 1) << "steps never batched more than one sequence";
}

// Recognize's AudioEmbeddings input: the rows replace the encoder in either final mode.
std::unique_ptr<SegmentEnd> EmbeddingsEnd(int64_t segment, int64_t rows, int64_t hidden) {
  auto end = std::make_unique<SegmentEnd>();
  end->segment_index = segment;
  end->num_audio_embeddings = rows;
  end->audio_embeddings.assign(rows * hidden, 0.5f);
  return end;
}

TEST_F(EngineTest, PrecomputedEmbeddingsReplaceTheEncoder) {
  MakeEngine();
  const int64_t hidden = engine_->model_config().text.hidden_size;
  for (FinalMode mode : {FinalMode::kExact, FinalMode::kFast}) {
    SequenceConfig config;
    config.final_mode = mode;
    config.partial_updates = false;
    const SequenceId id = Add(config);
    ASSERT_TRUE(engine_->StartSegment(id, {0, kPrefix, kSuffix}).ok());
    ASSERT_TRUE(engine_->EndSegment(id, EmbeddingsEnd(0, 30, hidden)).ok());
    const auto outputs = Collect(1);
    ASSERT_FALSE(outputs.empty());
    EXPECT_TRUE(outputs.back().status.ok()) << outputs.back().status;
    EXPECT_EQ(outputs.back().token_ids, FakeModelRunner::Greedy(30, 4, 256));
    engine_->Release(id);
  }
  ExpectAllBlocksFree();
}

TEST_F(EngineTest, MalformedEmbeddingsAreRejected) {
  MakeEngine();
  const int64_t hidden = engine_->model_config().text.hidden_size;
  const SequenceId id = Add();
  ASSERT_TRUE(engine_->StartSegment(id, {0, kPrefix, kSuffix}).ok());
  auto short_data = EmbeddingsEnd(0, 30, hidden);
  short_data->audio_embeddings.pop_back();
  EXPECT_EQ(engine_->EndSegment(id, std::move(short_data)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_->EndSegment(id, EmbeddingsEnd(0, 751, hidden)).code(),
            absl::StatusCode::kInvalidArgument);  // above max_audio_tokens_per_segment
  auto with_features = EmbeddingsEnd(0, 30, hidden);
  with_features->num_frames = 1;
  with_features->features.assign(kMels, 0.0f);
  EXPECT_EQ(engine_->EndSegment(id, std::move(with_features)).code(),
            absl::StatusCode::kInvalidArgument);
  // The sequence is unharmed: a well-formed end still gives its final.
  ASSERT_TRUE(engine_->EndSegment(id, EmbeddingsEnd(0, 12, hidden)).ok());
  const auto outputs = Collect(1);
  ASSERT_FALSE(outputs.empty());
  EXPECT_EQ(outputs.back().token_ids, FakeModelRunner::Greedy(12, 4, 256));
  engine_->Release(id);
  ExpectAllBlocksFree();
}

TEST_F(EngineTest, BadInputIsRejected) {
  MakeEngine();
  const SequenceId id = Add();
  EXPECT_EQ(engine_->StartSegment(id, {0, kPrefix, {}}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_->StartSegment(id, {0, std::vector<int64_t>(33, 1), kSuffix}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_->StartSegment(id, {0, {1, 100000}, kSuffix}).code(),
            absl::StatusCode::kInvalidArgument);
  auto chunk = Chunk(0, 0, 50);
  chunk->frames.pop_back();
  EXPECT_EQ(engine_->SubmitChunk(id, std::move(chunk)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_->SubmitChunk(id, Chunk(0, 1, 3)).code(), absl::StatusCode::kInvalidArgument);
  // A negative frame count passed the checks and aborted the engine's thread (std::length_error).
  auto negative = End(0, 0, 0);
  negative->num_valid_frames = -3;
  EXPECT_EQ(engine_->EndSegment(id, std::move(negative)).code(),
            absl::StatusCode::kInvalidArgument);
  // A fast final's tail is a chunk: one starting at an odd position failed its whole step.
  auto odd_tail = End(0, 101, 0);
  odd_tail->tail.first_position = 3;
  EXPECT_EQ(engine_->EndSegment(id, std::move(odd_tail)).code(),
            absl::StatusCode::kInvalidArgument);
  engine_->Stop();
  EXPECT_EQ(engine_->AddSequence({}).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace speechllm::engine
