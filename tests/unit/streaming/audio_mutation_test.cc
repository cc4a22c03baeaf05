// Randomly damaged audio (label unit): seeded byte flips, truncations, insertions, duplicated and
// overwritten ranges applied to an Ogg Opus stream (to its bytes, and to its packets behind valid
// page CRCs), to WebM Opus and FLAC streams (declared and sniffed) and WAV, to raw Opus packets
// and to float PCM. Every decode must end in OK with finite
// samples or INVALID_ARGUMENT; the tallies are printed. Under scripts/sanitize.sh this is the
// decoders' memory-safety check on input no targeted test thought of.
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "streaming/audio_decoder.h"
#include "tests/unit/streaming/audio_decoder_test_util.h"

namespace speechllm::streaming {
namespace {

using audio_test::ClipOpus;

constexpr int kMutations = 150;

// One seeded random damage of `bytes`.
std::string Mutate(std::string bytes, std::mt19937* rng) {
  auto below = [rng](size_t n) {
    return n == 0 ? 0 : std::uniform_int_distribution<size_t>(0, n - 1)(*rng);
  };
  auto random_bytes = [rng](size_t n) {
    std::string out(n, '\0');
    for (char& c : out) c = static_cast<char>((*rng)() & 0xff);
    return out;
  };
  switch (below(5)) {
    case 0:  // flip 1 to 8 bytes
      for (size_t k = 1 + below(8); k > 0 && !bytes.empty(); --k)
        bytes[below(bytes.size())] ^= static_cast<char>(1 + below(255));
      break;
    case 1:  // truncate
      bytes.resize(below(bytes.size() + 1));
      break;
    case 2:  // insert 1 to 64 random bytes
      bytes.insert(below(bytes.size() + 1), random_bytes(1 + below(64)));
      break;
    case 3: {  // duplicate a range elsewhere
      const size_t from = below(bytes.size() + 1);
      const std::string range = bytes.substr(from, 1 + below(2000));
      bytes.insert(below(bytes.size() + 1), range);
      break;
    }
    default: {  // overwrite a range with zeros or 0xff
      const size_t from = below(bytes.size() + 1);
      const size_t n = std::min(bytes.size() - from, 1 + below(64));
      bytes.replace(from, n, std::string(n, below(2) ? '\xff' : '\0'));
      break;
    }
  }
  return bytes;
}

// Counts outcomes by status code; fails on any code but OK / INVALID_ARGUMENT and on samples that
// are not finite.
class Tally {
 public:
  explicit Tally(std::string name) : name_(std::move(name)) {}
  void Add(const absl::StatusOr<std::vector<float>>& result, int seed) {
    ++counts_[result.status().code()];
    EXPECT_TRUE(result.ok() || result.status().code() == absl::StatusCode::kInvalidArgument)
        << name_ << " seed " << seed << ": " << result.status();
    if (!result.ok()) return;
    for (float sample : *result) {
      if (!std::isfinite(sample)) {
        ADD_FAILURE() << name_ << " seed " << seed << ": non-finite sample";
        break;
      }
    }
  }
  int count(absl::StatusCode code) const {
    auto it = counts_.find(code);
    return it == counts_.end() ? 0 : it->second;
  }
  ~Tally() {
    std::printf(
        "%-22s %d OK, %d INVALID_ARGUMENT, %d other\n", name_.c_str(), count(absl::StatusCode::kOk),
        count(absl::StatusCode::kInvalidArgument),
        kMutations - count(absl::StatusCode::kOk) - count(absl::StatusCode::kInvalidArgument));
  }

 private:
  std::string name_;
  std::map<absl::StatusCode, int> counts_;
};

const AudioFormatSpec kOgg{AudioEncoding::kOggOpus, 0, 0};

TEST(AudioMutationTest, DamagedOggOpusBytes) {
  const std::string& opus = ClipOpus();
  ASSERT_FALSE(opus.empty());
  Tally tally("ogg opus bytes");
  for (int seed = 0; seed < kMutations; ++seed) {
    std::mt19937 rng(seed);
    const std::string damaged = Mutate(opus, &rng);
    tally.Add(
        audio_test::DecodeChunks(kOgg, damaged, audio_test::RandomSplit(damaged.size(), seed)),
        seed);
  }
  EXPECT_GT(tally.count(absl::StatusCode::kInvalidArgument), 0);
}

// WebM, FLAC and 24-bit WAV bytes, damaged the same way; WebM and FLAC undeclared as well, so
// that the container sniffing sees the damage too.
TEST(AudioMutationTest, DamagedWebmFlacAndWavBytes) {
  const std::string webm = audio_test::ToWebm(ClipOpus(), "", "mutation");
  const std::string flac = audio_test::Sox(audio_test::ClipPath("clip_a"), "-t flac", "m.flac");
  const std::string wav = audio_test::Sox(audio_test::ClipPath("clip_a"), "-b 24 -t wav", "m.wav");
  ASSERT_FALSE(webm.empty() || flac.empty() || wav.empty());
  for (const auto& [name, bytes, encoding] :
       {std::make_tuple("webm opus bytes", webm, AudioEncoding::kWebmOpus),
        std::make_tuple("flac bytes", flac, AudioEncoding::kFlac),
        std::make_tuple("sniffed webm bytes", webm, AudioEncoding::kSniffed),
        std::make_tuple("sniffed flac bytes", flac, AudioEncoding::kSniffed),
        std::make_tuple("wav bytes", wav, AudioEncoding::kWav)}) {
    Tally tally(name);
    for (int seed = 0; seed < kMutations; ++seed) {
      std::mt19937 rng(seed);
      const std::string damaged = Mutate(bytes, &rng);
      tally.Add(audio_test::DecodeChunks({encoding, 0, 0}, damaged,
                                         audio_test::RandomSplit(damaged.size(), seed, 900)),
                seed);
    }
    EXPECT_GT(tally.count(absl::StatusCode::kInvalidArgument), 0) << name;
  }
}

// Damage inside one packet, re-muxed with valid CRCs: reaches the OpusHead / OpusTags parsing and
// libopus. Packet 0 is the OpusHead, 1 the OpusTags, the rest audio.
TEST(AudioMutationTest, DamagedOggOpusPackets) {
  const std::string& opus = ClipOpus();
  ASSERT_FALSE(opus.empty());
  Tally tally("ogg opus packets");
  for (int seed = 0; seed < kMutations; ++seed) {
    std::mt19937 rng(seed);
    const std::string damaged = audio_test::Remux(opus, [&rng](std::vector<std::string>* packets) {
      const size_t pick = rng() % 5;
      const size_t index = pick < 2 ? 0 : pick == 2 ? 1 : 2 + rng() % (packets->size() - 2);
      (*packets)[index] = Mutate((*packets)[index], &rng);
    });
    tally.Add(
        audio_test::DecodeChunks(kOgg, damaged, audio_test::RandomSplit(damaged.size(), seed)),
        seed);
  }
  EXPECT_GT(tally.count(absl::StatusCode::kOk), 0);
  EXPECT_GT(tally.count(absl::StatusCode::kInvalidArgument), 0);
}

// Raw Opus packets (one per Decode call), each damaged: libopus must refuse or decode them.
TEST(AudioMutationTest, DamagedRawOpusPackets) {
  std::vector<std::string> packets;
  (void)audio_test::Remux(ClipOpus(), [&packets](std::vector<std::string>* p) {
    packets.assign(p->begin() + 2, p->end());
  });
  ASSERT_GT(packets.size(), 10u);
  Tally tally("raw opus packets");
  for (int seed = 0; seed < kMutations; ++seed) {
    std::mt19937 rng(seed);
    auto decoder = AudioDecoder::Create({AudioEncoding::kOpusPacket, 0, 0}, 16000);
    ASSERT_TRUE(decoder.ok()) << decoder.status();
    std::vector<float> out;
    absl::Status status;
    for (size_t i = 0; i < packets.size() && status.ok(); ++i) {
      status =
          (*decoder)->Decode(rng() % 4 == 0 ? Mutate(packets[i], &rng) : packets[i], &out, nullptr);
    }
    if (status.ok()) status = (*decoder)->Finish(&out);
    tally.Add(status.ok() ? absl::StatusOr<std::vector<float>>(out)
                          : absl::StatusOr<std::vector<float>>(status),
              seed);
  }
  EXPECT_GT(tally.count(absl::StatusCode::kOk), 0);
  EXPECT_GT(tally.count(absl::StatusCode::kInvalidArgument), 0);
}

// Float PCM of random bits: NaN and infinity are refused, everything else decodes finite.
TEST(AudioMutationTest, RandomFloatPcm) {
  Tally tally("random f32 pcm");
  for (int seed = 0; seed < kMutations; ++seed) {
    std::mt19937 rng(seed);
    std::string bytes(4 * (1 + rng() % 4000), '\0');
    for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
    if (seed % 2 == 0) bytes.resize(bytes.size() - 1 - rng() % 3);  // a partial last sample
    const AudioFormatSpec format{AudioEncoding::kPcmF32le, 8000 + static_cast<int>(rng() % 40001),
                                 1 + static_cast<int>(rng() % 8)};
    tally.Add(audio_test::DecodeChunks(format, bytes, audio_test::RandomSplit(bytes.size(), seed)),
              seed);
  }
  EXPECT_GT(tally.count(absl::StatusCode::kInvalidArgument), 0);
}

}  // namespace
}  // namespace speechllm::streaming
