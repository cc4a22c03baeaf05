// BpeModel: merge order (rank, then leftmost), the word cache, and agreement with a plain
// "merge the best-ranked pair everywhere, repeat" implementation (GPT-2's original algorithm) on
// random merge tables and words.
#include "engine/model/tokenizer/bpe.h"

#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace speechllm::engine::tokenizer {
namespace {

using ::testing::ElementsAre;

std::array<int32_t, 256> IdentityByteIds() {
  std::array<int32_t, 256> ids{};
  for (int b = 0; b < 256; ++b) ids[b] = b;
  return ids;
}

std::vector<int32_t> Encode(const BpeModel& bpe, const std::string& word) {
  std::vector<int32_t> ids;
  bpe.EncodeWord(word, &ids);
  return ids;
}

TEST(BpeTest, LowestRankFirstThenLeftmost) {
  // 256 = "aa" (rank 0), 257 = "aaaa" (rank 1), 258 = "ab" (rank 2), 259 = "ba" (rank 3).
  const std::vector<MergeRule> merges = {
      {'a', 'a', 256}, {256, 256, 257}, {'a', 'b', 258}, {'b', 'a', 259}};
  auto bpe = BpeModel::Create(IdentityByteIds(), merges);
  ASSERT_TRUE(bpe.ok()) << bpe.status();
  EXPECT_THAT(Encode(**bpe, "aaa"), ElementsAre(256, 'a'));  // leftmost pair wins a tie
  EXPECT_THAT(Encode(**bpe, "aaaaa"), ElementsAre(257, 'a'));
  EXPECT_THAT(Encode(**bpe, "aab"), ElementsAre(256, 'b'));  // rank 0 beats the later "ab"
  EXPECT_THAT(Encode(**bpe, "bab"), ElementsAre('b', 258));  // "ab" (rank 2) before "ba" (rank 3)
  EXPECT_THAT(Encode(**bpe, "x"), ElementsAre('x'));
  EXPECT_THAT(Encode(**bpe, "xyz"), ElementsAre('x', 'y', 'z'));
}

TEST(BpeTest, RepeatedPairIsAnError) {
  auto bpe = BpeModel::Create(IdentityByteIds(), {{'a', 'b', 256}, {'a', 'b', 257}});
  ASSERT_FALSE(bpe.ok());
  EXPECT_THAT(std::string(bpe.status().message()), ::testing::HasSubstr("rank 1 repeats"));
}

// GPT-2's loop: find the lowest-ranked adjacent pair, merge all its occurrences left to right.
std::vector<int32_t> ReferenceBpe(const std::string& word, const std::vector<MergeRule>& merges) {
  std::map<std::pair<int32_t, int32_t>, std::pair<int, int32_t>> rank;
  for (size_t r = 0; r < merges.size(); ++r)
    rank[{merges[r].left, merges[r].right}] = {static_cast<int>(r), merges[r].result};
  std::vector<int32_t> s;
  for (char c : word) s.push_back(static_cast<uint8_t>(c));
  while (s.size() > 1) {
    int best = -1;
    int32_t result = 0;
    std::pair<int32_t, int32_t> pair;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const auto it = rank.find({s[i], s[i + 1]});
      if (it != rank.end() && (best < 0 || it->second.first < best)) {
        best = it->second.first;
        result = it->second.second;
        pair = it->first;
      }
    }
    if (best < 0) break;
    std::vector<int32_t> next;
    for (size_t i = 0; i < s.size(); ++i) {
      if (i + 1 < s.size() && s[i] == pair.first && s[i + 1] == pair.second) {
        next.push_back(result);
        ++i;
      } else {
        next.push_back(s[i]);
      }
    }
    s = std::move(next);
  }
  return s;
}

TEST(BpeTest, AgreesWithTheReferenceAlgorithmOnRandomTables) {
  std::mt19937 rng(7);
  int words_checked = 0;
  for (int table = 0; table < 20; ++table) {
    // Learn-like merge table over a 4-letter alphabet: each merge joins two existing tokens.
    std::vector<std::string> token_text(256);
    for (int b = 0; b < 256; ++b) token_text[b] = std::string(1, static_cast<char>(b));
    std::vector<int32_t> alphabet = {'a', 'b', 'c', 'd'};
    std::vector<MergeRule> merges;
    std::map<std::pair<int32_t, int32_t>, bool> used;
    std::map<std::string, int32_t> id_of;
    while (merges.size() < 40) {
      const int32_t l = alphabet[rng() % alphabet.size()];
      const int32_t r = alphabet[rng() % alphabet.size()];
      if (used[{l, r}]) continue;
      used[{l, r}] = true;
      const std::string text = token_text[l] + token_text[r];
      int32_t id;
      if (id_of.count(text) > 0) {
        id = id_of[text];
      } else {
        id = static_cast<int32_t>(token_text.size());
        token_text.push_back(text);
        id_of[text] = id;
        alphabet.push_back(id);
      }
      merges.push_back({l, r, id});
    }
    for (size_t cache : {size_t{0}, BpeModel::kDefaultCacheCapacityWords}) {
      auto bpe = BpeModel::Create(IdentityByteIds(), merges, cache);
      ASSERT_TRUE(bpe.ok()) << bpe.status();
      for (int w = 0; w < 200; ++w) {
        std::string word;
        const int length = 1 + static_cast<int>(rng() % 40);
        for (int i = 0; i < length; ++i) word += "abcd"[rng() % 4];
        ASSERT_EQ(Encode(**bpe, word), ReferenceBpe(word, merges))
            << "table " << table << " word " << word;
        ASSERT_EQ(Encode(**bpe, word), ReferenceBpe(word, merges)) << "second (cached) call";
        ++words_checked;
      }
    }
  }
  std::cout << words_checked << " random words agree with the reference BPE\n";
}

TEST(BpeTest, CacheIsBoundedAndClearable) {
  auto bpe = BpeModel::Create(IdentityByteIds(), {{'a', 'b', 256}}, /*cache_capacity_words=*/2);
  ASSERT_TRUE(bpe.ok());
  for (const char* w : {"ab", "abab", "ababab", "x"}) Encode(**bpe, w);
  EXPECT_EQ((*bpe)->cached_words(), 2u);  // single bytes are never cached
  (*bpe)->ClearCache();
  EXPECT_EQ((*bpe)->cached_words(), 0u);
  const std::string long_word(BpeModel::kMaxCachedWordBytes + 1, 'a');
  Encode(**bpe, long_word);
  EXPECT_EQ((*bpe)->cached_words(), 0u);
}

}  // namespace
}  // namespace speechllm::engine::tokenizer
