// FlacDecoder: a native FLAC byte stream (RFC 9639), split anywhere across Decode() calls, decoded
// by libFLAC frame by frame: libFLAC pulls its input, so when the bytes held since the last frame
// run out inside a frame, it is aborted, flushed and retried from that frame's start later (frames
// over 64 KiB once a quarter more has come). Mono, resampled to the output rate. Owned by one
// stream's AudioDecoder; its reader thread only.
#ifndef SPEECHLLM_STREAMING_FLAC_DECODER_H_
#define SPEECHLLM_STREAMING_FLAC_DECODER_H_

#include <FLAC/stream_decoder.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "streaming/audio_decoder.h"
#include "streaming/resampler.h"

namespace speechllm::streaming {

class FlacDecoder : public AudioDecoder {
 public:
  // STREAMINFO's rate may be 8000 to kMaxFlacRateHz (192000) Hz, its channels 1 to 8; non-zero
  // declared values must equal STREAMINFO's. INTERNAL if libFLAC cannot be set up.
  static absl::StatusOr<std::unique_ptr<FlacDecoder>> Create(const AudioFormatSpec& declared,
                                                             int output_rate_hz);
  ~FlacDecoder() override;
  FlacDecoder(const FlacDecoder&) = delete;
  FlacDecoder& operator=(const FlacDecoder&) = delete;

  absl::Status Decode(absl::string_view bytes, std::vector<float>* out, int64_t* clipped) override;
  absl::Status Finish(std::vector<float>* out) override;
  absl::Status Drain(std::vector<float>* out) override;
  int64_t HeldSamples() const override {
    return resampler_ == nullptr ? 0 : resampler_->held_output_samples();
  }
  void LimitSamplesPerDecode(int64_t max_samples) override {
    max_samples_per_decode_ = max_samples;
  }
  // Decode attempts that ran out of bytes inside a frame (each re-read the frame's bytes so far).
  int64_t stalled_attempts() const { return stalled_attempts_; }

 private:
  FlacDecoder(FLAC__StreamDecoder* decoder, const AudioFormatSpec& declared, int output_rate_hz);

  // The stream offset where the metadata blocks end once `buffer_` holds them all, 0 before;
  // INVALID_ARGUMENT if the bytes are not FLAC. Each call goes on from the last block header seen.
  absl::StatusOr<int64_t> MetadataEnd();
  absl::Status ReadMetadata(int64_t metadata_end);
  // Decodes every frame `buffer_` holds whole (at the end of input: up to the stream's end).
  absl::Status DecodeFrames(std::vector<float>* out);
  // Flushes libFLAC and drops the first `consumed` bytes of `buffer_` (those of the metadata or
  // of a decoded frame; 0 after a stall), so that libFLAC reads from the rest afresh.
  void RestartAfter(size_t consumed);
  // INVALID_ARGUMENT for what libFLAC reported (error callback, else its state).
  absl::Status LibflacError(absl::string_view context) const;
  // OK while `buffer_` can be (`complete`: is) an ID3v1 tag after the last frame.
  absl::Status CheckTrailer(bool complete) const;
  absl::Status Truncated() const;
  absl::Status FrameTooLong(size_t bytes) const;

  static FLAC__StreamDecoderReadStatus Read(const FLAC__StreamDecoder*, FLAC__byte buffer[],
                                            size_t* bytes, void* self);
  static FLAC__StreamDecoderTellStatus Tell(const FLAC__StreamDecoder*, FLAC__uint64* offset,
                                            void* self);
  static FLAC__StreamDecoderWriteStatus Write(const FLAC__StreamDecoder*, const FLAC__Frame* frame,
                                              const FLAC__int32* const channels[], void* self);
  static void Metadata(const FLAC__StreamDecoder*, const FLAC__StreamMetadata* metadata,
                       void* self);
  static void Error(const FLAC__StreamDecoder*, FLAC__StreamDecoderErrorStatus status, void* self);

  FLAC__StreamDecoder* decoder_;
  const AudioFormatSpec declared_;
  const int output_rate_hz_;
  int64_t max_samples_per_decode_ = 0;  // 0: no bound

  // Bytes from the end of the last decoded frame (the stream's start until the metadata is read)
  // to the last byte received; libFLAC has been given buffer_[0, read_pos_).
  std::string buffer_;
  int64_t buffer_offset_ = 0;  // stream offset of buffer_[0]
  size_t read_pos_ = 0;
  size_t held_at_last_try_ = 0;  // buffer_.size() when a frame last ran out of bytes (0: none)
  bool end_of_input_ = false;
  bool starved_ = false;  // the read callback ran out before the end of input
  bool metadata_read_ = false;
  size_t first_block_ = 0;  // offset of the first metadata block header (0: "fLaC" not seen yet)
  size_t next_block_ = 0;   // offset of the next block header MetadataEnd() will read
  int sample_rate_hz_ = 0;  // STREAMINFO's
  int channels_ = 0;
  int bits_per_sample_ = 0;
  int max_blocksize_ = 0;
  int64_t max_frame_size_ = 0;            // STREAMINFO's; 0: not known
  size_t max_frame_bytes_ = 0;            // the most bytes one frame may take (ReadMetadata)
  bool in_trailer_ = false;               // the frames are over; an ID3v1 tag is coming
  std::unique_ptr<Resampler> resampler_;  // null when STREAMINFO's rate is the output rate

  std::vector<float>* out_ = nullptr;  // where the write callback appends, during a call
  size_t decode_start_ = 0;            // out_->size() when the current call began
  int64_t frames_ = 0;                 // FLAC frames decoded, for messages
  std::string error_;                  // the first problem a callback met
  bool lost_sync_ = false;             // ... and it was bytes where a frame must start
  bool too_long_ = false;
  int64_t stalled_attempts_ = 0;    // the write callback passed max_samples_per_decode_
  std::vector<float> interleaved_;  // one frame's samples, scaled to [-1, 1)
  std::vector<float> mono_;         // one frame's samples, mono
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_FLAC_DECODER_H_
