// Containers told by their first bytes (streaming/sniffing_decoder.h, label unit): WAV, Ogg Opus,
// WebM Opus and FLAC (with and without an ID3v2 tag) streamed without a declared encoding decode
// bit for bit as when declared, under any split, the first bytes split too; raw PCM and streams
// of fewer than 4 bytes are INVALID_ARGUMENT saying what to declare.
#include "streaming/sniffing_decoder.h"

#include "gtest/gtest.h"
#include "streaming/audio_decoder.h"
#include "tests/unit/streaming/audio_decoder_test_util.h"

namespace speechllm::streaming {
namespace {

using audio_test::ClipPath;
using audio_test::DecodeChunks;
using audio_test::FirstDifference;
using audio_test::RandomSplit;

const AudioFormatSpec kSniff{AudioEncoding::kSniffed, 0, 0};

TEST(SniffingDecoderTest, ContainersDecodeAsWhenDeclared) {
  const std::string& ogg = audio_test::ClipOpus();
  const std::string flac = audio_test::Sox(ClipPath("clip_a"), "-r 22050 -t flac", "s.flac");
  const std::string tagged_flac = std::string("ID3\x04\x00\x00\x00\x00\x00\x03", 10) + "abc" + flac;
  const std::vector<std::pair<std::string, AudioEncoding>> cases = {
      {audio_test::Sox(ClipPath("clip_a"), "-r 44100 -b 24 -t wav", "s.wav"), AudioEncoding::kWav},
      {ogg, AudioEncoding::kOggOpus},
      {audio_test::ToWebm(ogg, "", "s"), AudioEncoding::kWebmOpus},
      {flac, AudioEncoding::kFlac},
      {tagged_flac, AudioEncoding::kFlac}};
  for (const auto& [bytes, encoding] : cases) {
    ASSERT_FALSE(bytes.empty());
    absl::StatusOr<AudioEncoding> sniffed = SniffContainer(bytes);
    ASSERT_TRUE(sniffed.ok()) << sniffed.status();
    EXPECT_EQ(*sniffed, encoding);
    absl::StatusOr<std::vector<float>> declared = DecodeChunks({encoding, 0, 0}, bytes);
    ASSERT_TRUE(declared.ok()) << declared.status();
    for (uint32_t seed : {1u, 2u}) {
      // Seed 2 cuts the first bytes apart: 1-3 byte pieces are common in RandomSplit.
      absl::StatusOr<std::vector<float>> got =
          DecodeChunks(kSniff, bytes, RandomSplit(bytes.size(), seed, seed == 1 ? 3000 : 5));
      ASSERT_TRUE(got.ok()) << got.status();
      std::printf("encoding %d, %zu bytes, seed %u: %zu samples, first difference %lld\n",
                  static_cast<int>(encoding), bytes.size(), seed, got->size(),
                  static_cast<long long>(FirstDifference(*got, *declared)));
      EXPECT_EQ(FirstDifference(*got, *declared), -1);
    }
  }
}

TEST(SniffingDecoderTest, WhatCannotBeToldIsInvalidArgument) {
  const std::string wav = audio_test::ReadFileBytes(ClipPath("clip_a"));
  for (const auto& [bytes, needle] :
       {std::make_pair(wav.substr(44, 6400),
                       "none of \"RIFF\" (WAV), \"OggS\" (Ogg Opus), 1A 45 DF A3 (WebM)"),
        std::make_pair(std::string("Og"), "the audio ended after 2 bytes, too few")}) {
    const absl::Status status = DecodeChunks(kSniff, bytes).status();
    std::printf("  -> %s\n", status.ToString().c_str());
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(status.message().find(needle), std::string::npos) << status;
  }
  EXPECT_TRUE(DecodeChunks(kSniff, "").ok());  // no audio at all
  // A declared rate the container contradicts is its decoder's error.
  const absl::Status rate =
      DecodeChunks({AudioEncoding::kSniffed, 44100, 0}, audio_test::ClipOpus()).status();
  EXPECT_NE(rate.message().find("OGG_OPUS: the OpusHead input sample rate is 16000 Hz"),
            std::string::npos)
      << rate;
}

}  // namespace
}  // namespace speechllm::streaming
