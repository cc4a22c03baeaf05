// Ogg Opus link boundaries and positions (label unit): a chained link that begins without the
// previous link's end-of-stream page is decoded, not skipped as another multiplexed stream; a
// stream cut from a longer one (first granule position above zero, RFC 7845 4.5) is end-trimmed
// like the original; a last packet cut off by the end of the stream, by an end-of-stream page or
// by the next link is INVALID_ARGUMENT, even with an empty page after it.
#include <ogg/ogg.h>

#include <cstring>

#include "gtest/gtest.h"
#include "streaming/audio_decoder.h"
#include "tests/unit/streaming/audio_decoder_test_util.h"

namespace speechllm::streaming {
namespace {

using audio_test::ClipOpus;
using audio_test::DecodeChunks;
using audio_test::OggPage;
using audio_test::OggPages;
using audio_test::RandomSplit;
using audio_test::Remux;

const AudioFormatSpec kOgg{AudioEncoding::kOggOpus, 0, 0};

TEST(OggOpusLinksTest, ALinkWithoutItsEndOfStreamPageIsFollowedByTheNextLink) {
  std::vector<OggPage> first = OggPages(ClipOpus());
  ASSERT_TRUE(first.back().eos());
  first.back().set_eos(false);  // a client that restarted its encoder mid-stream
  const std::string unended = audio_test::JoinOggPages(first);
  const std::string next = Remux(ClipOpus(), [](std::vector<std::string>*) {});  // serial 4242
  ASSERT_NE(std::memcmp(unended.data() + 14, next.data() + 14, 4), 0) << "same serial";
  absl::StatusOr<std::vector<float>> alone = DecodeChunks(kOgg, unended);
  absl::StatusOr<std::vector<float>> second = DecodeChunks(kOgg, next);
  absl::StatusOr<std::vector<float>> both =
      DecodeChunks(kOgg, unended + next, RandomSplit(unended.size() + next.size(), 3));
  ASSERT_TRUE(alone.ok()) << alone.status();
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE(both.ok()) << both.status();
  std::printf("unended link %zu samples, next link %zu, both %zu\n", alone->size(), second->size(),
              both->size());
  EXPECT_EQ(both->size(), alone->size() + second->size()) << "the second link was dropped";
}

TEST(OggOpusLinksTest, AStreamStartingAtALaterGranulePositionIsTrimmedTheSame) {
  std::vector<OggPage> pages = OggPages(ClipOpus());
  ASSERT_GT(pages.size(), 3u);
  // Cut from a longer stream: its first sample is 10 s in (RFC 7845 4.5).
  for (size_t i = 2; i < pages.size(); ++i) {
    if (pages[i].granule() >= 0) pages[i].set_granule(pages[i].granule() + 480000);
  }
  absl::StatusOr<std::vector<float>> original = DecodeChunks(kOgg, ClipOpus());
  absl::StatusOr<std::vector<float>> shifted = DecodeChunks(kOgg, audio_test::JoinOggPages(pages));
  ASSERT_TRUE(original.ok()) << original.status();
  ASSERT_TRUE(shifted.ok()) << shifted.status();
  std::printf("%zu samples from granule 0, %zu from granule 480000\n", original->size(),
              shifted->size());
  EXPECT_EQ(shifted->size(), original->size());
  EXPECT_EQ(original->size(), 53920u);  // clip_a: 3.37 s at 16 kHz
}

TEST(OggOpusLinksTest, ALastPacketCutOffIsInvalidArgument) {
  // A 70000-byte last packet spans several pages; the page that completes it never comes.
  const std::string long_packet = Remux(ClipOpus(), [](std::vector<std::string>* packets) {
    packets->push_back(std::string(70000, '\x55'));
  });
  std::vector<OggPage> pages = OggPages(long_packet);
  pages.pop_back();
  ASSERT_EQ(static_cast<unsigned char>(pages.back().header.back()), 255u)
      << "the last page kept does not end inside the packet";
  const auto expect_cut = [](const std::string& name, const std::string& bytes) {
    absl::Status status = DecodeChunks(kOgg, bytes, RandomSplit(bytes.size(), 7)).status();
    std::printf("%s: %s\n", name.c_str(), status.ToString().c_str());
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_NE(status.message().find("inside a packet"), std::string::npos) << name << status;
  };
  expect_cut("input ends", audio_test::JoinOggPages(pages));
  // A page without segments (continued, same stream, next sequence number) changes nothing.
  OggPage empty = pages.back();
  empty.header.resize(27);
  empty.header[5] = 0x01;
  empty.header[26] = 0;
  empty.body.clear();
  empty.set_granule(-1);
  uint32_t sequence = 0;
  std::memcpy(&sequence, empty.header.data() + 18, 4);
  ++sequence;
  std::memcpy(empty.header.data() + 18, &sequence, 4);
  std::vector<OggPage> with_empty = pages;
  with_empty.push_back(empty);
  expect_cut("then an empty page", audio_test::JoinOggPages(with_empty));
  std::vector<OggPage> ended = pages;
  ended.back().set_eos(true);
  expect_cut("end-of-stream page", audio_test::JoinOggPages(ended));
  expect_cut("next link", audio_test::JoinOggPages(pages) + ClipOpus());
}

}  // namespace
}  // namespace speechllm::streaming
