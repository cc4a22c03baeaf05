#include "client/pcm_source.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "engine/io/wav_reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace speechllm::client {
namespace {

using speechllm::v1::AudioFormat;

int16_t SampleAt(const std::string& bytes, size_t i) {
  int16_t v;
  std::memcpy(&v, bytes.data() + 2 * i, 2);
  return v;
}

std::string WriteTempFile(const std::string& name, const std::string& bytes) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST(PcmSourceTest, EncodesS16leWithRoundingAndClipping) {
  const std::vector<float> samples = {0.0f, 0.5f, -0.5f, 1.0f, -1.0f, 2.0f, -3.0f, 1.0f / 32768};
  const std::string bytes = EncodePcmS16le(samples);
  ASSERT_EQ(bytes.size(), 2 * samples.size());
  EXPECT_EQ(SampleAt(bytes, 0), 0);
  EXPECT_EQ(SampleAt(bytes, 1), 16384);
  EXPECT_EQ(SampleAt(bytes, 2), -16384);
  EXPECT_EQ(SampleAt(bytes, 3), 32767);
  EXPECT_EQ(SampleAt(bytes, 4), -32768);
  EXPECT_EQ(SampleAt(bytes, 5), 32767);
  EXPECT_EQ(SampleAt(bytes, 6), -32768);
  EXPECT_EQ(SampleAt(bytes, 7), 1);
  // Little-endian byte order, independent of the host.
  EXPECT_EQ(static_cast<uint8_t>(bytes[2]), 0x00);
  EXPECT_EQ(static_cast<uint8_t>(bytes[3]), 0x40);
  // And back: v / 32768, a trailing odd byte ignored.
  EXPECT_EQ(DecodePcmS16le(bytes + "x"),
            (std::vector<float>{0.0f, 0.5f, -0.5f, 32767.0f / 32768, -1.0f, 32767.0f / 32768, -1.0f,
                                1.0f / 32768}));
}

TEST(PcmSourceTest, EncodesF32leBitExactAndRejectsOtherEncodings) {
  const std::vector<float> samples = {0.25f, -1.5f};
  const std::string bytes = EncodePcmF32le(samples);
  ASSERT_EQ(bytes.size(), 8u);
  float back[2];
  std::memcpy(back, bytes.data(), 8);
  EXPECT_EQ(back[0], 0.25f);
  EXPECT_EQ(back[1], -1.5f);
  EXPECT_EQ(EncodeSamples(samples, AudioFormat::MULAW).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*EncodeSamples(samples, AudioFormat::PCM_F32LE), bytes);
}

TEST(PcmSourceTest, BytesPerSecondFollowsEncodingRateAndChannels) {
  AudioFormat format;
  format.set_encoding(AudioFormat::PCM_S16LE);
  format.set_sample_rate_hz(16000);
  EXPECT_EQ(BytesPerSecond(format), 32000);  // channels 0 counts as 1
  format.set_channels(2);
  EXPECT_EQ(BytesPerSecond(format), 64000);
  format.set_encoding(AudioFormat::PCM_F32LE);
  EXPECT_EQ(BytesPerSecond(format), 128000);
  format.set_encoding(AudioFormat::MULAW);
  format.set_channels(1);
  format.set_sample_rate_hz(8000);
  EXPECT_EQ(BytesPerSecond(format), 8000);
  format.set_encoding(AudioFormat::OGG_OPUS);
  EXPECT_EQ(BytesPerSecond(format), 0);
  format.set_encoding(AudioFormat::PCM_S16LE);
  format.set_sample_rate_hz(0);
  EXPECT_EQ(BytesPerSecond(format), 0);
}

TEST(PcmSourceTest, ReadsWavAsS16leAtTheFileRateAndChannels) {
  std::vector<float> samples;
  for (int i = 0; i < 2 * 2205; ++i) samples.push_back(((i * 37) % 2001 - 1000) / 1024.0f);
  const std::string path =
      WriteTempFile("pcm_source_stereo.wav", engine::EncodeWav16(samples, 22050, 2));

  absl::StatusOr<PcmAudio> audio = ReadWavAsPcm(path);
  ASSERT_TRUE(audio.ok()) << audio.status();
  EXPECT_EQ(audio->format.encoding(), AudioFormat::PCM_S16LE);
  EXPECT_EQ(audio->format.sample_rate_hz(), 22050);
  EXPECT_EQ(audio->format.channels(), 2);
  EXPECT_NEAR(audio->duration_seconds(), 0.1, 1e-9);
  // 16-bit WAV -> floats -> S16LE is lossless.
  EXPECT_EQ(audio->data, EncodePcmS16le(samples));

  absl::StatusOr<PcmAudio> f32 = ReadWavAsPcm(path, AudioFormat::PCM_F32LE);
  ASSERT_TRUE(f32.ok()) << f32.status();
  EXPECT_EQ(f32->data.size(), samples.size() * 4);

  absl::StatusOr<PcmAudio> as_wav = ReadWavAsPcm(path, AudioFormat::WAV);
  ASSERT_TRUE(as_wav.ok()) << as_wav.status();
  EXPECT_EQ(as_wav->data, engine::EncodeWav16(samples, 22050, 2));
  EXPECT_EQ(as_wav->format.encoding(), AudioFormat::WAV);
}

TEST(PcmSourceTest, WavErrors) {
  EXPECT_EQ(ReadWavAsPcm(::testing::TempDir() + "no_such_file.wav").status().code(),
            absl::StatusCode::kNotFound);
  const std::string junk = WriteTempFile("pcm_source_junk.wav", "this is not a wav file");
  EXPECT_EQ(ReadWavAsPcm(junk).status().code(), absl::StatusCode::kInvalidArgument);
  const std::string path =
      WriteTempFile("pcm_source_mono.wav", engine::EncodeWav16({0.1f, 0.2f}, 16000, 1));
  EXPECT_EQ(ReadWavAsPcm(path, AudioFormat::ALAW).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --file with a WAV the client's reader does not decode (mu-law, format 7) sends it as it is: the
// server's WAV decoder reads it (it was refused with "unsupported sample format 7"). A missing
// file says it cannot be opened.
TEST(PcmSourceTest, AWavTheClientCannotReadGoesToTheServerUnchanged) {
  std::string wav = "RIFF" + std::string("\x2c\x00\x00\x00", 4) + "WAVEfmt ";
  const unsigned char fmt[] = {
      18,   0,    0, 0, 7, 0, 1, 0, 0x40, 0x1f, 0, 0,
      0x40, 0x1f, 0, 0, 1, 0, 8, 0, 0,    0};  // mu-law, mono, 8 kHz, 1 byte a sample, cbSize 0
  wav.append(reinterpret_cast<const char*>(fmt), sizeof(fmt));
  wav += "data" + std::string("\x04\x00\x00\x00", 4) + "\xff\x7f\x00\x80";
  const std::string path = WriteTempFile("pcm_source_mulaw.wav", wav);
  ASSERT_FALSE(ReadWavAsPcm(path).ok()) << "the client's reader took mu-law: pick another format";
  absl::StatusOr<PcmAudio> audio = ReadAudioFile(path);
  ASSERT_TRUE(audio.ok()) << audio.status();
  EXPECT_EQ(audio->format.encoding(), AudioFormat::WAV);
  EXPECT_EQ(audio->data, wav);
  const absl::Status missing = ReadAudioFile(::testing::TempDir() + "no_such_file.wav").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), ::testing::HasSubstr("cannot open"));
}

// A file that starts with an ID3 tag is FLAC only when "fLaC" follows the tag: an MP3 was sent as
// FLAC, and the server's refusal named FLAC.
TEST(PcmSourceTest, AnId3TagBeforeSomethingElseIsNotFlac) {
  const std::string tag = std::string("ID3\x04\x00\x00\x00\x00\x00\x05", 10) + "xxxxx";
  const std::string mp3 = WriteTempFile("pcm_source.mp3", tag + "\xff\xfb\x90\x00 frames");
  const absl::Status refused = ReadAudioFile(mp3).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), ::testing::HasSubstr("MP3 is not supported"));
  const std::string flac = WriteTempFile("pcm_source_id3.flac", tag + "fLaC and the rest");
  absl::StatusOr<PcmAudio> audio = ReadAudioFile(flac);
  ASSERT_TRUE(audio.ok()) << audio.status();
  EXPECT_EQ(audio->format.encoding(), AudioFormat::FLAC);
}

}  // namespace
}  // namespace speechllm::client
