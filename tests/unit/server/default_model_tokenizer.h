// The bundled default model's tokenizer (models/speechllm-asr-small) for the server unit tests:
// loaded from the source tree, a test failure and nullptr when it cannot be. Test-only; the test's
// thread.
#ifndef SPEECHLLM_TESTS_UNIT_SERVER_DEFAULT_MODEL_TOKENIZER_H_
#define SPEECHLLM_TESTS_UNIT_SERVER_DEFAULT_MODEL_TOKENIZER_H_

#include <memory>
#include <string>

#include "engine/model/tokenizer/tokenizer.h"
#include "gtest/gtest.h"

namespace speechllm::server {

inline std::unique_ptr<engine::tokenizer::Tokenizer> DefaultModelTokenizer() {
  auto tokenizer = engine::tokenizer::Tokenizer::FromDirectory(std::string(SPEECHLLM_SOURCE_DIR) +
                                                               "/models/speechllm-asr-small");
  if (!tokenizer.ok()) {
    ADD_FAILURE() << tokenizer.status();
    return nullptr;
  }
  return std::move(tokenizer).value();
}

}  // namespace speechllm::server

#endif  // SPEECHLLM_TESTS_UNIT_SERVER_DEFAULT_MODEL_TOKENIZER_H_
