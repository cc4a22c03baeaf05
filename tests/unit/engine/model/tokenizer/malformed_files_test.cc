// Malformed tokenizer files give a clear status that names the file and the problem, never a crash:
// bad JSON, missing merges or vocab, unknown bytes, merges naming unknown tokens, duplicate ids,
// unsupported pipelines, wrong JSON types deep inside, broken slow-format files, random corruption.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>

#include "engine/model/tokenizer/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/test_util.h"
#include "tests/unit/engine/model/tokenizer/tokenizer_test_util.h"

namespace speechllm::engine::tokenizer {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;

class MalformedFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tokenizer_malformed_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    std::ifstream in(::speechllm::testing::TokenizerDataDir() + "/qwen2_audio_mini/tokenizer.json");
    std::stringstream text;
    text << in.rdbuf();
    good_text_ = text.str();
    good_ = json::parse(good_text_);
  }
  void TearDown() override { speechllm::testing::RemoveTree(dir_.string()); }

  std::string Write(const std::string& name, const std::string& content) const {
    const fs::path path = dir_ / name;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
    return path.string();
  }
  // Loads a tokenizer.json with `content`; expects failure and returns the status.
  absl::Status LoadJson(const std::string& content) const {
    const std::string path = Write("tokenizer.json", content);
    auto tok = Tokenizer::FromTokenizerJson(path);
    EXPECT_FALSE(tok.ok()) << "loaded although malformed";
    return tok.ok() ? absl::OkStatus() : tok.status();
  }
  std::string TokenizerJsonPath() const { return (dir_ / "tokenizer.json").string(); }

  fs::path dir_;
  std::string good_text_;
  json good_;
};

TEST_F(MalformedFilesTest, TheUnmodifiedFileLoads) {
  const std::string path = Write("tokenizer.json", good_.dump());
  EXPECT_TRUE(Tokenizer::FromTokenizerJson(path).ok());
}

TEST_F(MalformedFilesTest, BadJson) {
  for (const std::string& text : {std::string("{ \"model\": "), std::string(""),
                                  good_text_.substr(0, good_text_.size() / 2)}) {
    const absl::Status s = LoadJson(text);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), AllOf(HasSubstr(TokenizerJsonPath()), HasSubstr("not valid JSON")));
  }
  EXPECT_THAT(LoadJson("[1, 2]").message(), HasSubstr("is not a JSON object"));
}

TEST_F(MalformedFilesTest, MissingMergesOrVocab) {
  json j = good_;
  j["model"].erase("merges");
  EXPECT_THAT(LoadJson(j.dump()).message(),
              AllOf(HasSubstr(TokenizerJsonPath()), HasSubstr("model.merges is missing")));
  j = good_;
  j["model"].erase("vocab");
  EXPECT_THAT(LoadJson(j.dump()).message(), HasSubstr("model.vocab is missing"));
  j = good_;
  j.erase("model");
  EXPECT_THAT(LoadJson(j.dump()).message(), HasSubstr("no \"model\" object"));
}

TEST_F(MalformedFilesTest, UnknownByte) {
  json j = good_;
  j["model"]["vocab"]["\xE4\xB8\xAD"] = 300;  // 中 is not a byte-level character
  EXPECT_THAT(LoadJson(j.dump()).message(), AllOf(HasSubstr(TokenizerJsonPath()),
                                                  HasSubstr("unknown byte"), HasSubstr("U+4E2D")));
  j = good_;
  j["model"]["vocab"]["a b"] = 300;  // a raw space is not one either
  EXPECT_THAT(LoadJson(j.dump()).message(), AllOf(HasSubstr("unknown byte"), HasSubstr("U+0020")));
}

TEST_F(MalformedFilesTest, MissingByteToken) {
  json j = good_;
  j["model"]["vocab"].erase("a");
  EXPECT_THAT(LoadJson(j.dump()).message(), HasSubstr("no token for byte 0x61"));
}

TEST_F(MalformedFilesTest, BadMerges) {
  json j = good_;
  j["model"]["merges"].push_back({"zz", "q"});
  EXPECT_THAT(LoadJson(j.dump()).message(),
              AllOf(HasSubstr("merge #21"), HasSubstr("unknown token \"zz\"")));
  j = good_;
  j["model"]["merges"].push_back({"x", "y"});
  EXPECT_THAT(LoadJson(j.dump()).message(),
              HasSubstr("makes \"xy\", which is not in the vocabulary"));
  j = good_;
  j["model"]["merges"][0] = 5;
  EXPECT_THAT(LoadJson(j.dump()).message(), HasSubstr("merge #0 is neither"));
  j = good_;
  j["model"]["merges"][0] = "a b c";
  EXPECT_THAT(LoadJson(j.dump()).message(), HasSubstr("merge #0 is neither"));
  j = good_;
  j["model"]["merges"].push_back(j["model"]["merges"][0]);
  EXPECT_THAT(LoadJson(j.dump()).message(), HasSubstr("repeats the pair"));
  // "a b" strings (older files) are accepted.
  j = good_;
  for (auto& m : j["model"]["merges"]) m = m[0].get<std::string>() + " " + m[1].get<std::string>();
  EXPECT_TRUE(Tokenizer::FromTokenizerJson(Write("tokenizer.json", j.dump())).ok());
}

TEST_F(MalformedFilesTest, BadIds) {
  json j = good_;
  j["model"]["vocab"]["\xC4\xA0the"] = 0;  // "Ġthe" onto "!"'s id
  EXPECT_THAT(LoadJson(j.dump()).message(), HasSubstr("share id 0"));
  j = good_;
  j["model"]["vocab"]["a"] = -1;
  EXPECT_THAT(LoadJson(j.dump()).message(), HasSubstr("outside [0,"));
  j = good_;
  j["model"]["vocab"]["a"] = "sixty";
  EXPECT_THAT(LoadJson(j.dump()).message(), HasSubstr("non-integer id"));
}

TEST_F(MalformedFilesTest, BadAddedTokens) {
  json j = good_;
  j["added_tokens"].push_back({{"id", 151643}, {"content", "<|other|>"}, {"special", true}});
  EXPECT_THAT(LoadJson(j.dump()).message(), HasSubstr("two added tokens have id 151643"));
  j = good_;
  j["added_tokens"].push_back({{"id", 170000}, {"content", "<|im_end|>"}});
  EXPECT_THAT(LoadJson(j.dump()).message(), HasSubstr("appears twice"));
  j = good_;
  j["added_tokens"].push_back({{"id", 5}, {"content", "<x>"}});
  EXPECT_THAT(LoadJson(j.dump()).message(), HasSubstr("reuses id 5"));
  j = good_;
  j["added_tokens"].push_back({{"id", 170000}});
  EXPECT_THAT(LoadJson(j.dump()).message(), HasSubstr("no non-empty \"content\""));
  j = good_;
  j["added_tokens"].push_back({{"content", "<y>"}});
  EXPECT_THAT(LoadJson(j.dump()).message(), HasSubstr("added token without id"));
}

TEST_F(MalformedFilesTest, UnsupportedPipelines) {
  json j = good_;
  j["normalizer"] = {{"type", "NFKC"}};
  absl::Status s = LoadJson(j.dump());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(s.message(), HasSubstr("normalizer \"NFKC\""));
  j = good_;
  j["model"]["type"] = "WordPiece";
  EXPECT_EQ(LoadJson(j.dump()).code(), absl::StatusCode::kUnimplemented);
  j = good_;
  j["model"]["byte_fallback"] = true;
  EXPECT_THAT(LoadJson(j.dump()).message(), HasSubstr("byte_fallback"));
  j = good_;
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  EXPECT_THAT(LoadJson(j.dump()).message(), HasSubstr("pre_tokenizer"));
  j = good_;
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "([a-";
  EXPECT_THAT(LoadJson(j.dump()).message(), HasSubstr("does not compile"));
  // Without use_regex HF's ByteLevel runs its own GPT-2 split as well (serde default true).
  j = good_;
  j["pre_tokenizer"]["pretokenizers"][1].erase("use_regex");
  s = LoadJson(j.dump());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(s.message(), HasSubstr("ByteLevel without prefix space/regex"));
}

TEST_F(MalformedFilesTest, WrongTypesDeepInsideAreErrorsNotExceptions) {
  json j = good_;
  j["normalizer"] = {{"type", 5}};
  EXPECT_THAT(LoadJson(j.dump()).message(), HasSubstr("unexpected content"));
  j = good_;
  j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = json::array();
  EXPECT_FALSE(LoadJson(j.dump()).ok());
  j = good_;
  j["added_tokens"] = "none";
  EXPECT_THAT(LoadJson(j.dump()).message(), HasSubstr("added_tokens is not an array"));
}

TEST_F(MalformedFilesTest, MissingFilesAndDirectories) {
  auto missing = Tokenizer::FromTokenizerJson((dir_ / "nope.json").string());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("nope.json"));
  auto empty_dir = Tokenizer::FromDirectory(dir_.string());
  EXPECT_EQ(empty_dir.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(empty_dir.status().message(), HasSubstr("has no tokenizer files"));
}

TEST_F(MalformedFilesTest, SlowFormatErrors) {
  const std::string slow = ::speechllm::testing::TokenizerDataDir() + "/qwen2_audio_mini_slow";
  fs::copy_file(slow + "/vocab.json", dir_ / "vocab.json");
  // vocab.json without merges.txt: the missing merges are named.
  auto no_merges = Tokenizer::FromDirectory(dir_.string());
  ASSERT_FALSE(no_merges.ok());
  EXPECT_THAT(no_merges.status().message(), HasSubstr("merges.txt"));
  Write("merges.txt", "#version: 0.2\n\xC4\xA0 t\na b c\n");
  auto bad_line = Tokenizer::FromDirectory(dir_.string());
  ASSERT_FALSE(bad_line.ok());
  EXPECT_THAT(bad_line.status().message(),
              AllOf(HasSubstr("merges.txt line 3"), HasSubstr("a b c")));
  Write("merges.txt", "#version: 0.2\n\xC4\xA0 t\n");
  Write("tokenizer_config.json", "{\"added_tokens_decoder\": {\"x\": {\"content\": \"<a>\"}}}");
  auto bad_key = Tokenizer::FromDirectory(dir_.string());
  ASSERT_FALSE(bad_key.ok());
  EXPECT_THAT(bad_key.status().message(),
              AllOf(HasSubstr("tokenizer_config.json"), HasSubstr("\"x\" is not a token id")));
  Write("tokenizer_config.json", "{oops");
  EXPECT_THAT(Tokenizer::FromDirectory(dir_.string()).status().message(),
              AllOf(HasSubstr("tokenizer_config.json"), HasSubstr("not valid JSON")));
  fs::remove(dir_ / "tokenizer_config.json");
  EXPECT_TRUE(Tokenizer::FromDirectory(dir_.string()).ok());  // the config is optional
}

TEST_F(MalformedFilesTest, RandomCorruptionNeverCrashes) {
  std::mt19937 rng(3);
  int rejected = 0;
  const int trials = 300;
  for (int t = 0; t < trials; ++t) {
    std::string text = good_text_;
    for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k)
      text[rng() % text.size()] = static_cast<char>(rng() % 256);
    auto tok = Tokenizer::FromTokenizerJson(Write("tokenizer.json", text));
    if (!tok.ok()) {
      ++rejected;
      EXPECT_FALSE(tok.status().message().empty());
    } else {
      EXPECT_TRUE((*tok)->Encode("What's the sound?").ok());  // whatever loaded must work
    }
  }
  std::cout << rejected << " of " << trials << " corrupted files rejected, the rest still valid\n";
}

}  // namespace
}  // namespace speechllm::engine::tokenizer
