// AudioDecoder: bytes of one stream's audio encoding in, mono float samples at the model's rate
// out, incrementally: any split of the byte stream across Decode() calls gives the same samples
// bit for bit (packet encodings excepted: there each call is one packet). One decoder per stream,
// owned and called by the thread that reads that stream (gRPC reader, Recognize handler, tests);
// not thread-safe. Create() picks the implementation for an encoding.
#ifndef SPEECHLLM_STREAMING_AUDIO_DECODER_H_
#define SPEECHLLM_STREAMING_AUDIO_DECODER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace speechllm::streaming {

enum class AudioEncoding {
  kPcmS16le,    // little-endian signed 16-bit, interleaved channels
  kPcmF32le,    // little-endian IEEE float, interleaved channels; NaN/Inf is an error
  kMulaw,       // G.711 mu-law, one byte per sample
  kAlaw,        // G.711 A-law, one byte per sample
  kOggOpus,     // an Ogg Opus byte stream (RFC 7845), split anywhere
  kOpusPacket,  // raw Opus packets (RFC 6716), exactly one per Decode() call
  kWebmOpus,    // a WebM (Matroska) byte stream with an Opus track (MediaRecorder), split anywhere
  kFlac,        // a native FLAC byte stream (RFC 9639), split anywhere
  kSniffed,  // WAV, Ogg Opus, WebM Opus or FLAC, told by the stream's first bytes (SniffingDecoder)
  kWav,      // a WAV file streamed as written (WavStreamDecoder), split anywhere
};

// FLAC files carry their own rate, which may be above the 48 kHz of raw PCM (STREAMINFO's rate
// must be 8000 to this).
inline constexpr int kMaxFlacRateHz = 192000;

// The declared format. sample_rate_hz and channels describe raw PCM and G.711 bytes (8000 to
// 48000 Hz, 1 to 8 channels). For kOggOpus and kWebmOpus a non-zero sample_rate_hz must be 48000
// or the OpusHead's input rate, and a non-zero channels the OpusHead's channel count (0 =
// anything). For kFlac non-zero values must be STREAMINFO's, for kWav the fmt chunk's; for
// kSniffed, those of the container found.
// For kOpusPacket channels (0 = 1) is the decoder's channel count; the rate is ignored.
struct AudioFormatSpec {
  AudioEncoding encoding = AudioEncoding::kPcmS16le;
  int sample_rate_hz = 16000;
  int channels = 1;
};

class AudioDecoder {
 public:
  virtual ~AudioDecoder() = default;

  // A decoder for `format` producing mono samples at `output_rate_hz` (8000 to 48000). Raw PCM and
  // G.711 at another rate are resampled with libsoxr (Resampler, SOXR_HQ); Opus is decoded at
  // the output rate by libopus. INVALID_ARGUMENT naming the field for an unsupported rate or
  // channel count.
  static absl::StatusOr<std::unique_ptr<AudioDecoder>> Create(const AudioFormatSpec& format,
                                                              int output_rate_hz);

  // Decodes the next bytes, appending samples to `out`. INVALID_ARGUMENT saying what is wrong for
  // malformed input (non-finite floats, a corrupt packet, bytes that are not an Ogg page). After an
  // error the decoder must not be used again. `clipped` (optional) counts samples clamped to
  // [-1, 1].
  virtual absl::Status Decode(absl::string_view bytes, std::vector<float>* out,
                              int64_t* clipped) = 0;
  // End of input: appends the samples still held (resampler delay) and returns INVALID_ARGUMENT
  // when an incomplete sample, page or packet is left over.
  virtual absl::Status Finish(std::vector<float>* out) = 0;
  // A client's Flush: appends the samples held back (the resampler's delay) while the input goes
  // on, so that everything received so far reaches the utterance being finalized. Bytes that are
  // not a whole sample or packet yet stay. Decoders that hold no samples append nothing.
  virtual absl::Status Drain(std::vector<float>* /*out*/) { return absl::OkStatus(); }

  // True when every Decode() call must carry exactly one whole packet, so chunk boundaries are
  // packet boundaries and callers must neither split nor join chunks (raw Opus). False for byte
  // streams, which callers may cut anywhere.
  virtual bool ChunksArePackets() const { return false; }

  // Samples at the output rate that the input decoded so far still holds back (a resampler's
  // delay; 0 for decoders at the output rate and after Finish or Drain). The samples appended so
  // far plus these are the input's duration: what a stream reports as received.
  virtual int64_t HeldSamples() const { return 0; }

  // Bounds the samples one Decode() call may append (0, the default: no bound); past it the call
  // fails with an AudioTooLongError. Decoders whose output can outgrow their input without limit
  // check it (Ogg Opus: a 2-byte packet holds 120 ms, so 1 MiB can hold hours). PCM and G.711
  // check it before decoding anything: one byte of 8 kHz G.711 is two samples at 16 kHz, so the
  // 64 MiB of a Recognize request would otherwise hold hours of float samples (GiBs). Behind the
  // resampler the bound is scaled to the input rate.
  virtual void LimitSamplesPerDecode(int64_t max_samples) = 0;
};

// Errors about NaN/Inf float samples (INVALID_ARGUMENT with a payload), so that the server can
// tell them (NON_FINITE_AUDIO) from undecodable bytes (AUDIO_DECODE_ERROR).
absl::Status NonFiniteAudioError(absl::string_view message);
bool IsNonFiniteAudioError(const absl::Status& status);
// Errors about audio in a format, rate or codec the decoders do not take (a WAV at 96 kHz, a WebM
// with a Vorbis track), as opposed to damaged bytes: INVALID_ARGUMENT with a payload, so that the
// server can say UNSUPPORTED_ENCODING instead of AUDIO_DECODE_ERROR.
absl::Status UnsupportedAudioError(absl::string_view message);
bool IsUnsupportedAudioError(const absl::Status& status);
// Errors about more decoded audio than LimitSamplesPerDecode allows (INVALID_ARGUMENT with a
// payload), so that the server can name its own limit (CHUNK_TOO_LARGE, AUDIO_TOO_LONG).
absl::Status AudioTooLongError(absl::string_view message);
bool IsAudioTooLongError(const absl::Status& status);
// OK when `num_frames` sample frames stay within `max_frames` (0: no bound); otherwise the
// AudioTooLongError that raw decoders (PCM, G.711) give before decoding a call's bytes.
absl::Status CheckFramesPerDecode(absl::string_view encoding_name, int64_t num_frames,
                                  int64_t max_frames);
// OK while the `produced` samples (at `output_rate_hz`) of one call stay within `max_samples` (0:
// no bound); otherwise the AudioTooLongError of decoders whose output can outgrow their input
// (Opus, FLAC), naming the packet or frame (`where`) that passed it.
absl::Status CheckSamplesPerDecode(absl::string_view encoding_name, int64_t produced,
                                   int64_t max_samples, int output_rate_hz,
                                   absl::string_view where);
// Errors about a declared rate or channel count that the container's header contradicts
// (INVALID_ARGUMENT with a payload naming the config field, "sample_rate_hz" or "channels"), so
// that Recognize, which has the config and the whole file at once, can call them BAD_CONFIG.
absl::Status DeclaredFormatError(absl::string_view field, absl::string_view message);
// The field a DeclaredFormatError names; empty for every other status.
std::string DeclaredFormatField(const absl::Status& status);
// OK unless `declared` names a rate or channel count (non-zero) other than the `rate_hz` and
// `channels` the container's `header` ("STREAMINFO", "the fmt chunk") says; a DeclaredFormatError
// starting with `encoding_name` and naming both otherwise.
absl::Status CheckDeclaredFormat(absl::string_view encoding_name, absl::string_view header,
                                 int rate_hz, int channels, const AudioFormatSpec& declared);

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_AUDIO_DECODER_H_
