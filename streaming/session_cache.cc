// Session: handing a closed segment's end to the engine, through the embedding cache for exact
// finals (ARCHITECTURE.md 8). Input half (the stream's reader thread).
#include <memory>
#include <utility>
#include <vector>

#include "engine/model/audio_lengths.h"
#include "streaming/embedding_cache.h"
#include "streaming/session.h"

namespace speechllm::streaming {

void Session::SubmitEnd(std::unique_ptr<engine::SegmentEnd> end) {
  // The cache answers an exact final's lookup on its workers; the engine holds the end, keeping
  // the stream's order, until the answer comes. A fast final encodes only its tail: nothing to
  // look up.
  const bool cache_lookup = deps_.embedding_cache != nullptr &&
                            config_.final_mode == engine::FinalMode::kExact && end->text_wanted &&
                            engine::AudioTokenCount(end->num_valid_frames) > 0;
  std::vector<float> key_features;
  if (cache_lookup) {
    end->await_embeddings = true;
    end->return_embeddings = true;
    key_features = end->features;
  }
  const int64_t segment_index = end->segment_index, num_frames = end->num_frames,
                num_valid_frames = end->num_valid_frames;
  if (absl::Status status = deps_.engine->EndSegment(sequence_id_, std::move(end)); !status.ok()) {
    absl::MutexLock lock(&mu_);
    FinishLocked(status);
    return;
  }
  if (!cache_lookup) return;
  deps_.embedding_cache->Lookup(
      std::move(key_features), num_frames, num_valid_frames,
      [engine = deps_.engine, id = sequence_id_, segment_index](EmbeddingCache::Answer answer) {
        // NOT_FOUND when the stream ended meanwhile: nothing waits for the answer.
        engine
            ->ProvideEmbeddings(id, {segment_index, std::move(answer.cached.rows),
                                     answer.cached.num_rows, std::move(answer.key)})
            .IgnoreError();
      });
}

}  // namespace speechllm::streaming
