#include "engine/model/tokenizer/pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "absl/strings/str_cat.h"

namespace speechllm::engine::tokenizer {
namespace {

constexpr size_t kJitStackStartBytes = 32 * 1024;
constexpr size_t kJitStackMaxBytes = 8 * 1024 * 1024;  // long runs of letters need more than 32 KiB

// Per-thread PCRE2 scratch: match data for one offset pair (the patterns used have no capture
// group, and a smaller ovector still reports the whole match) and a JIT stack. Freed at thread
// exit.
struct ThreadScratch {
  pcre2_match_data* match_data = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* jit_stack =
      pcre2_jit_stack_create(kJitStackStartBytes, kJitStackMaxBytes, nullptr);
  ~ThreadScratch() {
    pcre2_match_data_free(match_data);
    pcre2_jit_stack_free(jit_stack);
  }
};

ThreadScratch& Scratch() {
  thread_local ThreadScratch scratch;
  return scratch;
}

pcre2_jit_stack* JitStackOfThisThread(void*) { return Scratch().jit_stack; }

std::string Pcre2Message(int error_code) {
  PCRE2_UCHAR buffer[256];
  const int n = pcre2_get_error_message(error_code, buffer, sizeof(buffer));
  return n < 0 ? absl::StrCat("PCRE2 error ", error_code)
               : std::string(reinterpret_cast<char*>(buffer));
}

// Length of the UTF-8 character starting with lead byte `c` (text is valid UTF-8).
size_t CharLength(unsigned char c) {
  if (c < 0x80) return 1;
  if (c < 0xE0) return 2;
  if (c < 0xF0) return 3;
  return 4;
}

// Unicode's White_Space characters (PropList.txt), which is what \s means in Oniguruma (HF
// tokenizers) and Python's regex. PCRE2's \s with UCP also takes U+180E MONGOLIAN VOWEL SEPARATOR
// (White_Space until Unicode 6.3), which would split Mongolian text differently.
constexpr char kWhiteSpaceItems[] =
    R"(\t-\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

}  // namespace

std::string WithUnicodeWhiteSpace(absl::string_view pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[++i];
      if (next == 's') {
        absl::StrAppend(&out,
                        in_class ? kWhiteSpaceItems : absl::StrCat("[", kWhiteSpaceItems, "]"));
      } else if (next == 'S' && !in_class) {
        absl::StrAppend(&out, "[^", kWhiteSpaceItems, "]");
      } else {
        out.push_back(c);
        out.push_back(next);
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out.push_back(c);
      // A ']' (after an optional '^') right after '[' is a literal, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out.push_back(pattern[++i]);
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out.push_back(pattern[++i]);
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out.push_back(c);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizer::Create(absl::string_view pattern) {
  std::unique_ptr<PreTokenizer> pre(new PreTokenizer());
  pre->pattern_ = std::string(pattern);
  const std::string compiled = WithUnicodeWhiteSpace(pattern);
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pre->code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(compiled.data()), compiled.size(),
                             PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (pre->code_ == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("split regex does not compile at offset ",
                                                   error_offset, ": ", Pcre2Message(error_code)));
  }
  // JIT is an optimisation: without it (unsupported CPU, no executable memory) the interpreter
  // runs.
  pre->jit_ = pcre2_jit_compile(pre->code_, PCRE2_JIT_COMPLETE) == 0;
  pre->match_context_ = pcre2_match_context_create(nullptr);
  if (pre->match_context_ == nullptr) return absl::ResourceExhaustedError("pcre2 match context");
  if (pre->jit_) pcre2_jit_stack_assign(pre->match_context_, &JitStackOfThisThread, nullptr);
  return pre;
}

PreTokenizer::~PreTokenizer() {
  pcre2_match_context_free(match_context_);
  pcre2_code_free(code_);
}

absl::Status PreTokenizer::Split(absl::string_view text,
                                 std::vector<absl::string_view>* pieces) const {
  ThreadScratch& scratch = Scratch();
  if (scratch.match_data == nullptr) return absl::ResourceExhaustedError("pcre2 match data");
  const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(scratch.match_data);
  size_t search_from = 0;
  size_t piece_begin = 0;  // end of the last emitted piece
  while (search_from < text.size()) {
    int rc = PCRE2_ERROR_JIT_STACKLIMIT;
    if (jit_ && scratch.jit_stack != nullptr) {
      rc = pcre2_jit_match(code_, subject, text.size(), search_from, 0, scratch.match_data,
                           match_context_);
    }
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {  // no JIT, or its stack ran out: use the interpreter
      // PCRE2_NO_JIT: a JIT-compiled pattern would otherwise run in JIT again.
      rc = pcre2_match(code_, subject, text.size(), search_from, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                       scratch.match_data, match_context_);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      return absl::InternalError(
          absl::StrCat("split regex failed at byte ", search_from, ": ", Pcre2Message(rc)));
    }
    const size_t begin = ovector[0];
    const size_t end = ovector[1];
    if (begin > piece_begin) pieces->push_back(text.substr(piece_begin, begin - piece_begin));
    if (end > begin) {
      pieces->push_back(text.substr(begin, end - begin));
      piece_begin = end;
      search_from = end;
    } else {  // empty match: emit nothing, move one character on
      if (begin >= text.size()) break;
      piece_begin = begin;
      search_from = begin + CharLength(static_cast<unsigned char>(text[begin]));
    }
  }
  if (piece_begin < text.size()) pieces->push_back(text.substr(piece_begin));
  return absl::OkStatus();
}

}  // namespace speechllm::engine::tokenizer
