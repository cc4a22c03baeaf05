// speechllm-bpe-train: trains a small byte-level BPE vocabulary on a text corpus and writes
// OUT/tokenizer.json (HF tokenizers format, loadable by engine/model/tokenizer). Used by
// make_tiny_tokenizer.sh for models/qwen2-audio-tiny. Single-threaded command-line program.
//   speechllm-bpe-train --corpus FILE --vocab-size N --special "<|AUDIO|>=500,..." --out DIR
// Exit codes: 0 ok, 1 training or I/O failed, 2 bad arguments.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "engine/model/tokenizer/tokenizer.h"
#include "tools/tokenizer/bpe_trainer.h"

namespace {

constexpr char kUsage[] =
    "usage: speechllm-bpe-train --corpus FILE --vocab-size N --special \"TOKEN=ID,...\" --out DIR\n"
    "  Learns byte-level BPE merges on FILE (256 byte tokens + merges + the special tokens = N\n"
    "  entries) and writes DIR/tokenizer.json.\n";

}  // namespace

int main(int argc, char** argv) {
  std::string corpus_path, special, out_dir;
  int vocab_size = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--corpus" && has_value) {
      corpus_path = argv[++i];
    } else if (arg == "--vocab-size" && has_value) {
      if (!absl::SimpleAtoi(argv[++i], &vocab_size)) vocab_size = -1;
    } else if (arg == "--special" && has_value) {
      special = argv[++i];
    } else if (arg == "--out" && has_value) {
      out_dir = argv[++i];
    } else {
      std::cerr << "speechllm-bpe-train: unknown or incomplete argument \"" << arg << "\"\n"
                << kUsage;
      return 2;
    }
  }
  if (corpus_path.empty() || out_dir.empty() || vocab_size <= 0) {
    std::cerr << kUsage;
    return 2;
  }
  absl::StatusOr<std::vector<std::pair<std::string, int32_t>>> specials =
      speechllm::tools::ParseSpecialTokens(special);
  if (!specials.ok()) {
    std::cerr << "speechllm-bpe-train: " << specials.status() << "\n" << kUsage;
    return 2;
  }
  std::ifstream in(corpus_path, std::ios::binary);
  if (!in) {
    std::cerr << "speechllm-bpe-train: cannot read " << corpus_path << "\n";
    return 1;
  }
  std::stringstream corpus;
  corpus << in.rdbuf();

  speechllm::tools::BpeTrainerOptions options;
  options.vocab_size = vocab_size;
  options.special_tokens = *specials;
  absl::StatusOr<speechllm::tools::BpeTrainingResult> result =
      speechllm::tools::TrainByteLevelBpe(corpus.str(), options);
  if (!result.ok()) {
    std::cerr << "speechllm-bpe-train: " << result.status() << "\n";
    return 1;
  }
  std::error_code error;
  std::filesystem::create_directories(out_dir, error);
  const std::string out_path = (std::filesystem::path(out_dir) / "tokenizer.json").string();
  std::ofstream out(out_path, std::ios::binary);
  out << result->tokenizer_json;
  out.close();
  if (!out) {
    std::cerr << "speechllm-bpe-train: cannot write " << out_path << "\n";
    return 1;
  }
  // Reload what was written: the file must pass the tokenizer's own validation.
  auto reloaded = speechllm::engine::tokenizer::Tokenizer::FromTokenizerJson(out_path);
  if (!reloaded.ok()) {
    std::cerr << "speechllm-bpe-train: the written file does not load: " << reloaded.status()
              << "\n";
    return 1;
  }
  std::cout << "wrote " << out_path << ": " << (*reloaded)->num_base_tokens() << " base tokens ("
            << result->num_merges << " merges), " << (*reloaded)->added_tokens().size()
            << " special tokens, id limit " << (*reloaded)->id_limit() << "; "
            << result->num_distinct_words << " distinct words in the corpus\n";
  return 0;
}
