#include "client/opus_encoder.h"

#include <utility>

#include <opusenc.h>

#include "absl/strings/str_cat.h"

namespace speechllm::client {

absl::StatusOr<std::unique_ptr<OggOpusEncoder>> OggOpusEncoder::Create(
    const OggOpusEncoderOptions& options) {
  if (options.sample_rate_hz < 8000 || options.sample_rate_hz > 48000) {
    return absl::InvalidArgumentError(
        absl::StrCat("Opus encoding: rate ", options.sample_rate_hz, " is outside 8000 to 48000"));
  }
  if (options.channels < 1 || options.channels > 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("Opus encoding: channels ", options.channels, " is outside 1 to 8"));
  }
  if (options.bitrate_bps < 6000 || options.bitrate_bps > 510000) {
    return absl::InvalidArgumentError(absl::StrCat("Opus encoding: bitrate ", options.bitrate_bps,
                                                   " is outside 6000 to 510000 bit/s"));
  }
  std::unique_ptr<OggOpusEncoder> encoder(new OggOpusEncoder());
  encoder->channels_ = options.channels;
  OpusEncCallbacks callbacks{&OggOpusEncoder::OnWrite, &OggOpusEncoder::OnClose};
  OggOpusComments* comments = ope_comments_create();
  if (comments == nullptr) return absl::InternalError("ope_comments_create failed");
  ope_comments_add(comments, "ENCODER", "speechllm-client");
  int error = OPE_OK;
  encoder->encoder_ =
      ope_encoder_create_callbacks(&callbacks, encoder.get(), comments, options.sample_rate_hz,
                                   options.channels, options.channels <= 2 ? 0 : 1, &error);
  ope_comments_destroy(comments);
  if (encoder->encoder_ == nullptr || error != OPE_OK) {
    encoder->encoder_ = nullptr;
    return absl::InternalError(
        absl::StrCat("ope_encoder_create_callbacks failed: ", ope_strerror(error)));
  }
  // libopusenc holds audio back twice: the muxing delay (how long a page may wait) and the
  // decision delay (look-ahead for its page decisions, 96,000 samples = 2 s by default). Both are
  // bounded, so live audio reaches the server within max_page_delay_ms.
  const int delay_samples = options.max_page_delay_ms * 48;  // libopusenc counts at 48 kHz
  for (const auto& [name, ctl_status] :
       {std::make_pair("bitrate",
                       ope_encoder_ctl(encoder->encoder_, OPUS_SET_BITRATE(options.bitrate_bps))),
        std::make_pair("muxing delay",
                       ope_encoder_ctl(encoder->encoder_, OPE_SET_MUXING_DELAY(delay_samples))),
        std::make_pair("decision delay", ope_encoder_ctl(encoder->encoder_,
                                                         OPE_SET_DECISION_DELAY(delay_samples)))}) {
    if (ctl_status != OPE_OK) {
      return absl::InvalidArgumentError(
          absl::StrCat("Opus encoder: cannot set the ", name, ": ", ope_strerror(ctl_status)));
    }
  }
  return encoder;
}

OggOpusEncoder::~OggOpusEncoder() {
  if (encoder_ != nullptr) ope_encoder_destroy(encoder_);
}

int OggOpusEncoder::OnWrite(void* user_data, const unsigned char* data, int length) {
  static_cast<OggOpusEncoder*>(user_data)->pending_.append(reinterpret_cast<const char*>(data),
                                                           static_cast<size_t>(length));
  return 0;
}

int OggOpusEncoder::OnClose(void* user_data) { return 0; }

absl::Status OggOpusEncoder::Write(absl::Span<const float> interleaved, std::string* out) {
  if (finished_) return absl::FailedPreconditionError("OggOpusEncoder::Write after Finish");
  if (interleaved.size() % static_cast<size_t>(channels_) != 0) {
    return absl::InvalidArgumentError("OggOpusEncoder::Write: a partial sample frame");
  }
  const int frames = static_cast<int>(interleaved.size() / static_cast<size_t>(channels_));
  if (frames > 0) {
    any_samples_ = true;
    const int error = ope_encoder_write_float(encoder_, interleaved.data(), frames);
    if (error != OPE_OK) {
      return absl::InternalError(absl::StrCat("ope_encoder_write_float: ", ope_strerror(error)));
    }
  }
  out->append(pending_);
  pending_.clear();
  return absl::OkStatus();
}

absl::Status OggOpusEncoder::Finish(std::string* out) {
  if (finished_) return absl::FailedPreconditionError("OggOpusEncoder::Finish twice");
  finished_ = true;
  if (!any_samples_) return absl::OkStatus();  // drained empty, libopusenc 0.2 aborts
  const int error = ope_encoder_drain(encoder_);
  out->append(pending_);
  pending_.clear();
  if (error != OPE_OK) {
    return absl::InternalError(absl::StrCat("ope_encoder_drain: ", ope_strerror(error)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> EncodeOggOpus(absl::Span<const float> interleaved,
                                          const OggOpusEncoderOptions& options) {
  absl::StatusOr<std::unique_ptr<OggOpusEncoder>> encoder = OggOpusEncoder::Create(options);
  if (!encoder.ok()) return encoder.status();
  std::string bytes;
  if (absl::Status s = (*encoder)->Write(interleaved, &bytes); !s.ok()) return s;
  if (absl::Status s = (*encoder)->Finish(&bytes); !s.ok()) return s;
  return bytes;
}

}  // namespace speechllm::client
