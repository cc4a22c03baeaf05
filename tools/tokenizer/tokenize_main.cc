// speechllm-tokenize: encodes stdin lines to token ids, or decodes id lines back to text, with the
// project's Qwen2 tokenizer; for scripting and checks. Single-threaded command-line program.
//   speechllm-tokenize --tokenizer DIR [--decode] [--skip-special]
// DIR holds tokenizer.json, or vocab.json + merges.txt (+ tokenizer_config.json); a tokenizer.json
// path is accepted too. Exit codes: 0 ok, 1 a line failed, 2 bad arguments or unloadable tokenizer.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engine/model/tokenizer/tokenizer.h"

namespace {

using speechllm::engine::tokenizer::DecodeOptions;
using speechllm::engine::tokenizer::Tokenizer;

constexpr char kUsage[] =
    "usage: speechllm-tokenize --tokenizer DIR [--decode] [--skip-special]\n"
    "  Reads lines on stdin. Without --decode prints one line of space-separated token ids per\n"
    "  input line (the newline itself is not encoded); with --decode reads such id lines and "
    "prints\n"
    "  the text. --skip-special drops special tokens when decoding.\n"
    "  DIR: tokenizer.json, or vocab.json + merges.txt (+ tokenizer_config.json); or a "
    "tokenizer.json path.\n";

struct Args {
  std::string tokenizer;
  bool decode = false;
  bool skip_special = false;
};

bool ParseArgs(int argc, char** argv, Args* args) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--tokenizer" && i + 1 < argc) {
      args->tokenizer = argv[++i];
    } else if (arg.rfind("--tokenizer=", 0) == 0) {
      args->tokenizer = arg.substr(12);
    } else if (arg == "--decode") {
      args->decode = true;
    } else if (arg == "--skip-special") {
      args->skip_special = true;
    } else {
      std::cerr << "speechllm-tokenize: unknown or incomplete argument \"" << arg << "\"\n";
      return false;
    }
  }
  return !args->tokenizer.empty();
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!ParseArgs(argc, argv, &args)) {
    std::cerr << kUsage;
    return 2;
  }
  const bool is_file = std::filesystem::is_regular_file(args.tokenizer);
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      is_file ? Tokenizer::FromTokenizerJson(args.tokenizer)
              : Tokenizer::FromDirectory(args.tokenizer);
  if (!tokenizer.ok()) {
    std::cerr << "speechllm-tokenize: " << tokenizer.status() << "\n";
    return 2;
  }
  DecodeOptions options;
  options.skip_special_tokens = args.skip_special;
  int exit_code = 0;
  std::string line;
  int64_t line_number = 0;
  while (std::getline(std::cin, line)) {
    ++line_number;
    if (!args.decode) {
      absl::StatusOr<std::vector<int32_t>> ids = (*tokenizer)->Encode(line);
      if (!ids.ok()) {
        std::cerr << "speechllm-tokenize: line " << line_number << ": " << ids.status() << "\n";
        std::cout << "\n";
        exit_code = 1;
        continue;
      }
      std::cout << absl::StrJoin(*ids, " ") << "\n";
      continue;
    }
    std::vector<int32_t> ids;
    bool ok = true;
    for (absl::string_view field : absl::StrSplit(line, ' ', absl::SkipWhitespace())) {
      int32_t id = 0;
      if (!absl::SimpleAtoi(field, &id)) {
        std::cerr << "speechllm-tokenize: line " << line_number << ": \"" << field
                  << "\" is not a token id\n";
        ok = false;
        break;
      }
      ids.push_back(id);
    }
    absl::StatusOr<std::string> text =
        ok ? (*tokenizer)->Decode(ids, options) : absl::StatusOr<std::string>(std::string());
    if (!text.ok()) {
      std::cerr << "speechllm-tokenize: line " << line_number << ": " << text.status() << "\n";
      ok = false;
    }
    if (!ok) exit_code = 1;
    std::cout << (ok ? *text : "") << "\n";
  }
  return exit_code;
}
