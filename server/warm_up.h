// WarmUp: one utterance through the whole model path (front end, encoder, decoder, tokenizer)
// before the server reports SERVING (API.md 5: "SERVING after weight load and warm-up"). A model
// that loads but cannot run (a dtype the device lacks, a broken device) stops the server at start
// instead of failing every call behind a healthy probe. Called once by main.cc, on the main thread,
// before any listening port opens.
#ifndef SPEECHLLM_SERVER_WARM_UP_H_
#define SPEECHLLM_SERVER_WARM_UP_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/service_context.h"

namespace speechllm::server {

// Runs 1 s of faint noise as one MANUAL utterance with an exact final of at most 4 tokens through
// `ctx`'s engine and dispatcher; the stream's status, or DEADLINE_EXCEEDED after `timeout`.
absl::Status WarmUp(ServiceContext& ctx, absl::Duration timeout);

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_WARM_UP_H_
