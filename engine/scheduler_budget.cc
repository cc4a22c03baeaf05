// Scheduler, the step budgets: the encoder positions a sequence's next work and a planned encode
// item take (EngineConfig::max_step_encoder_positions), and chunked prefill, which keeps a
// prefill item within what is left of the token budget (max_step_tokens). Engine loop thread.
#include <algorithm>

#include "engine/model/audio_lengths.h"
#include "engine/scheduler.h"

namespace speechllm::engine {

void Scheduler::KeepWithinBudget(Sequence* s, PrefillItem* item, int64_t budget) {
  const int64_t size = static_cast<int64_t>(item->token_ids.size());
  // The tokens from the first one that needs a choice on stay together (a verify's choices come
  // from one pass). When the budget covers every token before them the item goes whole, past the
  // budget by its choice tokens: a split would only delay the choices a step. A piece of a few
  // tokens is cheap: it joins the short queries' batched attention.
  const int64_t cut = std::min({budget, item->first_logit_index, size});
  if (size <= budget || cut <= 0 || budget >= item->first_logit_index) return;
  PrefillItem rest;
  rest.id = item->id;
  rest.start_position = item->start_position + cut;
  rest.token_ids.assign(item->token_ids.begin() + cut, item->token_ids.end());
  const int64_t audio_in_piece = std::min(item->num_audio_rows, cut);
  rest.num_audio_rows = item->num_audio_rows - audio_in_piece;
  rest.first_audio_row = item->first_audio_row + audio_in_piece;
  rest.first_logit_index = item->first_logit_index - cut;
  item->token_ids.resize(cut);
  item->num_audio_rows = audio_in_piece;
  item->first_logit_index = cut;  // no choices
  const int64_t blocks = (item->start_position + cut + kv_.block_size() - 1) / kv_.block_size();
  item->block_table.resize(blocks);  // the piece's context only; the rest stays reserved
  s->prefill_rest = std::move(rest);
  s->activity_when_done = s->activity;
  s->activity = Activity::kPiece;
}

int64_t Scheduler::EncodePositions(const EncodeItem& item) {
  if (item.kind == EncodeItem::Kind::kFull) {
    if (item.segment->num_audio_embeddings > 0) return 0;  // precomputed: no encoder
    return ConvOutputLength(item.segment->num_valid_frames);
  }
  return item.chunk->end_position - item.chunk->first_position;
}

int64_t Scheduler::PendingEncoderPositions(const Sequence* s) const {
  if (s->failed || s->final_started || s->phase == SegmentPhase::kWaitingStart ||
      s->phase == SegmentPhase::kPrefix || s->prefill_rest.has_value())
    return 0;
  int64_t positions = 0;
  for (const auto& chunk : s->chunks) {
    if (chunk->segment_index == s->segment_index)
      positions += chunk->end_position - chunk->first_position;
  }
  if (s->ends.empty() || s->ends.front()->segment_index != s->segment_index) return positions;
  const SegmentEnd& end = *s->ends.front();
  if (!end.text_wanted) return 0;              // an empty final at once: nothing is encoded
  if (end.num_audio_embeddings > 0) return 0;  // precomputed: no encoder
  if (s->config.final_mode == FinalMode::kExact) return ConvOutputLength(end.num_valid_frames);
  return positions + end.tail.end_position - end.tail.first_position;
}

}  // namespace speechllm::engine
