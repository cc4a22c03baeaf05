// speechllm-transcribe: offline transcription of WAV clips with a Qwen2-Audio checkpoint, exactly
// as Hugging Face computes it (greedy decoding). The prompt is given as raw ids (--prompt_ids) or,
// when the model has tokenizer files, built from the chat or base template with --instruction, as
// the server builds it. One clip (--wav): prints the generated token ids on the first line of
// stdout, then "text: ..." when the model has tokenizer files; timings on stderr. Many clips
// (--manifest): writes id<TAB>text lines to --out, the hypothesis file of speechllm-wer.
//   speechllm-transcribe --model models/qwen2-audio-tiny --wav clip.wav
//       --prompt_ids 1,2,3,501,500,502,10,11,12
//   speechllm-transcribe --model models/speechllm-asr-small --wav clip.wav
//   speechllm-transcribe --model DIR --manifest test.tsv --wav_dir test --out offline.tsv
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engine/io/program_flags.h"
#include "engine/io/wav_reader.h"
#include "engine/model/offline_transcriber.h"
#ifdef SPEECHLLM_HAVE_TOKENIZER
#include <filesystem>

#include "engine/model/tokenizer/prompt_builder.h"
#include "engine/model/tokenizer/tokenizer.h"
#endif

ABSL_FLAG(std::string, model, "",
          "Qwen2-Audio checkpoint directory (config.json + safetensors [+ tokenizer.json])");
ABSL_FLAG(std::string, wav, "",
          "WAV file at the model's sample rate (16 kHz); channels are averaged");
ABSL_FLAG(std::string, manifest, "",
          "TSV whose first column names clips <wav_dir>/<id>.wav (instead of --wav)");
ABSL_FLAG(std::string, wav_dir, "", "directory of the --manifest clips");
ABSL_FLAG(std::string, out, "", "with --manifest: write id<TAB>text lines here");
ABSL_FLAG(std::string, prompt_ids, "",
          "comma-separated prompt token ids holding one <|AUDIO|> placeholder (expanded to the "
          "clip's audio tokens); default: the --prompt_template prompt");
ABSL_FLAG(std::string, prompt_template, "chat", "chat or base (needs tokenizer files)");
ABSL_FLAG(std::string, instruction, "Transcribe the speech.",
          "the instruction after the audio in the template prompt (the server's default)");
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
  absl::SetProgramUsageMessage("Transcribes WAV clips offline (greedy, as Hugging Face does).");
  speechllm::engine::ParseProgramFlagsOnly(argc, argv);
  const std::string model_dir = absl::GetFlag(FLAGS_model);
  const std::string wav_path = absl::GetFlag(FLAGS_wav);
  const std::string manifest = absl::GetFlag(FLAGS_manifest);
  if (model_dir.empty() || wav_path.empty() == manifest.empty() ||
      (!manifest.empty() && absl::GetFlag(FLAGS_out).empty())) {
    std::cerr << "usage: speechllm-transcribe --model DIR (--wav FILE | --manifest TSV --wav_dir "
                 "DIR --out TSV) [--prompt_ids 1,2,3 | --prompt_template chat|base "
                 "--instruction TEXT] [--max_new_tokens N]\n";
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
#ifdef SPEECHLLM_HAVE_TOKENIZER
  namespace fs = std::filesystem;
  namespace tk = speechllm::engine::tokenizer;
  std::unique_ptr<tk::Tokenizer> tokenizer;
  if (fs::exists(fs::path(model_dir) / "tokenizer.json") ||
      fs::exists(fs::path(model_dir) / "vocab.json")) {
    auto loaded = tk::Tokenizer::FromDirectory(model_dir);
    if (!loaded.ok()) return Fail(loaded.status().ToString());
    tokenizer = *std::move(loaded);
  }
  if (prompt_ids.empty()) {
    if (tokenizer == nullptr) return Fail("the model has no tokenizer files: give --prompt_ids");
    auto builder = tk::PromptBuilder::Create(tokenizer.get());
    if (!builder.ok()) return Fail(builder.status().ToString());
    const std::string kind = absl::GetFlag(FLAGS_prompt_template);
    if (kind != "chat" && kind != "base") return Fail("--prompt_template must be chat or base");
    auto prompt = builder->BuildAudioRequest(
        kind == "chat" ? tk::PromptTemplate::kChat : tk::PromptTemplate::kBase,
        absl::GetFlag(FLAGS_instruction));
    if (!prompt.ok()) return Fail(prompt.status().ToString());
    prompt_ids = prompt->prefix_ids;
    prompt_ids.push_back(builder->special_tokens().audio);
    prompt_ids.insert(prompt_ids.end(), prompt->suffix_ids.begin(), prompt->suffix_ids.end());
  }
#endif
  if (prompt_ids.empty()) return Fail("give --prompt_ids (this build has no tokenizer)");
  speechllm::engine::RuntimeOptions options;
  options.device = absl::GetFlag(FLAGS_device);
  options.dtype = absl::GetFlag(FLAGS_dtype);
  options.num_threads = absl::GetFlag(FLAGS_threads);
  auto transcriber = speechllm::engine::OfflineTranscriber::Create(model_dir, options);
  if (!transcriber.ok()) return Fail(transcriber.status().ToString());
  const int sample_rate = (*transcriber)->config().features.sample_rate_hz;

  // Transcribes one file; `text` receives the decoded text when the model has a tokenizer.
  auto transcribe = [&](const std::string& path, speechllm::engine::OfflineResult* result,
                        std::string* text) -> absl::Status {
    auto samples = speechllm::engine::ReadMonoWavFile(path, sample_rate);
    if (!samples.ok()) return samples.status();
    auto transcribed =
        (*transcriber)->Transcribe(*samples, prompt_ids, absl::GetFlag(FLAGS_max_new_tokens));
    if (!transcribed.ok()) return transcribed.status();
    *result = *std::move(transcribed);
#ifdef SPEECHLLM_HAVE_TOKENIZER
    if (tokenizer != nullptr) {
      std::vector<int32_t> ids(result->generated_ids.begin(), result->generated_ids.end());
      tk::DecodeOptions options;
      options.skip_special_tokens = true;
      options.skip_tag_tokens = true;
      auto decoded = tokenizer->Decode(ids, options);
      if (!decoded.ok()) return decoded.status();
      *text = *std::move(decoded);
    }
#endif
    return absl::OkStatus();
  };

  if (!manifest.empty()) {
    std::ifstream in(manifest);
    if (!in) return Fail("cannot read --manifest " + manifest);
    std::ofstream out(absl::GetFlag(FLAGS_out), std::ios::trunc);
    // Found out before the first clip is transcribed, not after the last.
    if (!out) return Fail("cannot write --out " + absl::GetFlag(FLAGS_out));
    std::string line;
    int clips = 0;
    while (std::getline(in, line)) {
      const std::string id = line.substr(0, line.find('\t'));
      if (id.empty()) continue;
      speechllm::engine::OfflineResult result;
      std::string text;
      const std::string path = absl::GetFlag(FLAGS_wav_dir) + "/" + id + ".wav";
      if (absl::Status s = transcribe(path, &result, &text); !s.ok())
        return Fail(path + ": " + s.ToString());
      out << id << "\t" << text << "\n";
      ++clips;
    }
    out.close();
    if (!out) return Fail("cannot write --out " + absl::GetFlag(FLAGS_out));
    std::fprintf(stderr, "speechllm-transcribe: %d clips -> %s\n", clips,
                 absl::GetFlag(FLAGS_out).c_str());
    return 0;
  }
  speechllm::engine::OfflineResult result;
  std::string text;
  if (absl::Status s = transcribe(wav_path, &result, &text); !s.ok()) return Fail(s.ToString());
  std::cout << absl::StrJoin(result.generated_ids, " ") << "\n";
#ifdef SPEECHLLM_HAVE_TOKENIZER
  if (tokenizer != nullptr) std::cout << "text: " << text << "\n";
#endif
  std::fprintf(stderr,
               "prompt %zu tokens (%lld audio); generated %zu; features %.1f ms, encoder %.1f ms, "
               "prefill %.1f ms, decode %.1f ms (%lld steps)\n",
               result.prompt_ids.size(), static_cast<long long>(result.num_audio_tokens),
               result.generated_ids.size(), result.features_ms, result.encoder_ms,
               result.prefill_ms, result.decode_ms, static_cast<long long>(result.decode_steps));
  return 0;
}
