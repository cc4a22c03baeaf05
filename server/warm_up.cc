#include "server/warm_up.h"

#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "streaming/session.h"

namespace speechllm::server {
namespace {

// Keeps the stream's end; the events themselves are not needed.
class FinishSink : public streaming::ResultSink {
 public:
  void Send(streaming::SessionEvent) override {}
  void OnCapacity() override {}
  void Finish(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    status_ = status;
    finished_ = true;
  }
  // The stream's status, or DEADLINE_EXCEEDED when it has not ended by `deadline`.
  absl::Status Wait(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithDeadline(absl::Condition(&finished_), deadline)) {
      return absl::DeadlineExceededError("the warm-up utterance did not finish in time");
    }
    return status_;
  }

 private:
  absl::Mutex mu_;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

absl::Status WarmUp(ServiceContext& ctx, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  auto prompt = ctx.prompt->Build({});
  if (!prompt.ok()) return prompt.status();
  streaming::SessionConfig config;
  config.endpoint.mode = streaming::EndpointMode::kManual;
  config.interim_results = false;
  config.silence_guard_min_speech_ms = 0;  // decode the noise: the decoder must run
  config.max_new_tokens_per_segment = 4;
  config.max_new_tokens_per_update = 4;
  config.prompt = *std::move(prompt);
  FinishSink sink;
  auto session =
      streaming::Session::Create(config, {ctx.engine, ctx.log_mel, ctx.tokenizer}, &sink);
  if (!session.ok()) return session.status();
  ctx.dispatcher->Register(*session);
  // Faint white noise from a fixed linear congruential generator: the same run every start.
  const int sample_rate_hz = ctx.log_mel->config().sample_rate_hz;
  std::vector<float> noise(static_cast<size_t>(sample_rate_hz));
  uint32_t state = 12345;
  for (float& sample : noise) {
    state = state * 1664525u + 1013904223u;
    sample = 0.01f * (static_cast<float>(state >> 8) / 8388608.0f - 1.0f);
  }
  absl::Status status = (*session)->AcceptAudio(noise, absl::Now());
  if (status.ok()) status = (*session)->FinishInput(absl::Now());
  if (status.ok()) status = sink.Wait(deadline);
  (*session)->Detach();
  ctx.dispatcher->Unregister((*session)->sequence_id());
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("warm-up: ", status.message()));
  }
  return absl::OkStatus();
}

}  // namespace speechllm::server
