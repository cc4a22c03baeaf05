#include "streaming/output_dispatcher.h"

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
  }
}

}  // namespace speechllm::streaming
