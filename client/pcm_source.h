// Audio to send: WAV files converted to raw PCM bytes (or to Ogg Opus), containers as they are,
// and the byte-rate arithmetic of an AudioFormat (live PCM from stdin: pcm_stream_reader.h). Used
// by the client CLI, the load test and the tests; stateless, callable from any thread.
#ifndef SPEECHLLM_CLIENT_PCM_SOURCE_H_
#define SPEECHLLM_CLIENT_PCM_SOURCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "speechllm/v1/speechllm.pb.h"

namespace speechllm::client {

using Encoding = speechllm::v1::AudioFormat::Encoding;

// Audio bytes in `format` (encoding, sample rate, channels).
struct PcmAudio {
  std::string data;
  speechllm::v1::AudioFormat format;
  // Containers (OGG_OPUS, WEBM_OPUS, FLAC): the audio's duration as read from the stream, else 0.
  double container_seconds = 0;
  // Seconds of audio in `data`: from the byte rate, else container_seconds.
  double duration_seconds() const;
};

// Bytes per sample of one channel: 2 (PCM_S16LE), 4 (PCM_F32LE), 1 (MULAW, ALAW), 0 (containers
// and unknown values).
int BytesPerSample(Encoding encoding);
// Bytes per second of `format` (channels 0 counts as 1); 0 when it has no fixed byte rate
// (containers, unknown encodings, a rate or channel count <= 0).
int64_t BytesPerSecond(const speechllm::v1::AudioFormat& format);

// Interleaved float samples in [-1, 1] to little-endian signed 16-bit PCM (clipped, rounded).
std::string EncodePcmS16le(absl::Span<const float> samples);
// Little-endian signed 16-bit PCM to interleaved floats (v / 32768); a trailing odd byte is
// ignored.
std::vector<float> DecodePcmS16le(absl::string_view bytes);
// Interleaved float samples to little-endian IEEE float PCM, bit for bit.
std::string EncodePcmF32le(absl::Span<const float> samples);
// Samples to bytes of `encoding` (PCM_S16LE or PCM_F32LE); INVALID_ARGUMENT for any other.
absl::StatusOr<std::string> EncodeSamples(absl::Span<const float> samples, Encoding encoding);

// Reads a WAV file (any format engine/io reads) as PCM at the file's rate and channel count.
// `encoding`: PCM_S16LE (default) or PCM_F32LE convert the samples; WAV sends the file's bytes
// unchanged (a container the server parses). NOT_FOUND if unreadable, INVALID_ARGUMENT if the file
// is not a supported WAV or `encoding` is none of those three.
absl::StatusOr<PcmAudio> ReadWavAsPcm(const std::string& path,
                                      Encoding encoding = speechllm::v1::AudioFormat::PCM_S16LE);

// Reads an Ogg Opus file (.opus/.ogg, recognized by its "OggS" magic) to send unchanged as
// OGG_OPUS (rate and channels 0: the server reads the OpusHead). container_seconds comes from the
// last page's granule position minus the pre-skip. INVALID_ARGUMENT if it is not Ogg Opus.
absl::StatusOr<PcmAudio> ReadOggOpusFile(const std::string& path);
// Reads a WAV file and encodes it as Ogg Opus at `bitrate_bps` (client/opus_encoder.h).
absl::StatusOr<PcmAudio> ReadWavAsOggOpus(const std::string& path, int bitrate_bps);
// A WAV ("RIFF": PCM_S16LE at the file's rate and channels), Ogg Opus ("OggS"), WebM (sent as
// WEBM_OPUS) or FLAC file (client/container_file.h).
absl::StatusOr<PcmAudio> ReadAudioFile(const std::string& path);

}  // namespace speechllm::client

#endif  // SPEECHLLM_CLIENT_PCM_SOURCE_H_
