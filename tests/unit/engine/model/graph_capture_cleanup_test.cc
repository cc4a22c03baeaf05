// CaptureWithCleanup and PoolAwareGraph over models of libtorch's CUDAGraph and caching allocator
// (the real ones need a device). The models follow libtorch's sources: the older capture_end (2.6)
// leaves the allocator's pool mode before cudaStreamEndCapture and reset() releases the pool when
// has_graph_ || has_graph_exec_; the newer ends the CUDA capture first and releases when
// capture_ended_; the newest also ends a pool mode left on and releases whenever capture_begin
// took the pool (allocated_pool_). Each failure point must leave no capture underway, the pool's
// use count at zero once every graph is gone, and nothing undone twice.
#include "engine/model/graph_capture_cleanup.h"

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace speechllm::engine {
namespace {

using Pool = std::pair<unsigned long long, unsigned long long>;

struct Allocator {  // CUDACachingAllocator's pool bookkeeping
  std::vector<Pool> underway;
  std::map<Pool, int> use_count;
  std::vector<std::string> destructor_errors;  // would have ended the process (noexcept)
  void BeginAllocateToPool(Pool pool) {
    ++use_count[pool];
    underway.push_back(pool);
  }
  void EndAllocateToPool(Pool pool) {  // TORCH_CHECK(false, "not currently recording") if absent
    for (auto it = underway.begin(); it != underway.end(); ++it) {
      if (*it == pool) {
        underway.erase(it);
        return;
      }
    }
    throw std::runtime_error("endAllocatePool: not currently recording to mempool_id");
  }
  void ReleasePool(Pool pool) {
    if (--use_count[pool] < 0) throw std::logic_error("use_count < 0");  // TORCH_INTERNAL_ASSERT
  }
};

enum class FailAt { kNothing, kBeginChecks, kBeginCapture, kRecord, kEndCapture, kInstantiate };

// The shared parts of both CUDAGraph versions; capture_end differs.
class GraphModel {
 public:
  GraphModel(Allocator* allocator, FailAt fail_at) : allocator_(allocator), fail_at_(fail_at) {}
  void capture_begin(Pool pool) {
    if (fail_at_ == FailAt::kBeginChecks) throw std::runtime_error("not on a side stream");
    pool_ = pool;
    allocator_->BeginAllocateToPool(pool);
    if (fail_at_ == FailAt::kBeginCapture) throw std::runtime_error("cudaStreamBeginCapture");
  }
  void Record() {
    if (fail_at_ == FailAt::kRecord) throw std::runtime_error("a kernel refused the capture");
  }

 protected:
  void Release() {  // in a destructor: an error there would be std::terminate
    try {
      allocator_->ReleasePool(pool_);
    } catch (const std::exception& e) {
      allocator_->destructor_errors.push_back(e.what());
    }
  }

  Allocator* allocator_;
  FailAt fail_at_;
  Pool pool_{0, 0};
};

class OldGraph : public GraphModel {  // libtorch 2.6
 public:
  using GraphModel::GraphModel;
  ~OldGraph() {
    if (has_graph_ || has_graph_exec_) Release();
  }
  void capture_end() {
    allocator_->EndAllocateToPool(pool_);
    if (fail_at_ == FailAt::kEndCapture) throw std::runtime_error("capture invalidated");
    has_graph_ = true;
    if (fail_at_ == FailAt::kInstantiate) throw std::runtime_error("cudaGraphInstantiate");
    has_graph_exec_ = true;
  }

 protected:
  bool has_graph_ = false, has_graph_exec_ = false;
};

class NewGraph : public GraphModel {  // libtorch main, 2026
 public:
  using GraphModel::GraphModel;
  ~NewGraph() {
    if (capture_ended_) Release();
  }
  void capture_end() {
    if (fail_at_ == FailAt::kEndCapture || fail_at_ == FailAt::kRecord) {
      // cudaStreamEndCapture fails on an invalidated capture before the allocator is told
      throw std::runtime_error("capture invalidated");
    }
    allocator_->EndAllocateToPool(pool_);
    capture_ended_ = true;
    has_graph_ = true;
    if (fail_at_ == FailAt::kInstantiate) throw std::runtime_error("cudaGraphInstantiate");
    has_graph_exec_ = true;
  }

 protected:
  bool capture_ended_ = false, has_graph_ = false, has_graph_exec_ = false;
};

class NewestGraph : public NewGraph {  // libtorch main, late 2026: reset() cleans up itself
 public:
  using NewGraph::NewGraph;
  ~NewestGraph() {
    if (allocated_pool_ && !capture_ended_) {  // ~NewGraph releases when capture_ended_
      try {
        allocator_->EndAllocateToPool(pool_);  // if capture_end never got there
      } catch (const std::exception&) {
      }
      Release();
    }
  }
  void capture_begin(Pool pool) {
    if (fail_at_ == FailAt::kBeginChecks) throw std::runtime_error("not on a side stream");
    pool_ = pool;
    allocator_->BeginAllocateToPool(pool);
    allocated_pool_ = true;
    if (fail_at_ == FailAt::kBeginCapture) throw std::runtime_error("cudaStreamBeginCapture");
  }

 protected:
  bool allocated_pool_ = false;
};

// Captures one good graph and then one that fails at `fail_at` into the same pool, as
// DecodeGraphs does for its buckets, destroys both, and returns the allocator.
template <typename GraphVersion>
Allocator CaptureTwoThenDestroy(FailAt fail_at, std::string* error) {
  Allocator allocator;
  const Pool pool{0, 7};  // a graph_pool_handle()
  auto capture = [&](PoolAwareGraph<GraphVersion>& graph) {
    CaptureWithCleanup(
        graph, pool, [&] { graph.Record(); },
        [&] {
          try {
            allocator.EndAllocateToPool(pool);
            return true;
          } catch (const std::runtime_error&) {
            return false;
          }
        },
        [&] { allocator.ReleasePool(pool); });
  };
  auto good = std::make_unique<PoolAwareGraph<GraphVersion>>(&allocator, FailAt::kNothing);
  capture(*good);
  {
    PoolAwareGraph<GraphVersion> failing(&allocator, fail_at);
    try {
      capture(failing);
    } catch (const std::exception& e) {
      *error = e.what();
    }
  }
  good.reset();
  return allocator;
}

template <typename GraphVersion>
void ExpectCleanAfterEveryFailure(const char* version) {
  for (FailAt fail_at : {FailAt::kNothing, FailAt::kBeginChecks, FailAt::kBeginCapture,
                         FailAt::kRecord, FailAt::kEndCapture, FailAt::kInstantiate}) {
    SCOPED_TRACE(testing::Message() << version << ", failure point " << static_cast<int>(fail_at));
    std::string error;
    const Allocator allocator = CaptureTwoThenDestroy<GraphVersion>(fail_at, &error);
    EXPECT_TRUE(allocator.underway.empty()) << "a capture is left underway";
    EXPECT_EQ(allocator.use_count.at({0, 7}), 0) << "the pool's use count";
    EXPECT_EQ(error.empty(), fail_at == FailAt::kNothing) << error;
    EXPECT_TRUE(allocator.destructor_errors.empty()) << allocator.destructor_errors.front();
    // The first error is the one that reaches the caller, not capture_end's.
    if (fail_at == FailAt::kRecord) {
      EXPECT_EQ(error, "a kernel refused the capture");
    }
  }
}

TEST(GraphCaptureCleanupTest, OlderLibtorchOrderLeavesNothingBehind) {
  ExpectCleanAfterEveryFailure<OldGraph>("2.6");
}

TEST(GraphCaptureCleanupTest, NewerLibtorchOrderLeavesNothingBehind) {
  ExpectCleanAfterEveryFailure<NewGraph>("main");
}

TEST(GraphCaptureCleanupTest, TheNewestLibtorchIsLeftToCleanUpItself) {
  ExpectCleanAfterEveryFailure<NewestGraph>("newest");
}

TEST(GraphCaptureCleanupTest, WithoutTheCleanupTheNewerOrderLeavesTheCaptureUnderway) {
  // The situation the cleanup exists for: a refused capture under the newer order.
  Allocator allocator;
  {
    NewGraph graph(&allocator, FailAt::kEndCapture);
    graph.capture_begin({0, 7});
    EXPECT_THROW(graph.capture_end(), std::runtime_error);
  }
  EXPECT_EQ(allocator.underway.size(), 1u);
  EXPECT_EQ(allocator.use_count.at({0, 7}), 1);
}

TEST(GraphCaptureCleanupTest, PoolAwareGraphReadsWhicheverFlagsTheVersionHas) {
  Allocator allocator;
  PoolAwareGraph<OldGraph> old_graph(&allocator, FailAt::kInstantiate);
  old_graph.capture_begin({0, 1});
  EXPECT_FALSE(old_graph.ResetCleansUp());
  EXPECT_THROW(old_graph.capture_end(), std::runtime_error);
  EXPECT_TRUE(old_graph.ResetCleansUp());  // has_graph_ set before instantiation failed

  PoolAwareGraph<NewGraph> new_graph(&allocator, FailAt::kNothing);
  new_graph.capture_begin({0, 2});
  EXPECT_FALSE(new_graph.ResetCleansUp());
  new_graph.capture_end();
  EXPECT_TRUE(new_graph.ResetCleansUp());

  PoolAwareGraph<NewestGraph> newest_graph(&allocator, FailAt::kEndCapture);
  EXPECT_TRUE(newest_graph.ResetCleansUp());

  // A graph that keeps its state behind an implementation pointer (none of the flags): this
  // compiles, and the cleanup is left to its destructor.
  struct OpaqueGraph {
    void* impl = nullptr;
  };
  PoolAwareGraph<OpaqueGraph> opaque_graph;
  EXPECT_TRUE(opaque_graph.ResetCleansUp());
}

}  // namespace
}  // namespace speechllm::engine
