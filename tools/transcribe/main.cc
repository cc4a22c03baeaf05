// speechllm-transcribe: offline transcription of one WAV clip with a Qwen2-Audio checkpoint,
// exactly as Hugging Face computes it (greedy decoding). Prints the generated token ids on the
// first line of stdout, then "text: ..." when the model directory has tokenizer files; timings on
// stderr.
//   speechllm-transcribe --model models/qwen2-audio-tiny --wav clip.wav \
//       --prompt_ids 1,2,3,501,500,502,10,11,12
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engine/io/wav_reader.h"
#include "engine/model/offline_transcriber.h"
#ifdef SPEECHLLM_HAVE_TOKENIZER
#include <filesystem>

#include "engine/model/tokenizer/tokenizer.h"
#endif

ABSL_FLAG(std::string, model, "", "Qwen2-Audio checkpoint directory (config.json + safetensors)");
ABSL_FLAG(std::string, wav, "",
          "WAV file at the model's sample rate (16 kHz); channels are averaged");
ABSL_FLAG(std::string, prompt_ids, "",
          "comma-separated prompt token ids holding one <|AUDIO|> placeholder (expanded to the "
          "clip's audio tokens)");
ABSL_FLAG(int, max_new_tokens, 64,
          "greedy decoding stops after this many tokens or at a stop token");
ABSL_FLAG(std::string, device, "cpu", "cpu, cuda or cuda:N");
ABSL_FLAG(std::string, dtype, "", "float32, bfloat16 or float16 (default: the checkpoint's dtype)");
ABSL_FLAG(int, threads, 0, "CPU threads for libtorch (0 = its default)");

namespace {

int Fail(const std::string& message) {
  std::cerr << "speechllm-transcribe: " << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Transcribes one WAV clip offline and prints the generated token ids.");
  absl::ParseCommandLine(argc, argv);
  const std::string model_dir = absl::GetFlag(FLAGS_model);
  const std::string wav_path = absl::GetFlag(FLAGS_wav);
  if (model_dir.empty() || wav_path.empty() || absl::GetFlag(FLAGS_prompt_ids).empty()) {
    std::cerr << "usage: speechllm-transcribe --model DIR --wav FILE --prompt-ids 1,2,3 "
                 "[--max_new_tokens N]\n";
    return 2;
  }
  std::vector<int64_t> prompt_ids;
  for (absl::string_view piece :
       absl::StrSplit(absl::GetFlag(FLAGS_prompt_ids), ',', absl::SkipWhitespace())) {
    int64_t id;
    if (!absl::SimpleAtoi(piece, &id))
      return Fail("--prompt_ids: \"" + std::string(piece) + "\" is not an integer");
    prompt_ids.push_back(id);
  }
  speechllm::engine::RuntimeOptions options;
  options.device = absl::GetFlag(FLAGS_device);
  options.dtype = absl::GetFlag(FLAGS_dtype);
  options.num_threads = absl::GetFlag(FLAGS_threads);
  auto transcriber = speechllm::engine::OfflineTranscriber::Create(model_dir, options);
  if (!transcriber.ok()) return Fail(transcriber.status().ToString());
  auto samples = speechllm::engine::ReadMonoWavFile(
      wav_path, (*transcriber)->config().features.sample_rate_hz);
  if (!samples.ok()) return Fail(samples.status().ToString());
  auto result =
      (*transcriber)->Transcribe(*samples, prompt_ids, absl::GetFlag(FLAGS_max_new_tokens));
  if (!result.ok()) return Fail(result.status().ToString());
  std::cout << absl::StrJoin(result->generated_ids, " ") << "\n";
#ifdef SPEECHLLM_HAVE_TOKENIZER
  // With tokenizer files beside the weights, the text too (special tokens skipped).
  namespace fs = std::filesystem;
  if (fs::exists(fs::path(model_dir) / "tokenizer.json") ||
      fs::exists(fs::path(model_dir) / "vocab.json")) {
    auto tokenizer = speechllm::engine::tokenizer::Tokenizer::FromDirectory(model_dir);
    if (!tokenizer.ok()) return Fail(tokenizer.status().ToString());
    std::vector<int32_t> ids(result->generated_ids.begin(), result->generated_ids.end());
    auto text = (*tokenizer)->Decode(ids, {/*skip_special_tokens=*/true});
    if (!text.ok()) return Fail(text.status().ToString());
    std::cout << "text: " << *text << "\n";
  }
#endif
  std::fprintf(
      stderr,
      "audio %.2f s -> %lld audio tokens; prompt %zu tokens; generated %zu; features %.1f ms, "
      "encoder %.1f ms, prefill %.1f ms, decode %.1f ms\n",
      static_cast<double>(samples->size()) / (*transcriber)->config().features.sample_rate_hz,
      static_cast<long long>(result->num_audio_tokens), result->prompt_ids.size(),
      result->generated_ids.size(), result->features_ms, result->encoder_ms, result->prefill_ms,
      result->decode_ms);
  return 0;
}
