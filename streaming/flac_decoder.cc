#include "streaming/flac_decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "streaming/downmix.h"

namespace speechllm::streaming {
namespace {

constexpr int kMinRateHz = 8000;
constexpr int kMaxRateHz = kMaxFlacRateHz;
constexpr int kMaxChannels = 8;
// Metadata (tags, cover art, seek tables) is held whole before it is read; larger is refused.
constexpr int64_t kMaxMetadataBytes = 16 << 20;
constexpr int kStreamInfoType = 0;
constexpr int kInvalidBlockType = 127;
// Frames of ordinary streams (4,096 samples: at most 16 KiB of stereo 16-bit, usually half) are
// tried again on every call until they complete; larger ones wait for their bytes to grow.
constexpr size_t kFreeRetryBytes = 16 << 10;
// No frame is held beyond this (65,535 samples of 8 channels of 32 bits are ~2.1 MB).
constexpr int64_t kMaxFrameBytes = 4 << 20;

absl::Status Invalid(absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("FLAC: ", message));
}

uint32_t Be24(const unsigned char* p) { return (p[0] << 16) | (p[1] << 8) | p[2]; }

}  // namespace

absl::StatusOr<std::unique_ptr<FlacDecoder>> FlacDecoder::Create(const AudioFormatSpec& declared,
                                                                 int output_rate_hz) {
  FLAC__StreamDecoder* decoder = FLAC__stream_decoder_new();
  if (decoder == nullptr) return absl::InternalError("FLAC: FLAC__stream_decoder_new failed");
  std::unique_ptr<FlacDecoder> self(new FlacDecoder(decoder, declared, output_rate_hz));
  const FLAC__StreamDecoderInitStatus init = FLAC__stream_decoder_init_stream(
      decoder, &FlacDecoder::Read, /*seek=*/nullptr, &FlacDecoder::Tell, /*length=*/nullptr,
      /*eof=*/nullptr, &FlacDecoder::Write, &FlacDecoder::Metadata, &FlacDecoder::Error,
      self.get());
  if (init != FLAC__STREAM_DECODER_INIT_STATUS_OK) {
    return absl::InternalError(absl::StrCat("FLAC: the decoder did not start: ",
                                            FLAC__StreamDecoderInitStatusString[init]));
  }
  return self;
}

FlacDecoder::FlacDecoder(FLAC__StreamDecoder* decoder, const AudioFormatSpec& declared,
                         int output_rate_hz)
    : decoder_(decoder), declared_(declared), output_rate_hz_(output_rate_hz) {}

FlacDecoder::~FlacDecoder() {
  FLAC__stream_decoder_finish(decoder_);  // frees libFLAC's buffers; no MD5 check is asked for
  FLAC__stream_decoder_delete(decoder_);
}

absl::Status FlacDecoder::Decode(absl::string_view bytes, std::vector<float>* out,
                                 int64_t* /*clipped*/) {
  if (bytes.empty()) return absl::OkStatus();
  buffer_.append(bytes.data(), bytes.size());
  out_ = out;
  decode_start_ = out->size();
  if (in_trailer_) return CheckTrailer(/*complete=*/false);
  if (!metadata_read_) {
    absl::StatusOr<int64_t> metadata_end = MetadataEnd();
    if (!metadata_end.ok()) return metadata_end.status();
    if (*metadata_end == 0) return absl::OkStatus();  // not all of it yet
    if (absl::Status status = ReadMetadata(*metadata_end); !status.ok()) return status;
  }
  return DecodeFrames(out);
}

absl::StatusOr<int64_t> FlacDecoder::MetadataEnd() {
  const auto* p = reinterpret_cast<const unsigned char*>(buffer_.data());
  const size_t size = buffer_.size();
  if (first_block_ == 0) {  // before the first block header: an ID3v2 tag, then "fLaC"
    size_t pos = 0;
    // An ID3v2 tag some tools put first (libFLAC skips it too): 10 bytes, a 28-bit size of what
    // follows, 10 more with a footer.
    if (buffer_.compare(0, std::min<size_t>(3, size), "ID3", std::min<size_t>(3, size)) == 0) {
      if (size < 10) return 0;
      const int64_t tag = (int64_t{p[6] & 0x7F} << 21) | ((p[7] & 0x7F) << 14) |
                          ((p[8] & 0x7F) << 7) | (p[9] & 0x7F);
      pos = 10 + static_cast<size_t>(tag) + ((p[5] & 0x10) != 0 ? 10 : 0);
    }
    if (static_cast<int64_t>(pos) > kMaxMetadataBytes) {
      return Invalid(absl::StrCat("an ID3v2 tag of ", pos, " bytes precedes the stream, more ",
                                  "than the ", kMaxMetadataBytes, " accepted"));
    }
    if (size <= pos) return 0;
    const size_t magic = std::min<size_t>(4, size - pos);
    if (buffer_.compare(pos, magic, "fLaC", magic) != 0) {
      return Invalid(
          absl::StrCat(pos == 0 ? "" : absl::StrCat("after its ", pos, "-byte ID3v2 tag, "),
                       "the stream does not start with \"fLaC\" (native FLAC); it starts with \"",
                       absl::CHexEscape(absl::string_view(buffer_).substr(pos, 4)), "\""));
    }
    if (magic < 4) return 0;
    first_block_ = pos + 4;
    next_block_ = first_block_;
  }
  // Block headers (RFC 9639 8.1): a last-block flag, a 7-bit type and a 24-bit length. The scan
  // goes on from where the previous call stopped.
  while (true) {
    if (size < next_block_ + 4) return 0;
    const int type = p[next_block_] & 0x7F;
    const bool last = (p[next_block_] & 0x80) != 0;
    if (next_block_ == first_block_ && type != kStreamInfoType) {
      return Invalid("the first metadata block is not STREAMINFO");
    }
    if (type == kInvalidBlockType) return Invalid("a metadata block of the invalid type 127");
    const size_t end = next_block_ + 4 + Be24(p + next_block_ + 1);
    if (static_cast<int64_t>(end) > kMaxMetadataBytes) {
      return Invalid(
          absl::StrCat("the metadata blocks are larger than ", kMaxMetadataBytes, " bytes"));
    }
    if (last) return size < end ? 0 : static_cast<int64_t>(end);
    next_block_ = end;
  }
}

absl::Status FlacDecoder::ReadMetadata(int64_t metadata_end) {
  read_pos_ = 0;
  if (!FLAC__stream_decoder_process_until_end_of_metadata(decoder_) || !error_.empty() ||
      starved_) {
    return LibflacError("in the metadata");
  }
  if (sample_rate_hz_ < kMinRateHz || sample_rate_hz_ > kMaxRateHz) {
    return UnsupportedAudioError(absl::StrCat("FLAC: STREAMINFO's sample rate ", sample_rate_hz_,
                                              " Hz is outside ", kMinRateHz, " to ", kMaxRateHz));
  }
  if (channels_ < 1 || channels_ > kMaxChannels) {
    return Invalid(
        absl::StrCat("STREAMINFO's ", channels_, " channels are outside 1 to ", kMaxChannels));
  }
  if (absl::Status status =
          CheckDeclaredFormat("FLAC", "STREAMINFO", sample_rate_hz_, channels_, declared_);
      !status.ok()) {
    return status;
  }
  if (sample_rate_hz_ != output_rate_hz_) {
    absl::StatusOr<std::unique_ptr<Resampler>> resampler =
        Resampler::Create(sample_rate_hz_, output_rate_hz_);
    if (!resampler.ok()) return resampler.status();
    resampler_ = *std::move(resampler);
  }
  // A frame is never larger than its samples uncompressed (encoders fall back to verbatim
  // subframes), plus headers; the side channel of stereo takes one bit more.
  const int64_t verbatim = int64_t{max_blocksize_} * channels_ * (bits_per_sample_ + 1) / 8;
  max_frame_bytes_ = static_cast<size_t>(
      std::min<int64_t>(kMaxFrameBytes, std::max<int64_t>(verbatim, max_frame_size_) + 1024));
  metadata_read_ = true;
  // Frames start where the metadata ends: what libFLAC read beyond it is given again.
  RestartAfter(static_cast<size_t>(metadata_end));
  return absl::OkStatus();
}

absl::Status FlacDecoder::DecodeFrames(std::vector<float>* out) {
  out_ = out;
  while (true) {
    // A frame that did not complete is tried again from its start; past kFreeRetryBytes only once
    // a quarter more has come, so that a large frame sent a few bytes at a time costs a bounded
    // multiple of its size rather than its size per message.
    if (!end_of_input_ && buffer_.size() > kFreeRetryBytes &&
        buffer_.size() < held_at_last_try_ + held_at_last_try_ / 4) {
      return absl::OkStatus();
    }
    const int64_t frames_before = frames_;
    starved_ = false;
    const bool ok = FLAC__stream_decoder_process_single(decoder_);
    if (too_long_) {
      // The write callback stopped at the bound: produced > max_samples_per_decode_.
      return CheckSamplesPerDecode("FLAC", static_cast<int64_t>(out->size() - decode_start_),
                                   max_samples_per_decode_, output_rate_hz_,
                                   absl::StrCat("frame ", frames_));
    }
    if (lost_sync_ && frames_ == frames_before &&
        buffer_.compare(0, std::min<size_t>(3, buffer_.size()), "TAG",
                        std::min<size_t>(3, buffer_.size())) == 0) {
      // An ID3v1 tag after the last frame (128 bytes, "TAG"): held until the end is known.
      in_trailer_ = true;
      return CheckTrailer(/*complete=*/end_of_input_);
    }
    if (!error_.empty()) {
      // At the end of input, a frame that was waiting for bytes was cut short, whatever libFLAC
      // made of its remains.
      if (end_of_input_ && held_at_last_try_ > 0) return Truncated();
      return LibflacError("");
    }
    if (starved_) {
      // A frame not complete yet: start it again from its first byte when more comes.
      RestartAfter(0);
      held_at_last_try_ = buffer_.size();
      ++stalled_attempts_;
      if (buffer_.size() > max_frame_bytes_) return FrameTooLong(buffer_.size());
      return absl::OkStatus();
    }
    const FLAC__StreamDecoderState state = FLAC__stream_decoder_get_state(decoder_);
    if (state == FLAC__STREAM_DECODER_END_OF_STREAM) {
      return buffer_.empty() ? absl::OkStatus() : Truncated();
    }
    if (!ok) return LibflacError("");
    if (frames_ == frames_before) return absl::OkStatus();  // nothing decoded, nothing to wait on
    // The frame is done: forget its bytes, and flush libFLAC so that the next frame starts from
    // them afresh, as after a stall. (libFLAC 1.4 fills a gap in frame numbers with silence, but
    // only when it remembers the previous frame; flushing after every frame makes the samples the
    // same for any split.)
    FLAC__uint64 position = 0;
    if (!FLAC__stream_decoder_get_decode_position(decoder_, &position) ||
        static_cast<int64_t>(position) < buffer_offset_ ||
        static_cast<int64_t>(position) > buffer_offset_ + static_cast<int64_t>(read_pos_)) {
      return absl::InternalError("FLAC: libFLAC's decode position is not where a frame ended");
    }
    const size_t done = static_cast<size_t>(static_cast<int64_t>(position) - buffer_offset_);
    if (done > max_frame_bytes_) return FrameTooLong(done);
    RestartAfter(done);
    held_at_last_try_ = 0;
  }
}

void FlacDecoder::RestartAfter(size_t consumed) {
  FLAC__stream_decoder_flush(decoder_);
  buffer_.erase(0, consumed);
  buffer_offset_ += static_cast<int64_t>(consumed);
  read_pos_ = 0;
}

absl::Status FlacDecoder::CheckTrailer(bool complete) const {
  constexpr size_t kId3v1Bytes = 128;
  const size_t n = std::min<size_t>(3, buffer_.size());
  if (buffer_.size() > kId3v1Bytes || (complete && buffer_.size() != kId3v1Bytes) ||
      buffer_.compare(0, n, "TAG", n) != 0) {
    return Invalid(absl::StrCat("after frame ", frames_, ", ", buffer_.size(),
                                " bytes that are neither a frame nor a 128-byte ID3v1 tag"));
  }
  return absl::OkStatus();
}

absl::Status FlacDecoder::Truncated() const {
  return Invalid(absl::StrCat("the stream ends inside a frame: ", buffer_.size(),
                              " bytes of an incomplete (truncated) frame after frame ", frames_));
}

absl::Status FlacDecoder::FrameTooLong(size_t bytes) const {
  return Invalid(absl::StrCat(
      "frame ", frames_ + 1, " takes ", bytes, " bytes or more, beyond the ", max_frame_bytes_,
      " STREAMINFO allows (its block size, channels and ", "bits uncompressed)"));
}

absl::Status FlacDecoder::Finish(std::vector<float>* out) {
  end_of_input_ = true;
  if (!metadata_read_) {
    if (buffer_.empty()) return Invalid("no FLAC data in the input");
    absl::StatusOr<int64_t> metadata_end = MetadataEnd();
    if (!metadata_end.ok()) return metadata_end.status();
    return Invalid(
        absl::StrCat("the stream ends inside its metadata blocks (", buffer_.size(), " bytes)"));
  }
  decode_start_ = out->size();
  const absl::Status status = in_trailer_ ? CheckTrailer(/*complete=*/true) : DecodeFrames(out);
  if (resampler_ != nullptr) {
    if (absl::Status flushed = resampler_->Flush(out); !flushed.ok()) return flushed;
  }
  return status;
}

absl::Status FlacDecoder::Drain(std::vector<float>* out) {
  if (metadata_read_ && !in_trailer_) {  // a large frame completed while waiting to grow
    held_at_last_try_ = 0;
    decode_start_ = out->size();
    if (absl::Status status = DecodeFrames(out); !status.ok()) return status;
  }
  return resampler_ == nullptr ? absl::OkStatus() : resampler_->Drain(out);
}

absl::Status FlacDecoder::LibflacError(absl::string_view context) const {
  const std::string where =
      context.empty() ? absl::StrCat("after frame ", frames_) : std::string(context);
  if (!error_.empty()) return Invalid(absl::StrCat(error_, " (", where, ")"));
  if (starved_) return Invalid(absl::StrCat("the metadata blocks are malformed (", where, ")"));
  const FLAC__StreamDecoderState state = FLAC__stream_decoder_get_state(decoder_);
  return Invalid(absl::StrCat("libFLAC stopped in state ", FLAC__StreamDecoderStateString[state],
                              " (", where, ")"));
}

FLAC__StreamDecoderReadStatus FlacDecoder::Read(const FLAC__StreamDecoder*, FLAC__byte buffer[],
                                                size_t* bytes, void* self) {
  auto* d = static_cast<FlacDecoder*>(self);
  const size_t n = std::min(*bytes, d->buffer_.size() - d->read_pos_);
  *bytes = n;
  if (n == 0) {
    if (d->end_of_input_) return FLAC__STREAM_DECODER_READ_STATUS_END_OF_STREAM;
    d->starved_ = true;
    return FLAC__STREAM_DECODER_READ_STATUS_ABORT;
  }
  // Bytes of the stream, not a string: nothing to terminate.
  // NOLINTNEXTLINE(bugprone-not-null-terminated-result)
  std::memcpy(buffer, d->buffer_.data() + d->read_pos_, n);
  d->read_pos_ += n;
  return FLAC__STREAM_DECODER_READ_STATUS_CONTINUE;
}

FLAC__StreamDecoderTellStatus FlacDecoder::Tell(const FLAC__StreamDecoder*, FLAC__uint64* offset,
                                                void* self) {
  auto* d = static_cast<FlacDecoder*>(self);
  *offset = static_cast<FLAC__uint64>(d->buffer_offset_ + static_cast<int64_t>(d->read_pos_));
  return FLAC__STREAM_DECODER_TELL_STATUS_OK;
}

void FlacDecoder::Metadata(const FLAC__StreamDecoder*, const FLAC__StreamMetadata* metadata,
                           void* self) {
  auto* d = static_cast<FlacDecoder*>(self);
  if (metadata->type != FLAC__METADATA_TYPE_STREAMINFO) return;
  const FLAC__StreamMetadata_StreamInfo& info = metadata->data.stream_info;
  d->sample_rate_hz_ = static_cast<int>(info.sample_rate);
  d->channels_ = static_cast<int>(info.channels);
  d->bits_per_sample_ = static_cast<int>(info.bits_per_sample);
  d->max_blocksize_ = static_cast<int>(info.max_blocksize);
  d->max_frame_size_ = static_cast<int64_t>(info.max_framesize);
}

FLAC__StreamDecoderWriteStatus FlacDecoder::Write(const FLAC__StreamDecoder*,
                                                  const FLAC__Frame* frame,
                                                  const FLAC__int32* const channels[], void* self) {
  auto* d = static_cast<FlacDecoder*>(self);
  const FLAC__FrameHeader& header = frame->header;
  if (static_cast<int>(header.channels) != d->channels_ ||
      static_cast<int>(header.sample_rate) != d->sample_rate_hz_) {
    d->error_ = absl::StrCat("frame ", d->frames_ + 1, " has ", header.channels, " channel(s) at ",
                             header.sample_rate, " Hz, STREAMINFO ", d->channels_, " at ",
                             d->sample_rate_hz_, " Hz");
    return FLAC__STREAM_DECODER_WRITE_STATUS_ABORT;
  }
  ++d->frames_;
  // Full scale is 2^(bits - 1): 16-bit samples become s / 32768, as PCM_S16LE's do.
  const float scale = std::ldexp(1.0f, -static_cast<int>(header.bits_per_sample - 1));
  const size_t samples = header.blocksize;
  d->interleaved_.resize(samples * d->channels_);
  for (size_t i = 0; i < samples; ++i) {
    for (int c = 0; c < d->channels_; ++c) {
      d->interleaved_[i * d->channels_ + c] = static_cast<float>(channels[c][i]) * scale;
    }
  }
  std::vector<float>* target = d->resampler_ == nullptr ? d->out_ : &d->mono_;
  d->mono_.clear();
  AppendDownmix(d->interleaved_.data(), samples, d->channels_, target);
  if (d->resampler_ != nullptr) {
    if (absl::Status status = d->resampler_->Process(d->mono_, d->out_); !status.ok()) {
      d->error_ = std::string(status.message());
      return FLAC__STREAM_DECODER_WRITE_STATUS_ABORT;
    }
  }
  const int64_t produced = static_cast<int64_t>(d->out_->size() - d->decode_start_);
  if (d->max_samples_per_decode_ > 0 && produced > d->max_samples_per_decode_) {
    d->too_long_ = true;
    return FLAC__STREAM_DECODER_WRITE_STATUS_ABORT;
  }
  return FLAC__STREAM_DECODER_WRITE_STATUS_CONTINUE;
}

void FlacDecoder::Error(const FLAC__StreamDecoder*, FLAC__StreamDecoderErrorStatus status,
                        void* self) {
  auto* d = static_cast<FlacDecoder*>(self);
  if (!d->error_.empty()) return;
  d->lost_sync_ = status == FLAC__STREAM_DECODER_ERROR_STATUS_LOST_SYNC;
  switch (status) {
    case FLAC__STREAM_DECODER_ERROR_STATUS_LOST_SYNC:
      d->error_ = "bytes that are not a frame where a frame must start (lost sync)";
      break;
    case FLAC__STREAM_DECODER_ERROR_STATUS_BAD_HEADER:
      d->error_ = "a corrupt frame header";
      break;
    case FLAC__STREAM_DECODER_ERROR_STATUS_FRAME_CRC_MISMATCH:
      d->error_ = "a frame whose CRC does not match (corrupted data)";
      break;
    default:
      d->error_ = FLAC__StreamDecoderErrorStatusString[status];
      break;
  }
}

}  // namespace speechllm::streaming
