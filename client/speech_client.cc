#include "client/speech_client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/pcm_source.h"
#include "client/streaming_client_reactor.h"
#include "proto/grpc_handoff.h"

namespace speechllm::client {

using speechllm::v1::StreamingRecognizeRequest;
using speechllm::v1::StreamingRecognizeResponse;

namespace {

constexpr int64_t kDefaultChunkBytes = 3200;   // 100 ms of 16 kHz mono PCM_S16LE
constexpr int64_t kMaxChunkBytes = 64 * 1024;  // the server's default max_chunk_bytes

// Encodings whose bytes can end anywhere (at a whole frame): raw samples, not a container.
bool IsRawEncoding(speechllm::v1::AudioFormat::Encoding encoding) {
  return encoding == speechllm::v1::AudioFormat::PCM_S16LE ||
         encoding == speechllm::v1::AudioFormat::PCM_F32LE ||
         encoding == speechllm::v1::AudioFormat::MULAW ||
         encoding == speechllm::v1::AudioFormat::ALAW;
}

absl::Duration AudioDuration(int64_t bytes, int64_t bytes_per_second) {
  if (bytes_per_second <= 0) return absl::ZeroDuration();
  return absl::Microseconds(bytes * 1000000 / bytes_per_second);
}

}  // namespace

StreamingClient::StreamingClient(speechllm::v1::StreamingSpeech::StubInterface* stub,
                                 StreamingClientOptions options)
    : stub_(stub), options_(std::move(options)) {
  bytes_per_second_ = options_.bytes_per_second > 0 ? options_.bytes_per_second
                                                    : BytesPerSecond(options_.config.audio());
  if (options_.chunk_bytes > 0) {
    chunk_size_bytes_ = options_.chunk_bytes;
  } else if (bytes_per_second_ > 0 && options_.chunk_ms > 0) {
    // Whole frames when the format has them (a frame: one sample of every channel).
    const int channels = std::max(options_.config.audio().channels(), 1);
    const int64_t frame_bytes =
        options_.bytes_per_second > 0
            ? 1
            : std::max<int64_t>(BytesPerSample(options_.config.audio().encoding()) * channels, 1);
    // At most the server's default max_chunk_bytes (8 channels at 48 kHz make 77 KB a 100 ms).
    const int64_t bytes =
        std::min<int64_t>(bytes_per_second_ * options_.chunk_ms / 1000, kMaxChunkBytes);
    chunk_size_bytes_ = std::max<int64_t>(bytes / frame_bytes, 1) * frame_bytes;
  } else {
    chunk_size_bytes_ = kDefaultChunkBytes;
  }
}

StreamingClient::~StreamingClient() {
  bool started;
  {
    absl::MutexLock lock(&mu_);
    started = started_;
  }
  if (!started) return;
  if (!WaitForDone(absl::ZeroDuration())) Cancel();
  Await();
  if (writer_.joinable()) writer_.join();
}

void StreamingClient::SetResponseCallback(ResponseCallback callback) {
  callback_ = std::move(callback);
}

absl::Status StreamingClient::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_) return absl::FailedPreconditionError("StreamingClient already started");
    started_ = true;
    start_time_ = Clock::now();
    if (options_.send_config) {
      Outgoing config;
      *config.request.mutable_config() = options_.config;
      queue_.push_back(std::move(config));
    }
  }
  for (const auto& [key, value] : options_.metadata) context_.AddMetadata(key, value);
  // A deadline past a century is none: system_clock's time_point overflows near 3e5 years and
  // wrapped to the past (an immediate DEADLINE_EXCEEDED).
  if (options_.deadline < absl::Hours(24 * 365 * 100)) {
    context_.set_deadline(std::chrono::system_clock::now() +
                          absl::ToChronoMicroseconds(options_.deadline));
  }
  reactor_ = std::make_unique<Reactor>(this);
  stub_->async()->StreamingRecognize(&context_, reactor_.get());
  reactor_->AddMultipleHolds(2);  // writer flow + read flow, both driven from outside reactions
  {
    absl::MutexLock lock(&mu_);
    reactor_ready_ = true;
  }
  StartReadIfWanted();
  GrpcHandoffRelease(reactor_.get());
  reactor_->StartCall();
  writer_ = std::thread([this] { WriterLoop(); });
  return absl::OkStatus();
}

absl::Status StreamingClient::CheckOpen() const {
  if (!started_) return absl::FailedPreconditionError("StreamingClient not started");
  if (send_closed_) return absl::FailedPreconditionError("CloseSend() was already called");
  return absl::OkStatus();
}

absl::Status StreamingClient::SendAudio(absl::string_view bytes) {
  return QueueAudio(bytes, /*all=*/false);
}

absl::Status StreamingClient::SendAudioNow(absl::string_view bytes) {
  return QueueAudio(bytes, /*all=*/true);
}

absl::Status StreamingClient::QueueAudio(absl::string_view bytes, bool all) {
  absl::MutexLock lock(&mu_);
  if (absl::Status open = CheckOpen(); !open.ok()) return open;
  if (bytes.empty()) return absl::OkStatus();
  if (!pacing_started_) {
    pacing_started_ = true;
    pacing_start_ = Clock::now();
  }
  pending_audio_.append(bytes.data(), bytes.size());
  audio_bytes_queued_ += static_cast<int64_t>(bytes.size());
  QueueChunks(all);
  return absl::OkStatus();
}

absl::Status StreamingClient::SendSamples(absl::Span<const float> samples) {
  absl::StatusOr<std::string> bytes = EncodeSamples(samples, options_.config.audio().encoding());
  if (!bytes.ok()) return bytes.status();
  return SendAudio(*bytes);
}

absl::Status StreamingClient::Flush() {
  speechllm::v1::Control control;
  control.mutable_flush();
  absl::MutexLock lock(&mu_);
  if (absl::Status open = CheckOpen(); !open.ok()) return open;
  QueueControl(std::move(control));
  return absl::OkStatus();
}

absl::Status StreamingClient::KeepAlive() {
  speechllm::v1::Control control;
  control.mutable_keep_alive();
  absl::MutexLock lock(&mu_);
  if (absl::Status open = CheckOpen(); !open.ok()) return open;
  QueueControl(std::move(control));
  return absl::OkStatus();
}

absl::Status StreamingClient::EndOfAudio() {
  speechllm::v1::Control control;
  control.mutable_end_of_audio();
  absl::MutexLock lock(&mu_);
  if (absl::Status open = CheckOpen(); !open.ok()) return open;
  QueueControl(std::move(control));
  return absl::OkStatus();
}

absl::Status StreamingClient::SendRaw(StreamingRecognizeRequest request) {
  absl::MutexLock lock(&mu_);
  if (absl::Status open = CheckOpen(); !open.ok()) return open;
  QueueChunks(/*all=*/true);
  Outgoing message;
  message.request = std::move(request);
  queue_.push_back(std::move(message));
  return absl::OkStatus();
}

absl::Status StreamingClient::CloseSend() {
  absl::MutexLock lock(&mu_);
  if (absl::Status open = CheckOpen(); !open.ok()) return open;
  QueueChunks(/*all=*/true);
  Outgoing half_close;
  half_close.kind = Outgoing::Kind::kHalfClose;
  queue_.push_back(std::move(half_close));
  send_closed_ = true;
  return absl::OkStatus();
}

absl::Status StreamingClient::StopAudio() {
  absl::MutexLock lock(&mu_);
  if (!started_) return absl::FailedPreconditionError("StreamingClient not started");
  audio_stopped_ = true;  // the writer also drops a chunk it is holding back for pacing
  const speechllm::v1::AudioFormat::Encoding encoding = options_.config.audio().encoding();
  stop_cut_ = IsRawEncoding(encoding)                            ? StopCut::kDropAll
              : encoding == speechllm::v1::AudioFormat::OGG_OPUS ? StopCut::kToPageEnd
                                                                 : StopCut::kSendAll;
  if (stop_cut_ == StopCut::kDropAll) {
    pending_audio_.clear();
    queue_.erase(
        std::remove_if(queue_.begin(), queue_.end(),
                       [](const Outgoing& item) { return item.kind == Outgoing::Kind::kAudio; }),
        queue_.end());
  } else {
    QueueChunks(/*all=*/true);  // the writer sends or cuts it (AudioAfterStop)
  }
  if (!send_closed_) {
    Outgoing half_close;
    half_close.kind = Outgoing::Kind::kHalfClose;
    queue_.push_back(std::move(half_close));
    send_closed_ = true;
  }
  return absl::OkStatus();
}

void StreamingClient::QueueChunks(bool all) {
  while (!pending_audio_.empty() &&
         (all || static_cast<int64_t>(pending_audio_.size()) >= chunk_size_bytes_)) {
    const size_t size = std::min<size_t>(pending_audio_.size(), chunk_size_bytes_);
    Outgoing chunk;
    chunk.kind = Outgoing::Kind::kAudio;
    speechllm::v1::AudioChunk* audio = chunk.request.mutable_audio();
    audio->set_data(pending_audio_.substr(0, size));
    if (options_.set_chunk_seq) audio->set_seq(next_seq_);
    ++next_seq_;
    pending_audio_.erase(0, size);
    const int64_t end_bytes = audio_bytes_queued_ - static_cast<int64_t>(pending_audio_.size());
    chunk.audio_end = AudioDuration(end_bytes, bytes_per_second_);
    queue_.push_back(std::move(chunk));
  }
}

void StreamingClient::QueueControl(speechllm::v1::Control control) {
  QueueChunks(/*all=*/true);
  Outgoing message;
  *message.request.mutable_control() = std::move(control);
  queue_.push_back(std::move(message));
}

void StreamingClient::WriterLoop() {
  const auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return write_stream_dead_ || read_stream_ended_;
  };
  while (true) {
    Outgoing item;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](StreamingClient* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu_) {
            return !c->queue_.empty() || c->write_stream_dead_ || c->read_stream_ended_;
          },
          this));
      if (stopped()) break;
      item = std::move(queue_.front());
      queue_.pop_front();
      if (item.kind == Outgoing::Kind::kAudio && options_.realtime && bytes_per_second_ > 0) {
        // A microphone hands over a chunk once its last sample has been captured.
        const Clock::time_point due = pacing_start_ + absl::ToChronoMicroseconds(item.audio_end);
        for (Clock::time_point now = Clock::now(); now < due && !stopped() && !audio_stopped_;
             now = Clock::now()) {
          mu_.AwaitWithTimeout(absl::Condition(
                                   +[](StreamingClient* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu_) {
                                     return c->write_stream_dead_ || c->read_stream_ended_ ||
                                            c->audio_stopped_;
                                   },
                                   this),
                               absl::FromChrono(due - now));
        }
        if (stopped()) break;
      }
      if (item.kind == Outgoing::Kind::kAudio && audio_stopped_ && !AudioAfterStop(&item.request)) {
        continue;  // StopAudio() came while this chunk waited, or after its page
      }
      write_in_flight_ = true;
      if (item.kind == Outgoing::Kind::kAudio) {
        sent_chunks_.push_back({static_cast<int64_t>(item.request.audio().data().size()),
                                item.audio_end, Clock::now()});
      }
    }
    GrpcHandoffRelease(reactor_.get());
    if (item.kind == Outgoing::Kind::kHalfClose) {
      reactor_->StartWritesDone();
    } else {
      reactor_->StartWrite(&item.request);
    }
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](StreamingClient* c)
             ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu_) { return !c->write_in_flight_; },
        this));
    if (!last_write_ok_) {
      write_stream_dead_ = true;
      break;
    }
    if (item.kind == Outgoing::Kind::kHalfClose) break;
  }
  GrpcHandoffRelease(reactor_.get());
  reactor_->RemoveHold();
}

bool StreamingClient::AudioAfterStop(speechllm::v1::StreamingRecognizeRequest* chunk) {
  switch (stop_cut_) {
    case StopCut::kDropAll:
      return false;
    case StopCut::kSendAll:
      return true;
    case StopCut::kToPageEnd:
      break;
  }
  if (page_ended_) return false;
  // A page starts with "OggS" and stream structure version 0 (RFC 3533 section 6).
  std::string* data = chunk->mutable_audio()->mutable_data();
  for (size_t at = data->find("OggS"); at != std::string::npos; at = data->find("OggS", at + 1)) {
    if (at + 4 < data->size() && (*data)[at + 4] != '\0') continue;
    page_ended_ = true;
    data->resize(at);
    return at > 0;
  }
  return true;  // the page goes on past this chunk
}

absl::Duration StreamingClient::AudioCapturedLocked(Clock::time_point at,
                                                    absl::Duration audio_sent) const {
  if (audio_stopped_ && stop_cut_ == StopCut::kDropAll) {
    return audio_sent;  // what StopAudio dropped was never captured
  }
  const absl::Duration queued = AudioDuration(audio_bytes_queued_, bytes_per_second_);
  if (!options_.realtime || bytes_per_second_ <= 0 || !pacing_started_) return queued;
  return std::min(queued, absl::FromChrono(at - pacing_start_));
}

absl::Duration StreamingClient::audio_queued() const {
  absl::MutexLock lock(&mu_);
  return AudioDuration(audio_bytes_queued_, bytes_per_second_);
}

}  // namespace speechllm::client
