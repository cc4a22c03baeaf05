// speechllm-wer: word error rate of hypotheses against references (tools/wer/wer.h).
//   speechllm-wer --ref test.tsv --hyp hyp.tsv [--details]
// Both files hold one utterance per line: its id in the first tab-separated column and its text
// in the last (so make_data.py's test.tsv, id<TAB>voice<TAB>text, serves as the reference). A
// reference id without a hypothesis counts as all deletions; hypothesis ids without a reference
// are an error.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_join.h"
#include "engine/io/program_flags.h"
#include "tools/wer/wer.h"

ABSL_FLAG(std::string, ref, "", "reference TSV: id<TAB>...<TAB>text");
ABSL_FLAG(std::string, hyp, "", "hypothesis TSV: id<TAB>text (an empty text is allowed)");
ABSL_FLAG(bool, details, false, "print every utterance with errors");

namespace {

// Reads `flag`'s TSV into `out`; false, with the reason printed, when the file cannot be read or
// names an id twice (the second would silently replace the first).
bool ReadTsv(const char* flag, const std::string& path, std::map<std::string, std::string>* out) {
  std::ifstream in(path);
  if (!in) {
    std::cerr << "speechllm-wer: cannot read " << flag << " \"" << path << "\"\n";
    return false;
  }
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const size_t first_tab = line.find('\t');
    const std::string id = line.substr(0, first_tab);
    const std::string text =
        first_tab == std::string::npos ? "" : line.substr(line.rfind('\t') + 1);
    if (!out->emplace(id, text).second) {
      std::cerr << "speechllm-wer: " << flag << " names \"" << id << "\" twice\n";
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Word error rate of --hyp against --ref.");
  speechllm::engine::ParseProgramFlagsOnly(argc, argv);
  std::map<std::string, std::string> references, hypotheses;
  if (!ReadTsv("--ref", absl::GetFlag(FLAGS_ref), &references) ||
      !ReadTsv("--hyp", absl::GetFlag(FLAGS_hyp), &hypotheses)) {
    return 2;
  }
  if (references.empty()) {  // a WER of 0 % over nothing is no measurement
    std::cerr << "speechllm-wer: --ref holds no utterance\n";
    return 2;
  }
  for (const auto& [id, text] : hypotheses) {
    if (references.count(id) == 0) {
      std::cerr << "speechllm-wer: hypothesis \"" << id << "\" has no reference\n";
      return 2;
    }
  }
  speechllm::tools::WordErrors total;
  int64_t utterances_with_errors = 0, missing = 0;
  for (const auto& [id, reference_text] : references) {
    const auto found = hypotheses.find(id);
    missing += found == hypotheses.end();
    const auto reference = speechllm::tools::NormalizeWords(reference_text);
    const auto hypothesis =
        speechllm::tools::NormalizeWords(found == hypotheses.end() ? std::string() : found->second);
    const speechllm::tools::WordErrors errors = speechllm::tools::AlignWords(reference, hypothesis);
    total += errors;
    if (errors.errors() > 0) {
      ++utterances_with_errors;
      if (absl::GetFlag(FLAGS_details)) {
        std::printf("%s\tref: %s\n%s\thyp: %s\n", id.c_str(), absl::StrJoin(reference, " ").c_str(),
                    id.c_str(), absl::StrJoin(hypothesis, " ").c_str());
      }
    }
  }
  std::printf(
      "WER %.2f%% (%lld substitutions, %lld deletions, %lld insertions over %lld words); %zu "
      "utterances, %lld with errors, %lld without a hypothesis\n",
      total.rate_percent(), static_cast<long long>(total.substitutions),
      static_cast<long long>(total.deletions), static_cast<long long>(total.insertions),
      static_cast<long long>(total.reference_words), references.size(),
      static_cast<long long>(utterances_with_errors), static_cast<long long>(missing));
  return 0;
}
