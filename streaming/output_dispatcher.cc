#include "streaming/output_dispatcher.h"

#include <vector>

namespace speechllm::streaming {

OutputDispatcher::OutputDispatcher(engine::Engine* engine) : engine_(engine) {
  thread_ = std::thread([this] { Loop(); });
}

OutputDispatcher::~OutputDispatcher() { Stop(); }

void OutputDispatcher::Register(const std::shared_ptr<Session>& session) {
  absl::MutexLock lock(&mu_);
  sessions_[session->sequence_id()] = session;
}

void OutputDispatcher::Unregister(engine::SequenceId id) {
  absl::MutexLock lock(&mu_);
  sessions_.erase(id);
}

void OutputDispatcher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void OutputDispatcher::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    for (engine::SequenceOutput& output : engine_->PopOutputs(absl::Milliseconds(50))) {
      std::shared_ptr<Session> session;
      {
        absl::MutexLock lock(&mu_);
        auto it = sessions_.find(output.id);
        if (it != sessions_.end()) session = it->second.lock();
      }
      if (session != nullptr) session->OnEngineOutput(std::move(output));
    }
    // Partials the rate limit held back go out once their interval has passed, even when no
    // further output comes (a client that paused sending): at most 50 ms late.
    std::vector<std::shared_ptr<Session>> live;
    {
      absl::MutexLock lock(&mu_);
      live.reserve(sessions_.size());
      for (const auto& [id, weak] : sessions_) {
        if (std::shared_ptr<Session> session = weak.lock()) live.push_back(std::move(session));
      }
    }
    const absl::Time now = absl::Now();
    for (const std::shared_ptr<Session>& session : live) session->SendHeldPartials(now);
  }
}

}  // namespace speechllm::streaming
