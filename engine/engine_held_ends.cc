// Engine: segment ends held for the embedding cache's answer (ARCHITECTURE.md 8). Loop thread.
#include <memory>
#include <utility>

#include "engine/engine.h"
#include "engine/model/audio_lengths.h"
#include "engine/scheduler.h"

namespace speechllm::engine {

void Engine::HoldOrPassEnd(SequenceId id, std::unique_ptr<SegmentEnd> end) {
  const auto held = held_ends_.find(id);
  if (!end->await_embeddings && held == held_ends_.end()) {
    scheduler_->EndSegment(id, std::move(end));
    return;
  }
  held_ends_[id].push_back(std::move(end));
}

void Engine::AnswerHeldEnd(SequenceId id, CachedEmbeddings cached) {
  const auto held = held_ends_.find(id);
  if (held == held_ends_.end()) return;  // released, or answered twice
  for (std::unique_ptr<SegmentEnd>& end : held->second) {
    if (!end->await_embeddings || end->segment_index != cached.segment_index) continue;
    end->await_embeddings = false;
    end->cache_key = std::move(cached.cache_key);
    end->cache_answer_time = absl::Now();
    // A hit replaces the encoder: the rows take the audio positions as Recognize's precomputed
    // embeddings do. Rows of another length than the features give are a miss.
    if (cached.num_rows > 0 && cached.num_rows == AudioTokenCount(end->num_valid_frames)) {
      end->audio_embeddings = std::move(cached.rows);
      end->num_audio_embeddings = cached.num_rows;
      end->features.clear();
      end->features.shrink_to_fit();
      end->tail.frames.clear();
      end->tail.end_position = end->tail.first_position;
      end->return_embeddings = false;
    }
    break;
  }
  std::deque<std::unique_ptr<SegmentEnd>>& ends = held->second;
  while (!ends.empty() && !ends.front()->await_embeddings) {
    scheduler_->EndSegment(id, std::move(ends.front()));
    ends.pop_front();
  }
  if (ends.empty()) held_ends_.erase(held);
}

}  // namespace speechllm::engine
