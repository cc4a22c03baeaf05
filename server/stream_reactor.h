// StreamReactor: one StreamingRecognize call on gRPC's callback API. Reads one message at a time
// into its Session's input half, writes the session's events with one write in flight (unsent
// partials of an utterance coalesce, finals never drop), pauses reading while the session's backlog
// is over its limit, and finishes exactly once. Implements the ResultSink (dispatcher and reader
// threads) and LimitedCall (reaper thread); owned by itself through self_, released in OnDone.
#ifndef SPEECHLLM_SERVER_STREAM_REACTOR_H_
#define SPEECHLLM_SERVER_STREAM_REACTOR_H_

#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/call_metrics.h"
#include "server/event_proto.h"
#include "server/service_context.h"
#include "server/stream_registry.h"
#include "speechllm/v1/speechllm.grpc.pb.h"
#include "streaming/audio_decoder.h"
#include "streaming/result_sink.h"
#include "streaming/session.h"

namespace speechllm::server {

class StreamReactor
    : public grpc::ServerBidiReactor<v1::StreamingRecognizeRequest, v1::StreamingRecognizeResponse>,
      public streaming::ResultSink,
      public LimitedCall,
      public std::enable_shared_from_this<StreamReactor> {
 public:
  // Creates the reactor for a new call (admission happens here) and starts reading.
  static StreamReactor* Start(ServiceContext* context, grpc::CallbackServerContext* call_context);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  void Send(streaming::SessionEvent event) override;
  void OnCapacity() override;
  void Finish(const absl::Status& status) override;

  void Expire(const absl::Status& status) override;
  void Cancel() override;

 private:
  StreamReactor(ServiceContext* context, grpc::CallbackServerContext* call_context);

  // Reader side (one read in flight, so these never run concurrently), under input_mu_ because the
  // reaper's Expire also ends the input.
  absl::Status HandleRequest() ABSL_EXCLUSIVE_LOCKS_REQUIRED(input_mu_);
  absl::Status HandleConfig(const v1::SessionConfig& config)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(input_mu_);
  absl::Status HandleAudio(const v1::AudioChunk& audio) ABSL_EXCLUSIVE_LOCKS_REQUIRED(input_mu_);
  absl::Status HandleControl(const v1::Control& control) ABSL_EXCLUSIVE_LOCKS_REQUIRED(input_mu_);
  // Starts the next read, or pauses reading while the session's backlog is over its limit (HTTP/2
  // flow control then slows the client) until OnCapacity.
  void ReadNextOrPause();
  // Ends the stream with `status`: through the session (its finals first, then the summary) when
  // there is one.
  void Fail(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(input_mu_);
  // No more messages are read or handled.
  void CloseInputLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(input_mu_);
  // End of audio (half-close or EndOfAudio): the decoder's tail, then the session's end of input.
  absl::Status EndAudio(streaming::Session* session) ABSL_EXCLUSIVE_LOCKS_REQUIRED(input_mu_);
  // Hands samples_ (decoded audio at the model's rate, arriving now) to the session and counts
  // them in the metrics when it takes them.
  absl::Status AcceptSamples(streaming::Session* session) ABSL_EXCLUSIVE_LOCKS_REQUIRED(input_mu_);
  // A Flush: the samples the decoder holds back (resampler delay) go to the session first.
  absl::Status DrainDecoder(streaming::Session* session) ABSL_EXCLUSIVE_LOCKS_REQUIRED(input_mu_);
  void SendWarning(streaming::SessionEvent::WarningCode code, const std::string& message);
  // Every gap in AudioChunk.seq is warned (API.md 2.1), at most once per second of audio so that a
  // lossy client does not get a warning per chunk: a gap within the second waits for a later chunk
  // or the end of audio, and a warning counts the gaps it stands for.
  void WarnSeqGaps(bool at_end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(input_mu_);

  // Queues a response; `event`, the session event it came from, is counted in the metrics when
  // the response is written (a response the stream drops is never counted).
  void EnqueueLocked(v1::StreamingRecognizeResponse response, bool partial,
                     std::optional<streaming::SessionEvent> event = std::nullopt)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The call ends with `status` once the queued responses are written.
  void SetFinishPendingLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishCallLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<streaming::Session> session() ABSL_LOCKS_EXCLUDED(mu_);

  ServiceContext* const ctx_;
  grpc::CallbackServerContext* const call_context_;
  std::shared_ptr<StreamReactor> self_;  // released in OnDone
  uint64_t registry_id_ = 0;
  CallMetrics metrics_;  // internally locked

  // Reader side. gRPC fills request_ while no handler runs (one read in flight); the rest is the
  // input half's, which the reaper's Expire also reaches: under input_mu_ (declared below).
  v1::StreamingRecognizeRequest request_;
  std::unique_ptr<streaming::AudioDecoder> decoder_ ABSL_GUARDED_BY(input_mu_);
  // EndAudio took the decoder's tail: nothing left to drain.
  bool decoder_finished_ ABSL_GUARDED_BY(input_mu_) = false;
  std::vector<float> samples_ ABSL_GUARDED_BY(input_mu_);
  bool end_of_audio_ ABSL_GUARDED_BY(input_mu_) = false;
  std::optional<uint64_t> last_seq_ ABSL_GUARDED_BY(input_mu_);  // AudioChunk.seq of the last one
  bool seq_numbered_ ABSL_GUARDED_BY(input_mu_) = false;         // a chunk had a seq other than 0
  // SEQ_GAP: at most one warning per second of received audio, naming the gaps it stands for.
  int64_t samples_received_ ABSL_GUARDED_BY(input_mu_) = 0;            // at the model's rate
  int64_t seq_gap_warned_at_samples_ ABSL_GUARDED_BY(input_mu_) = -1;  // -1: never
  int64_t seq_gaps_unwarned_ ABSL_GUARDED_BY(input_mu_) = 0;
  std::string seq_gap_last_ ABSL_GUARDED_BY(input_mu_);  // the latest gap not warned yet
  bool clipped_warned_ ABSL_GUARDED_BY(input_mu_) = false;
  bool flow_warned_ ABSL_GUARDED_BY(mu_) = false;  // ReadNextOrPause: reader or dispatcher

  absl::Mutex mu_;
  std::shared_ptr<streaming::Session> session_ ABSL_GUARDED_BY(mu_);
  struct Pending {
    v1::StreamingRecognizeResponse response;
    bool partial = false;
    std::optional<streaming::SessionEvent> event;  // what the metrics count once it is written
  };
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  v1::StreamingRecognizeResponse in_flight_ ABSL_GUARDED_BY(mu_);
  uint64_t response_seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // The code Finish sent, and whether OnDone counts it (CANCELLED when the client had gone first)
  // instead of FinishCallLocked.
  grpc::StatusCode finished_code_ ABSL_GUARDED_BY(mu_) = grpc::StatusCode::CANCELLED;
  bool count_at_done_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool capacity_signal_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_done_ ABSL_GUARDED_BY(mu_) = false;
  ResultExtras result_extras_ ABSL_GUARDED_BY(mu_);  // added to every transcript
  // Serializes the session's input half between the reader (OnReadDone) and the reaper (Expire).
  absl::Mutex input_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  bool input_closed_ ABSL_GUARDED_BY(input_mu_) = false;
  grpc::Status finish_status_ ABSL_GUARDED_BY(mu_);

  // Cancel() (reaper thread) against OnDone: the call context is gone after OnDone, so OnDone
  // waits for a cancel running on another thread; a cancel may also run OnDone inline on its own
  // thread, which then already holds the lock.
  absl::Mutex cancel_mu_;
  bool done_ ABSL_GUARDED_BY(cancel_mu_) = false;
  std::atomic<std::thread::id> cancelling_thread_;
};

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_STREAM_REACTOR_H_
