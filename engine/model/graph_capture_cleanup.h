// What to undo in libtorch's CUDA caching allocator after a graph capture that did not complete.
// Torch-free templates: GraphCapturer (cuda_graph_capture.h) instantiates them over
// at::cuda::CUDAGraph and the allocator's endAllocateToPool/releasePool; the unit test over models
// of both libtorch orders of capture_end. Called by GraphCapturer::Capture on the thread that runs
// the model, only on its error path.
#ifndef SPEECHLLM_ENGINE_MODEL_GRAPH_CAPTURE_CLEANUP_H_
#define SPEECHLLM_ENGINE_MODEL_GRAPH_CAPTURE_CLEANUP_H_

#include <utility>

namespace speechllm::engine {

// A graph type that can say whether its destructor (reset()) cleans up after a failed capture by
// itself. CUDAGraph::capture_begin counts one use of the memory pool and sends the capture
// stream's allocations to it ("capture underway"); capture_end stops the latter and reset() gives
// the use back. What reset() does after a capture_end that threw depends on the libtorch:
//   - the newest track allocated_pool_ and end the pool mode and release the pool themselves;
//   - newer ones release only when capture_ended_, which a failed capture_end never set;
//   - older ones (2.6 among them) release only when has_graph_ || has_graph_exec_.
// These are protected members, read here through derivation, whichever the libtorch at hand has;
// one with none of them is left to its destructor.
template <typename GraphBase>
class PoolAwareGraph : public GraphBase {
 public:
  using GraphBase::GraphBase;

  // True when nothing is left for UndoFailedCapture: the destructor gives the pool back (and, in
  // the newest libtorch, ends a pool mode left on).
  bool ResetCleansUp() const { return CleansUp(*this, Rank2{}); }

 private:
  struct RankUnknown {};  // overload priority: the newest libtorch's members first
  struct Rank0 : RankUnknown {};
  struct Rank1 : Rank0 {};
  struct Rank2 : Rank1 {};

  template <typename G>
  static auto CleansUp(const G& graph, Rank2)
      -> decltype(static_cast<bool>(graph.allocated_pool_)) {
    static_cast<void>(graph);
    return true;
  }
  template <typename G>
  static auto CleansUp(const G& graph, Rank1) -> decltype(static_cast<bool>(graph.capture_ended_)) {
    return graph.capture_ended_;
  }
  template <typename G>
  static auto CleansUp(const G& graph, Rank0)
      -> decltype(static_cast<bool>(graph.has_graph_ || graph.has_graph_exec_)) {
    return graph.has_graph_ || graph.has_graph_exec_;
  }
  // A libtorch with none of these members (a graph that hides its state behind an implementation
  // pointer): leave the cleanup to its destructor. Undoing here as well could give the pool back
  // twice, which ends the process inside a destructor; not undoing costs only after a failed
  // capture.
  template <typename G>
  static bool CleansUp(const G&, RankUnknown) {
    return true;
  }
};

// Puts the allocator back after a capture that threw, so that a later out-of-memory retry does not
// trip the allocator's assertion that no capture is underway, frees are no longer deferred for
// good, and the pool can be freed once the other graphs are gone. Newer libtorch ends the CUDA
// capture before the allocator's pool mode, so a capture the driver invalidated left it underway.
//   capture_began: capture_begin returned (it counted a use of the pool);
//   graph_cleans_up: the graph's ResetCleansUp() (then nothing is left to undo here);
//   end_allocate(): ends the pool mode, true if it was still on, false if it was not (capture_end
//     had got that far, or capture_begin threw before it started it);
//   release_pool(): gives back one use of the pool.
template <typename EndAllocate, typename ReleasePool>
void UndoFailedCapture(bool capture_began, bool graph_cleans_up, EndAllocate&& end_allocate,
                       ReleasePool&& release_pool) {
  if (graph_cleans_up) return;
  const bool was_underway = std::forward<EndAllocate>(end_allocate)();
  if (capture_began || was_underway) std::forward<ReleasePool>(release_pool)();
}

// graph.capture_begin(pool), record(), graph.capture_end(). When any of them throws: ends the
// stream's capture mode (capture_end, its own error ignored) if record() threw, undoes what the
// allocator was left with (UndoFailedCapture; errors there ignored too) and rethrows the first
// error. Call it on the capture stream.
template <typename Graph, typename Pool, typename Record, typename EndAllocate,
          typename ReleasePool>
void CaptureWithCleanup(Graph& graph, const Pool& pool, Record&& record, EndAllocate&& end_allocate,
                        ReleasePool&& release_pool) {
  bool began = false;
  try {
    graph.capture_begin(pool);
    began = true;
    try {
      std::forward<Record>(record)();
    } catch (...) {
      try {
        graph.capture_end();
      } catch (...) {
      }
      throw;
    }
    graph.capture_end();
  } catch (...) {
    try {
      UndoFailedCapture(began, graph.ResetCleansUp(), std::forward<EndAllocate>(end_allocate),
                        std::forward<ReleasePool>(release_pool));
    } catch (...) {
    }
    throw;
  }
}

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_GRAPH_CAPTURE_CLEANUP_H_
