// speechllm-client: streams a WAV file (any PCM rate 8-48 kHz, sent as PCM_S16LE at the file's rate
// and channels), an Ogg Opus, WebM Opus or FLAC file (sent unchanged as OGG_OPUS, WEBM_OPUS or
// FLAC) or raw S16LE PCM from stdin to a speechllm server and prints partial and final transcripts,
// then client-side latencies and the server's SessionSummary. `--encode opus` turns WAV or stdin
// PCM into Ogg Opus on the fly.
// Microphone, Opus-compressed:
//   arecord -f S16_LE -r 48000 -c 2 | speechllm-client --server HOST:PORT --stdin-pcm 48000
//       --stdin-channels 2 --encode opus
// Ctrl-C (or SIGTERM) ends the input as a microphone that is switched off and still prints the
// finals, latencies and summary; a second one quits at once.
// Exit code: 0 on OK, otherwise 10 + the gRPC status code (2 for bad flags).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/channel_flags.h"
#include "client/client_channel.h"
#include "client/interrupt.h"
#include "client/opus_encoder.h"
#include "client/output_format.h"
#include "client/pcm_source.h"
#include "client/pcm_stream_reader.h"
#include "client/speech_client.h"
#include "client/stdin_sender.h"
#include "engine/io/program_flags.h"
#include "grpcpp/grpcpp.h"

ABSL_FLAG(std::string, server, "", "server address HOST:PORT");
ABSL_FLAG(std::string, wav, "", "WAV file to send (as PCM_S16LE at the file's rate and channels)");
ABSL_FLAG(std::string, file, "",
          "audio file: WAV (as --wav), or Ogg Opus (.opus/.ogg), WebM Opus (.webm) or FLAC "
          "(.flac), sent unchanged as OGG_OPUS, WEBM_OPUS or FLAC");
ABSL_FLAG(int, stdin_pcm, 0, "read raw S16LE PCM at this sample rate (Hz) from stdin");
ABSL_FLAG(int, stdin_channels, 1, "interleaved channels of the --stdin-pcm input");
ABSL_FLAG(bool, stdin_container, false,
          "send stdin's bytes unchanged, a WAV, Ogg Opus, WebM or FLAC stream the server tells by "
          "its first bytes (`arecord -f S16_LE -r 16000 | speechllm-client --stdin-container`)");
ABSL_FLAG(std::string, encode, "",
          "opus: encode WAV or stdin PCM as Ogg Opus on the fly (sent as OGG_OPUS)");
ABSL_FLAG(int, opus_bitrate, 24000, "bit/s of --encode opus");
ABSL_FLAG(int, chunk_ms, 100, "audio per AudioChunk, milliseconds");
ABSL_FLAG(bool, realtime, false,
          "pace chunks like a microphone (the default for files; stdin is paced by its writer)");
ABSL_FLAG(bool, fast, false, "send as fast as flow control allows");
ABSL_FLAG(bool, json, false, "print every response as one line of protobuf JSON");
ABSL_FLAG(bool, no_interim, false, "ask for finals only (interim_results = false)");
ABSL_FLAG(std::string, commit_policy, "", "local-agreement | none (default: server's)");
ABSL_FLAG(std::string, final_mode, "", "exact | fast (default: server's)");
ABSL_FLAG(std::string, endpointing, "", "continuous | single | manual (default: server's)");
ABSL_FLAG(std::string, latency, "", "low | balanced | accurate (default: balanced)");
ABSL_FLAG(std::vector<std::string>, language, {},
          "BCP-47 language hints, comma-separated (e.g. en-US); each must be one the server lists "
          "in GetCapabilities (default: none, the server's language)");
ABSL_FLAG(std::vector<std::string>, extension, {},
          "KEY=VALUE server extensions, all in one flag, comma-separated (chunk_ms, "
          "holdback_tokens, agreement, ...); a repeated flag keeps only its last value");
ABSL_FLAG(bool, token_ids, false, "ask for the token ids of finals and print them");
ABSL_FLAG(double, deadline_s, 0, "call deadline in seconds (0 = none)");
ABSL_FLAG(bool, recognize, false, "send the whole audio with the unary Recognize call");

namespace speechllm::client {
namespace {

using speechllm::v1::AudioFormat;
using speechllm::v1::Endpointing;
using speechllm::v1::ResultOptions;
using speechllm::v1::SessionConfig;

constexpr int kExitBadFlags = 2;
// Largest message of a piped container: half the server's default max_chunk_bytes, so a 48 kHz
// stereo WAV is not hundreds of messages a second.
constexpr int64_t kStdinContainerMessageBytes = 32 * 1024;

int Fail(const std::string& message) {
  std::cerr << "speechllm-client: " << message << "\n";
  return kExitBadFlags;
}

int ExitCode(const grpc::Status& status) {
  if (status.ok()) return 0;
  std::cerr << "status: " << DescribeStatus(status) << "\n";
  return 10 + static_cast<int>(status.error_code());
}

void PrintLine(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

// The session config from the flags; INVALID_ARGUMENT names a bad flag value.
absl::Status BuildConfig(const AudioFormat& audio, SessionConfig* config) {
  *config->mutable_audio() = audio;
  ResultOptions* results = config->mutable_results();
  results->set_interim_results(!absl::GetFlag(FLAGS_no_interim));
  results->set_token_ids(absl::GetFlag(FLAGS_token_ids));
  const std::string policy = absl::GetFlag(FLAGS_commit_policy);
  if (policy == "local-agreement") {
    results->set_commit_policy(ResultOptions::LOCAL_AGREEMENT);
  } else if (policy == "none") {
    results->set_commit_policy(ResultOptions::NONE);
  } else if (!policy.empty()) {
    return absl::InvalidArgumentError("--commit-policy must be local-agreement or none");
  }
  const std::string mode = absl::GetFlag(FLAGS_final_mode);
  if (mode == "exact") {
    results->set_final_mode(ResultOptions::EXACT);
  } else if (mode == "fast") {
    results->set_final_mode(ResultOptions::FAST);
  } else if (!mode.empty()) {
    return absl::InvalidArgumentError("--final-mode must be exact or fast");
  }
  const std::string endpointing = absl::GetFlag(FLAGS_endpointing);
  if (endpointing == "continuous") {
    config->mutable_endpointing()->set_mode(Endpointing::CONTINUOUS);
  } else if (endpointing == "single") {
    config->mutable_endpointing()->set_mode(Endpointing::SINGLE_UTTERANCE);
  } else if (endpointing == "manual") {
    config->mutable_endpointing()->set_mode(Endpointing::MANUAL);
  } else if (!endpointing.empty()) {
    return absl::InvalidArgumentError("--endpointing must be continuous, single or manual");
  }
  const std::string latency = absl::GetFlag(FLAGS_latency);
  if (latency == "low") {
    config->set_latency(SessionConfig::LOW);
  } else if (latency == "balanced") {
    config->set_latency(SessionConfig::BALANCED);
  } else if (latency == "accurate") {
    config->set_latency(SessionConfig::ACCURATE);
  } else if (!latency.empty()) {
    return absl::InvalidArgumentError("--latency must be low, balanced or accurate");
  }
  for (const std::string& code : absl::GetFlag(FLAGS_language)) config->add_language_codes(code);
  for (const std::string& extension : absl::GetFlag(FLAGS_extension)) {
    const size_t equals = extension.find('=');
    if (equals == std::string::npos || equals == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--extension \"", extension, "\" is not KEY=VALUE"));
    }
    (*config->mutable_extensions())[extension.substr(0, equals)] = extension.substr(equals + 1);
  }
  return absl::OkStatus();
}

int RunRecognize(speechllm::v1::StreamingSpeech::Stub* stub, const SessionConfig& config,
                 const std::string& audio, bool json) {
  speechllm::v1::RecognizeRequest request;
  *request.mutable_config() = config;
  request.set_audio(audio);
  speechllm::v1::RecognizeResponse response;
  grpc::ClientContext context;
  const double deadline_s = absl::GetFlag(FLAGS_deadline_s);
  if (deadline_s > 0) {
    context.set_deadline(std::chrono::system_clock::now() +
                         absl::ToChronoMicroseconds(absl::Seconds(deadline_s)));
  }
  if (const auto authorization = AuthorizationFromFlags()) {
    context.AddMetadata(authorization->first, authorization->second);
  }
  const Clock::time_point start = Clock::now();
  const grpc::Status status = stub->Recognize(&context, request, &response);
  const absl::Duration wall = absl::FromChrono(Clock::now() - start);
  if (!status.ok()) return ExitCode(status);
  if (json) {
    absl::StatusOr<std::string> line = ToJsonLine(response);
    PrintLine(line.ok() ? *line + "\n" : line.status().ToString() + "\n");
  } else {
    TranscriptPrinter printer(/*terminal=*/false, absl::GetFlag(FLAGS_token_ids));
    for (const auto& result : response.results()) PrintLine(printer.Render(result));
  }
  std::cerr << "recognize: wall " << absl::ToDoubleMilliseconds(wall) << " ms\n";
  return 0;
}

int Run() {
  const std::string server = absl::GetFlag(FLAGS_server);
  const std::string wav_path = absl::GetFlag(FLAGS_wav);
  const std::string file_path = absl::GetFlag(FLAGS_file);
  const std::string path = wav_path.empty() ? file_path : wav_path;
  const int stdin_rate_hz = absl::GetFlag(FLAGS_stdin_pcm);
  const bool stdin_container = absl::GetFlag(FLAGS_stdin_container);
  const std::string encode = absl::GetFlag(FLAGS_encode);
  if (server.empty()) return Fail("--server HOST:PORT is required");
  if (stdin_rate_hz < 0) return Fail("--stdin-pcm must be a positive sample rate");
  if ((wav_path.empty() ? 0 : 1) + (file_path.empty() ? 0 : 1) + (stdin_rate_hz > 0 ? 1 : 0) +
          (stdin_container ? 1 : 0) !=
      1)
    return Fail("give exactly one of --wav, --file, --stdin-pcm, --stdin-container");
  if (!encode.empty() && encode != "opus") return Fail("--encode must be opus");
  const bool to_opus = encode == "opus";
  if (to_opus && stdin_container) return Fail("--encode opus takes PCM, not --stdin-container");
  const int stdin_channels = absl::GetFlag(FLAGS_stdin_channels);
  if (stdin_channels < 1 || stdin_channels > 8) return Fail("--stdin-channels must be 1 to 8");
  if (absl::GetFlag(FLAGS_realtime) && absl::GetFlag(FLAGS_fast)) {
    return Fail("--realtime and --fast exclude each other");
  }
  if (absl::GetFlag(FLAGS_chunk_ms) <= 0) return Fail("--chunk-ms must be positive");
  if (const double d = absl::GetFlag(FLAGS_deadline_s); !(d >= 0 && d <= 1e9)) {  // NaN too
    return Fail("--deadline-s must be from 0 (none) to 1e9 seconds");
  }
  const bool json = absl::GetFlag(FLAGS_json);

  PcmAudio wav_audio;
  PcmStreamReader stdin_reader = stdin_container
                                     ? PcmStreamReader(STDIN_FILENO)
                                     : PcmStreamReader(STDIN_FILENO, stdin_rate_hz, stdin_channels);
  if (!path.empty()) {
    absl::StatusOr<PcmAudio> audio = ReadWavAsPcm(path);
    if (to_opus) {
      audio = ReadWavAsOggOpus(path, absl::GetFlag(FLAGS_opus_bitrate));
    } else if (wav_path.empty()) {
      audio = ReadAudioFile(path);  // --file: WAV or a container
    }
    if (!audio.ok()) return Fail(audio.status().ToString());
    wav_audio = *std::move(audio);
  }
  std::unique_ptr<OggOpusEncoder> stdin_encoder;
  AudioFormat format = path.empty() ? stdin_reader.format() : wav_audio.format;
  if (path.empty() && to_opus) {
    OggOpusEncoderOptions options;
    options.sample_rate_hz = stdin_rate_hz;
    options.channels = stdin_channels;
    options.bitrate_bps = absl::GetFlag(FLAGS_opus_bitrate);
    options.max_page_delay_ms = absl::GetFlag(FLAGS_chunk_ms);
    absl::StatusOr<std::unique_ptr<OggOpusEncoder>> encoder = OggOpusEncoder::Create(options);
    if (!encoder.ok()) return Fail(encoder.status().ToString());
    stdin_encoder = *std::move(encoder);
    format = AudioFormat();
    format.set_encoding(AudioFormat::OGG_OPUS);
  }
  SessionConfig config;
  if (absl::Status status = BuildConfig(format, &config); !status.ok()) {
    return Fail(std::string(status.message()));
  }

  if (absl::Status flags = CheckChannelFlags(); !flags.ok()) return Fail(flags.ToString());
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      CreateClientChannel(server, ChannelSecurityFromFlags());
  if (!channel.ok()) return Fail(channel.status().ToString());
  auto stub = speechllm::v1::StreamingSpeech::NewStub(*channel);
  // Ctrl-C ends the input as a microphone switched off; --recognize then sends what was read.
  CatchInterrupts(
      "\nspeechllm-client: interrupted: ending the input; the results of what was sent follow "
      "(again to quit)\n");
  if (absl::GetFlag(FLAGS_recognize)) {
    if (path.empty()) {
      absl::StatusOr<PcmAudio> all = stdin_reader.ReadAll(Interrupted);
      if (!all.ok()) return Fail(all.status().ToString());
      WarnOfDroppedBytes(stdin_reader);
      wav_audio = *std::move(all);
      if (stdin_encoder != nullptr) {
        const std::vector<float> samples = DecodePcmS16le(wav_audio.data);
        std::string ogg;
        absl::Status status = stdin_encoder->Write(samples, &ogg);
        if (status.ok()) status = stdin_encoder->Finish(&ogg);
        if (!status.ok()) return Fail(status.ToString());
        wav_audio.data = std::move(ogg);
      }
    }
    return RunRecognize(stub.get(), config, wav_audio.data, json);
  }

  StreamingClientOptions options;
  options.chunk_ms = absl::GetFlag(FLAGS_chunk_ms);
  bool pace_encoded_stdin = false;  // --realtime with --encode opus from stdin
  // A file is paced like a microphone unless --fast; stdin is paced by whatever writes it (a
  // recorder), and pacing it again would hold every chunk back one chunk_ms more.
  options.realtime = path.empty() ? absl::GetFlag(FLAGS_realtime) : !absl::GetFlag(FLAGS_fast);
  options.config = config;
  // A piped container goes out as it arrives (SendStdinBlocks), in messages of up to 32 KiB.
  if (path.empty() && stdin_container) options.chunk_bytes = kStdinContainerMessageBytes;
  if (format.encoding() == AudioFormat::OGG_OPUS || format.encoding() == AudioFormat::WEBM_OPUS ||
      format.encoding() == AudioFormat::FLAC || stdin_container) {
    // No fixed byte rate: chunk sizes follow the stream's average rate (files, which are paced by
    // it) or the bitrate (stdin, sent as it is read or, for --encode opus with --realtime, as the
    // PCM plays: SendStdinAsOpus).
    const double seconds = wav_audio.duration_seconds();
    options.bytes_per_second =
        !path.empty() && seconds > 0
            ? std::max<int64_t>(static_cast<int64_t>(wav_audio.data.size() / seconds), 1)
            : std::max(absl::GetFlag(FLAGS_opus_bitrate) / 8, 1);
    // Page sizes only approximate a pipe's time, and a file without a known duration has no rate
    // to pace by (the bitrate would be a guess): both go out as fast as they are read. Opus
    // encoded here from piped PCM is paced by the PCM's time instead (SendStdinAsOpus).
    pace_encoded_stdin = options.realtime && stdin_encoder != nullptr;
    if (options.realtime && (path.empty() || seconds <= 0) && stdin_encoder == nullptr) {
      std::cerr << "speechllm-client: "
                << (path.empty() ? "a piped container" : "a file of unknown duration")
                << " is sent without pacing (--realtime and file pacing need a known rate)\n";
    }
    if (path.empty() || seconds <= 0) options.realtime = false;
  }
  if (const double deadline_s = absl::GetFlag(FLAGS_deadline_s); deadline_s > 0) {
    options.deadline = absl::Seconds(deadline_s);
  }
  if (const auto authorization = AuthorizationFromFlags()) {
    options.metadata.push_back(*authorization);
  }
  StreamingClient client(stub.get(), options);
  TranscriptPrinter printer(/*terminal=*/isatty(STDOUT_FILENO) != 0,
                            absl::GetFlag(FLAGS_token_ids));
  // SINGLE_UTTERANCE: once the server says the utterance is over, the rest of the audio would only
  // be read and dropped (API.md 4.4), so sending stops as at Ctrl-C.
  std::atomic<bool> single_utterance_over{false};
  // Responses arrive one at a time (one read in flight), so the printer needs no lock.
  client.SetResponseCallback([&](const ResponseRecord& record) {
    if (record.response.has_speech_event() &&
        record.response.speech_event().type() ==
            speechllm::v1::SpeechEvent::END_OF_SINGLE_UTTERANCE) {
      single_utterance_over = true;
    }
    if (json) {
      absl::StatusOr<std::string> line = ToJsonLine(record.response);
      PrintLine(line.ok() ? *line + "\n" : line.status().ToString() + "\n");
    } else if (record.response.has_transcript()) {
      PrintLine(printer.Render(record.response.transcript()));
    } else if (record.response.has_warning()) {
      // Warnings (a guard removed text, backlog, flow control) go to stderr, apart from the text.
      const speechllm::v1::Warning& warning = record.response.warning();
      std::cerr << "speechllm-client: warning " << speechllm::v1::Warning::Code_Name(warning.code())
                << ": " << warning.message() << "\n";
    }
  });
  if (absl::Status status = client.Start(); !status.ok()) return Fail(status.ToString());

  // Reading stdin stops at Ctrl-C and when the call has ended (a deadline, a server error), even
  // while the recorder is quiet.
  const std::function<bool()> stop_reading = [&client, &single_utterance_over] {
    return Interrupted() || single_utterance_over || client.WaitForDone(absl::ZeroDuration());
  };
  std::optional<absl::Duration> audio_duration;  // when the chunks' offsets are estimates
  if (!path.empty()) {
    (void)client.SendAudio(wav_audio.data);
  } else if (stdin_encoder != nullptr) {
    audio_duration =
        SendStdinAsOpus(&stdin_reader, stdin_encoder.get(), absl::GetFlag(FLAGS_chunk_ms),
                        pace_encoded_stdin, &client, stop_reading);
  } else {
    // Raw PCM in chunk_ms pieces; a container's bytes as they come.
    SendStdinBlocks(&stdin_reader, client.chunk_size_bytes(), &client, stop_reading);
  }
  (void)client.CloseSend();
  // A file's paced audio is still queued here: Ctrl-C drops what has not been sent yet.
  bool audio_stopped = false;
  while (!client.WaitForDone(absl::Milliseconds(100))) {
    if ((Interrupted() || single_utterance_over) && !audio_stopped) {
      (void)client.StopAudio();
      audio_stopped = true;
    }
  }
  const grpc::Status status = client.Await();
  if (!json) PrintLine(printer.Finish());

  const std::vector<ResponseRecord> responses = client.responses();
  const speechllm::v1::SessionSummary* summary = nullptr;
  for (const ResponseRecord& record : responses) {
    if (record.response.has_summary()) summary = &record.response.summary();
  }
  // A piped container's duration is the server's to tell (the chunks' offsets assume a bitrate).
  if (stdin_container && summary != nullptr && summary->has_audio_total()) {
    audio_duration = absl::Seconds(summary->audio_total().seconds()) +
                     absl::Nanoseconds(summary->audio_total().nanos());
  }
  const StreamReport report = ComputeStreamReport(
      responses, client.sent_chunks(), client.start_time(), client.done_time(), audio_duration);
  std::cerr << FormatStreamReport(report, summary);
  return ExitCode(status);
}

}  // namespace
}  // namespace speechllm::client

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "speechllm-client --server HOST:PORT (--wav FILE | --file WAV_OPUS_WEBM_OR_FLAC | "
      "--stdin-pcm RATE [--stdin-channels N] | --stdin-container) "
      "[--encode opus [--opus-bitrate BPS]] [--chunk-ms N] "
      "[--realtime|--fast] [--json] [--no-interim] [--commit-policy local-agreement|none] "
      "[--final-mode exact|fast] [--endpointing continuous|single|manual] "
      "[--latency low|balanced|accurate] [--extension KEY=VALUE,...] [--token-ids] "
      "[--deadline-s S] [--token TOKEN] [--recognize] [--tls] [--tls-ca PEM] "
      "[--tls-cert PEM --tls-key PEM] [--tls-server-name NAME]");
  // The documented spelling --chunk-ms is --chunk_ms.
  speechllm::engine::ParseProgramFlagsOnly(argc, argv);
  return speechllm::client::Run();
}
