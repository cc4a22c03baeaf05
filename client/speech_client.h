// StreamingClient: one StreamingRecognize call on the gRPC callback API (ClientBidiReactor): the
// config, then audio cut into AudioChunks paced like a microphone (or as fast as flow control
// allows), controls and the half-close, with a record of every response. Owned by its creator
// (the CLI, tests, benchmarks); any thread may call it, the result callback runs on gRPC threads.
#ifndef SPEECHLLM_CLIENT_SPEECH_CLIENT_H_
#define SPEECHLLM_CLIENT_SPEECH_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/client_channel.h"
#include "grpcpp/grpcpp.h"
#include "speechllm/v1/speechllm.grpc.pb.h"

namespace speechllm::client {

using Clock = std::chrono::steady_clock;

struct StreamingClientOptions {
  // Audio per AudioChunk. The byte size follows from config.audio (PCM_S16LE, PCM_F32LE, MULAW,
  // ALAW; channels 0 = 1) or from bytes_per_second.
  int chunk_ms = 100;
  // Exact bytes per AudioChunk when > 0 (overrides chunk_ms): odd sizes, oversized chunks.
  int64_t chunk_bytes = 0;
  // Byte rate of the audio when > 0; 0 derives it from config.audio. Without a byte rate (e.g. a
  // container) chunks are chunk_bytes (else 3200) bytes and are never paced.
  int64_t bytes_per_second = 0;
  // true: chunk k is written no earlier than (k+1) * chunk duration after the first audio was
  // queued, as a microphone delivers it. false: as fast as gRPC flow control allows.
  bool realtime = true;
  // Sent as the first message when send_config; error tests turn it off to send something else.
  speechllm::v1::SessionConfig config;
  bool send_config = true;
  // Fills AudioChunk.seq with 0, 1, 2, ...
  bool set_chunk_seq = true;
  // Deadline of the whole call from Start(); infinite (or beyond a century) = none.
  absl::Duration deadline = absl::InfiniteDuration();
  // Request metadata, e.g. {"authorization", "Bearer <token>"} (keys lower case).
  std::vector<std::pair<std::string, std::string>> metadata;
};

// One response and when it arrived.
struct ResponseRecord {
  speechllm::v1::StreamingRecognizeResponse response;
  Clock::time_point arrival_time;
  absl::Duration since_start;  // arrival - Start()
  absl::Duration audio_sent;   // audio handed to gRPC before it arrived
  // Audio the source had produced by the arrival: when paced, what a microphone started at the
  // first SendAudio had captured (capped at the audio queued); unpaced, the audio queued; after
  // StopAudio of raw audio, the audio sent. Its difference to audio_processed is the lag a user
  // sees, flow control's hold-ups included. 0 without a byte rate (containers).
  absl::Duration audio_captured;
  int64_t chunks_sent = 0;  // AudioChunks handed to gRPC before it arrived
  // When the last AudioChunk before it was handed to gRPC; the epoch if none was.
  Clock::time_point last_audio_sent_time;
};

// One AudioChunk handed to gRPC.
struct SentChunk {
  int64_t size_bytes = 0;
  absl::Duration audio_end;  // audio offset of the chunk's end (0 without a byte rate)
  Clock::time_point send_time;
};

// Thread safety: every public method may be called from any thread; state shared with the gRPC
// reactions and the writer thread is guarded by mu_. One write and one read are in flight at most.
class StreamingClient {
 public:
  using ResponseCallback = std::function<void(const ResponseRecord&)>;

  // `stub` is not owned and must outlive the client.
  StreamingClient(speechllm::v1::StreamingSpeech::StubInterface* stub,
                  StreamingClientOptions options);
  // Cancels a call that is still running and waits for it to end.
  ~StreamingClient();
  StreamingClient(const StreamingClient&) = delete;
  StreamingClient& operator=(const StreamingClient&) = delete;

  // Called on a gRPC thread for each response, after it is recorded; must not block. Set before
  // Start().
  void SetResponseCallback(ResponseCallback callback);

  // Opens the call and queues the config. FAILED_PRECONDITION if called twice.
  absl::Status Start();

  // Queue audio; every call returns at once (writes happen on the client's writer thread).
  // Bytes accumulate until a whole chunk is there; Flush, EndOfAudio and CloseSend send the rest
  // as a shorter chunk. FAILED_PRECONDITION before Start() or after CloseSend().
  absl::Status SendAudio(absl::string_view bytes);
  // Queues `bytes` and sends all audio pending at once, in messages of at most the chunk size: for
  // input that arrives in pieces of its own (a container piped from a recorder), where waiting
  // for a whole chunk would only add latency.
  absl::Status SendAudioNow(absl::string_view bytes);
  // Float samples encoded as config.audio.encoding (PCM_S16LE or PCM_F32LE, else INVALID_ARGUMENT).
  absl::Status SendSamples(absl::Span<const float> samples);
  // Controls, queued after the audio before them.
  absl::Status Flush();
  absl::Status KeepAlive();
  absl::Status EndOfAudio();  // does not half-close; audio may still follow (error tests)
  // Any message, unpaced, in queue order (a second config, a hand-made chunk).
  absl::Status SendRaw(speechllm::v1::StreamingRecognizeRequest request);
  // Sends the rest of the audio, then half-closes. Later sends fail.
  absl::Status CloseSend();
  // Ends the input now, as a microphone that is switched off: audio not yet handed to gRPC
  // (pacing holds it back) is dropped, controls queued stay, and the half-close follows them.
  // A container cannot end at any byte: Ogg Opus is sent on, unpaced, to the end of the page
  // begun, and the rest dropped; other containers (WebM, FLAC, WAV, sniffed) go out whole,
  // unpaced. Responses keep coming until the server ends the call. Later sends fail.
  absl::Status StopAudio();

  // Reads stop after the current one until ResumeReads(): a client that stops reading. May be
  // called before Start().
  void PauseReads();
  void ResumeReads();
  // Cancels the call (status CANCELLED unless it already ended).
  void Cancel();

  // Blocks until the call ends and returns its status (also resumes paused reads). Repeatable.
  grpc::Status Await();
  // Waits at most `timeout`; true if the call has ended.
  bool WaitForDone(absl::Duration timeout);

  // Snapshots; safe while the call runs.
  std::vector<ResponseRecord> responses() const;
  std::vector<SentChunk> sent_chunks() const;
  Clock::time_point start_time() const;
  Clock::time_point done_time() const;  // epoch while running
  absl::Duration audio_queued() const;  // all audio passed to SendAudio/SendSamples
  int64_t chunk_size_bytes() const { return chunk_size_bytes_; }
  int64_t bytes_per_second() const { return bytes_per_second_; }

 private:
  class Reactor;
  struct Outgoing {
    enum class Kind { kMessage, kAudio, kHalfClose } kind = Kind::kMessage;
    speechllm::v1::StreamingRecognizeRequest request;
    absl::Duration audio_end;  // kAudio: offset of the chunk's end
  };

  absl::Status CheckOpen() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues whole chunks of pending_audio_ (and the remainder too when `all`).
  void QueueChunks(bool all) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // SendAudio (all = false: whole chunks only) and SendAudioNow (all = true: everything pending).
  absl::Status QueueAudio(absl::string_view bytes, bool all) ABSL_LOCKS_EXCLUDED(mu_);
  void QueueControl(speechllm::v1::Control control) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriterLoop();
  // After StopAudio(): whether `chunk` (its data cut to the end of an Ogg page) still goes out.
  // ResponseRecord::audio_captured for a response arriving at `at`.
  absl::Duration AudioCapturedLocked(Clock::time_point at, absl::Duration audio_sent) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool AudioAfterStop(speechllm::v1::StreamingRecognizeRequest* chunk)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnResponse(const speechllm::v1::StreamingRecognizeResponse& response);
  // Starts the next read unless one is in flight, reads are paused or the stream ended.
  void StartReadIfWanted();

  speechllm::v1::StreamingSpeech::StubInterface* const stub_;
  const StreamingClientOptions options_;
  int64_t bytes_per_second_ = 0;
  int64_t chunk_size_bytes_ = 0;
  grpc::ClientContext context_;
  std::unique_ptr<Reactor> reactor_;
  std::thread writer_;
  ResponseCallback callback_;

  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool reactor_ready_ ABSL_GUARDED_BY(mu_) = false;  // reactor_ is bound to the call
  bool send_closed_ ABSL_GUARDED_BY(mu_) = false;    // CloseSend() was called
  bool audio_stopped_ ABSL_GUARDED_BY(mu_) = false;  // StopAudio() was called
  // After StopAudio() on a container: what the writer still sends (AudioAfterStop).
  enum class StopCut {
    kDropAll,
    kToPageEnd,
    kSendAll
  } stop_cut_ ABSL_GUARDED_BY(mu_) = StopCut::kDropAll;
  bool page_ended_ ABSL_GUARDED_BY(mu_) = false;         // kToPageEnd: the page begun was sent
  bool write_stream_dead_ ABSL_GUARDED_BY(mu_) = false;  // a write failed, or cancelled
  bool read_stream_ended_ ABSL_GUARDED_BY(mu_) = false;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool last_write_ok_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool read_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  std::deque<Outgoing> queue_ ABSL_GUARDED_BY(mu_);
  std::string pending_audio_ ABSL_GUARDED_BY(mu_);
  int64_t audio_bytes_queued_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  Clock::time_point start_time_ ABSL_GUARDED_BY(mu_);
  Clock::time_point done_time_ ABSL_GUARDED_BY(mu_);
  Clock::time_point pacing_start_ ABSL_GUARDED_BY(mu_);  // first audio queued
  bool pacing_started_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<ResponseRecord> responses_ ABSL_GUARDED_BY(mu_);
  std::vector<SentChunk> sent_chunks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace speechllm::client

#endif  // SPEECHLLM_CLIENT_SPEECH_CLIENT_H_
