// The small BPE trainer behind models/qwen2-audio-tiny/tokenizer.json: ids, determinism, a result
// the tokenizer loads and round-trips, option errors; and the committed tiny tokenizer itself (512
// entries, audio ids 500/501/502 as in the tiny config.json, identical to a fresh retraining).
#include "tools/tokenizer/bpe_trainer.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "engine/model/tokenizer/prompt_builder.h"
#include "engine/model/tokenizer/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/unit/engine/model/tokenizer/tokenizer_test_util.h"

namespace speechllm::tools {
namespace {

using ::speechllm::engine::tokenizer::PromptBuilder;
using ::speechllm::engine::tokenizer::Tokenizer;
using ::speechllm::testing::EnvOr;
using ::testing::HasSubstr;

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The exact settings of tools/tokenizer/make_tiny_tokenizer.sh.
constexpr char kTinySpecials[] =
    "<|AUDIO|>=500,<|audio_bos|>=501,<|audio_eos|>=502,<|endoftext|>=503,<|im_start|>=504,<|im_end|"
    ">=505";

std::unique_ptr<Tokenizer> LoadJsonText(const std::string& text, const std::string& name) {
  const std::string path = (std::filesystem::temp_directory_path() / name).string();
  std::ofstream(path, std::ios::binary) << text;
  auto tok = Tokenizer::FromTokenizerJson(path);
  std::filesystem::remove(path);
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? *std::move(tok) : nullptr;
}

TEST(BpeTrainerTest, TrainsALoadableDeterministicVocabulary) {
  const std::string corpus = "the cat sat on the mat\nthe cat ate the rat\nit's the cat's hat\n";
  BpeTrainerOptions options;
  options.vocab_size = 270;
  options.special_tokens = {{"<|AUDIO|>", 260}, {"<|im_end|>", 269}};
  auto first = TrainByteLevelBpe(corpus, options);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = TrainByteLevelBpe(corpus, options);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->tokenizer_json, second->tokenizer_json);
  EXPECT_EQ(first->num_merges, 270 - 256 - 2);

  auto tok = LoadJsonText(first->tokenizer_json, "bpe_trainer_test.json");
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->id_limit(), 270);
  for (int32_t id = 0; id < 270; ++id) EXPECT_TRUE(tok->IsKnown(id)) << id;
  EXPECT_EQ(*tok->AddedTokenId("<|AUDIO|>"), 260);
  EXPECT_EQ(*tok->AddedTokenId("<|im_end|>"), 269);
  EXPECT_EQ(*tok->TokenToId("!"), 0);  // byte tokens first, in GPT-2 order
  // The most frequent pair of the corpus is learned first and shortens its words.
  const auto ids = *tok->Encode(" the cat");
  EXPECT_LT(ids.size(), std::string(" the cat").size());
  EXPECT_EQ(*tok->Decode(*tok->Encode(corpus)), corpus);
}

TEST(BpeTrainerTest, OptionErrors) {
  BpeTrainerOptions options;
  options.vocab_size = 300;
  options.special_tokens = {{"<a>", 5}, {"<b>", 5}};
  EXPECT_FALSE(TrainByteLevelBpe("text", options).ok());
  options.special_tokens = {{"<a>", 300}};
  EXPECT_FALSE(TrainByteLevelBpe("text", options).ok());
  options.special_tokens = {};
  options.vocab_size = 255;
  EXPECT_THAT(TrainByteLevelBpe("text", options).status().message(), HasSubstr("no room"));
  options.vocab_size = 400;
  EXPECT_THAT(TrainByteLevelBpe("ab", options).status().message(),
              HasSubstr("needs a larger corpus"));
  EXPECT_THAT(TrainByteLevelBpe("bad \xFF", options).status().message(),
              HasSubstr("not valid UTF-8"));
  EXPECT_FALSE(ParseSpecialTokens("<a>500").ok());
  auto parsed = ParseSpecialTokens(kTinySpecials);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->size(), 6u);
  EXPECT_EQ((*parsed)[3].first, "<|endoftext|>");
  EXPECT_EQ((*parsed)[3].second, 503);
}

TEST(TinyTokenizerTest, CommittedFileIsComplete) {
  const std::string dir = EnvOr("SPEECHLLM_TINY_MODEL_DIR",
                                ::speechllm::testing::SourceDir() + "/models/qwen2-audio-tiny");
  auto tok = Tokenizer::FromDirectory(dir);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->id_limit(), 512);
  EXPECT_EQ((*tok)->num_base_tokens() + (*tok)->added_tokens().size(), 512u);
  for (int32_t id = 0; id < 512; ++id) EXPECT_TRUE((*tok)->IsKnown(id)) << id;
  // The audio ids agree with the checkpoint's config.json.
  const auto config = nlohmann::json::parse(ReadText(dir + "/config.json"));
  EXPECT_EQ(*(*tok)->AddedTokenId("<|AUDIO|>"), config["audio_token_index"].get<int>());
  EXPECT_EQ(*(*tok)->AddedTokenId("<|audio_bos|>"), 501);
  EXPECT_EQ(*(*tok)->AddedTokenId("<|audio_eos|>"), 502);
  for (const char* name : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"})
    EXPECT_GE(*(*tok)->AddedTokenId(name), 503);
  EXPECT_TRUE(PromptBuilder::Create(tok->get()).ok());
  const std::string text = "The model hears the words and writes them down as text.";
  const auto ids = *(*tok)->Encode(text);
  EXPECT_EQ(*(*tok)->Decode(ids), text);
  std::cout << "tiny tokenizer: " << text.size() << " bytes -> " << ids.size() << " tokens\n";
}

TEST(TinyTokenizerTest, CommittedFileEqualsARetraining) {
  const std::string dir = EnvOr("SPEECHLLM_TINY_MODEL_DIR",
                                ::speechllm::testing::SourceDir() + "/models/qwen2-audio-tiny");
  const std::string corpus =
      ReadText(EnvOr("SPEECHLLM_TINY_CORPUS",
                     ::speechllm::testing::SourceDir() + "/tools/tokenizer/tiny_corpus.txt"));
  ASSERT_FALSE(corpus.empty());
  BpeTrainerOptions options;
  options.vocab_size = 512;
  options.special_tokens = *ParseSpecialTokens(kTinySpecials);
  auto trained = TrainByteLevelBpe(corpus, options);
  ASSERT_TRUE(trained.ok()) << trained.status();
  EXPECT_TRUE(trained->tokenizer_json == ReadText(dir + "/tokenizer.json"))
      << "models/qwen2-audio-tiny/tokenizer.json is stale: run "
         "tools/tokenizer/make_tiny_tokenizer.sh";
}

}  // namespace
}  // namespace speechllm::tools
