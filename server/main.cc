// speechllm-server: the streaming speech recognition server. Loads a Qwen2-Audio checkpoint, starts
// the engine loop and the output dispatcher, serves speechllm.v1.StreamingSpeech,
// grpc.health.v1.Health and server reflection, and drains gracefully on SIGINT/SIGTERM. Optional:
// Prometheus metrics on their own HTTP port, TLS / mutual TLS and bearer tokens on the gRPC port, a
// plaintext health-only port for probes (README "Running in production"). Flags exist only here;
// --flag-name is accepted for --flag_name.
//   speechllm-server --model models/qwen2-audio-tiny --listen 127.0.0.1:50051
//       --prompt_prefix_ids 1,2,3,501 --prompt_suffix_ids 502,10,11,12 (one command line)
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/cleanup/cleanup.h"
#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "engine/allocator_tuning.h"
#include "engine/engine.h"
#include "engine/io/program_flags.h"
#include "engine/torch_model_runner.h"
#include "server/builder_options.h"
#include "server/capacity_report.h"
#include "server/embedding_cache_setup.h"
#include "server/engine_health.h"
#include "server/grpc_status.h"
#include "server/health_service.h"
#include "server/listen_sockets.h"
#include "server/metrics.h"
#include "server/metrics_http.h"
#include "server/port_file.h"
#include "server/prompt_source.h"
#include "server/service_context.h"
#include "server/shutdown_signals.h"
#include "server/speech_service.h"
#include "server/tls.h"
#include "server/warm_up.h"

ABSL_FLAG(std::string, model, "",
          "Qwen2-Audio checkpoint directory (config.json, safetensors, tokenizer files)");
ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "host:port to serve gRPC on (port 0 picks a free one)");
ABSL_FLAG(std::string, port_file, "",
          "write the bound port to this file once serving (for scripts and tests)");
ABSL_FLAG(std::string, model_name, "qwen2-audio",
          "the model's name in GetCapabilities and configs");
ABSL_FLAG(std::vector<std::string>, languages, {"en"},
          "BCP-47 codes of the languages the model transcribes (comma-separated): GetCapabilities "
          "lists them, a request's language_codes must name one, and results report it");
ABSL_FLAG(std::string, device, "cpu", "cpu, cuda or cuda:N");
ABSL_FLAG(std::string, dtype, "", "float32, bfloat16 or float16 (default: the checkpoint's)");
ABSL_FLAG(int, threads, 0, "libtorch CPU threads (0 = libtorch's default)");
ABSL_FLAG(int, blas_threads, -1,
          "OpenBLAS threads for CPU matrix products (-1: automatic, OpenBLAS's own count up to 16 "
          "live sequences and one less than libtorch's threads beyond; 0: leave OpenBLAS alone; "
          "N: N)");
ABSL_FLAG(int, kv_cache_mb, 512,
          "memory for the decoder's KV cache, in MiB (the start-up log says how many streams fit)");
ABSL_FLAG(int, encoder_kv_cache_mb, 0,
          "memory for the encoder keys and values that partials cache per utterance, in MiB (0: "
          "as much as the streams that fit the KV cache need; the start-up log says how much)");
ABSL_FLAG(std::string, prompt_prefix_ids, "",
          "raw prompt ids before the audio tokens (with --prompt_suffix_ids)");
ABSL_FLAG(std::string, prompt_suffix_ids, "", "raw prompt ids after the audio tokens");
ABSL_FLAG(std::string, prompt_template, "chat",
          "with a tokenizer and no raw ids: chat (Instruct) or base");
ABSL_FLAG(std::string, instruction, "Transcribe the speech.",
          "the instruction after the audio (templates); {language} becomes the stream's language");
ABSL_FLAG(int, max_new_tokens, 256, "longest transcript of one utterance, in tokens");
ABSL_FLAG(int, repetition_guard_tokens, 32,
          "a transcript that ends in a loop (one run of tokens repeated back to back at least 3 "
          "times, spanning at least this many tokens) is cut after the first copy, and decoding "
          "stops (REPETITION_SUPPRESSED warning); 0 turns the guard off");
ABSL_FLAG(int, silence_guard_min_speech_ms, 100,
          "an utterance with less speech than this (voice-activity frames above its thresholds) "
          "shows no text: partials are held back and the final is empty, after a "
          "SILENCE_SUPPRESSED warning; 0 turns the guard off");
ABSL_FLAG(int, carry_context_chars, 0,
          "the last this many characters of a stream's committed text go into its next "
          "utterance's prompt as context (needs a tokenizer template; 0: off, every utterance "
          "is transcribed as if alone)");
ABSL_FLAG(int, max_prompt_suffix_tokens, 512,
          "tokens the prompt may hold after the audio (the template's end, recognition context and "
          "phrases); a longer context is refused when it arrives");
ABSL_FLAG(int, max_streams, 64, "concurrent calls; more are refused with RESOURCE_EXHAUSTED");
ABSL_FLAG(int, max_chunk_bytes, 64 * 1024, "largest AudioChunk");
ABSL_FLAG(int, idle_timeout_s, 30,
          "a stream without any message for this long ends with OUT_OF_RANGE");
ABSL_FLAG(int, max_stream_duration_s, 3600, "a stream this old ends with OUT_OF_RANGE");
ABSL_FLAG(int, max_buffered_audio_ms, 10000, "per-stream audio backlog before reading pauses");
ABSL_FLAG(int, max_recognize_audio_s, 300, "longest clip Recognize accepts");
ABSL_FLAG(int, drain_grace_s, 30,
          "on SIGTERM: how long open streams may finish before they are ended");
ABSL_FLAG(int, engine_stall_s, 120,
          "health turns NOT_SERVING while one engine step has run longer than this (0 = off)");
ABSL_FLAG(int, chunk_ms, 1000, "default encoder chunk (a multiple of 40 ms)");
ABSL_FLAG(bool, reflection, true, "serve gRPC server reflection");
ABSL_FLAG(int, max_receive_message_bytes, 64 << 20,
          "largest request message (RESOURCE_EXHAUSTED above it; the transport refuses messages "
          "above twice this)");
ABSL_FLAG(int, max_pending_responses, 512,
          "unsent responses before a stream counts as not reading (RESOURCE_EXHAUSTED)");
ABSL_FLAG(std::string, metrics_listen, "",
          "host:port for Prometheus metrics over HTTP at /metrics (port 0 picks one; empty = off)");
ABSL_FLAG(std::string, metrics_port_file, "", "write the bound metrics port to this file");
ABSL_FLAG(std::string, health_listen, "",
          "host:port of an extra plaintext port serving only grpc.health.v1.Health (for probes "
          "when the main port uses TLS; empty = off); it never asks for a token, whatever "
          "--auth_exempt_health says of the main port");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain: serve gRPC over TLS (with --tls_key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle: require client certificates signed by it (mutual TLS)");
ABSL_FLAG(std::string, token_file, "",
          "bearer tokens, one per line: calls without \"authorization: Bearer <token>\" end with "
          "UNAUTHENTICATED (needs TLS)");
ABSL_FLAG(bool, auth_exempt_health, true, "grpc.health.v1.Health on --listen needs no token");
ABSL_FLAG(bool, auth_exempt_reflection, false, "server reflection needs no token");
ABSL_FLAG(std::string, embedding_cache_dir, "", "embedding cache directory (empty: no cache)");
ABSL_FLAG(int64_t, embedding_cache_mb, 1024, "size cap of the embedding cache directory");
ABSL_FLAG(int, cache_threads, 2, "worker threads of the embedding cache's I/O");
ABSL_FLAG(std::string, embedding_cache_redis, "", "host:port of a Redis the replicas share");
ABSL_FLAG(int64_t, embedding_cache_redis_ttl_s, 86400, "lifetime of an entry in Redis");

namespace {

using namespace speechllm;

int Fail(const std::string& message) {
  std::cerr << "speechllm-server: " << message << std::endl;
  // A signal during the teardown that follows must not turn exit code 1 into the watcher's 0.
  server::ShutdownSignals::StopExitingOnSignal();
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Serves streaming speech recognition with a Qwen2-Audio checkpoint over gRPC.");
  speechllm::engine::ParseProgramFlagsOnly(argc, argv);
  speechllm::engine::TuneAllocatorForTensors();
  const std::string model_dir = absl::GetFlag(FLAGS_model);
  if (model_dir.empty()) return Fail("--model is required");

  // SIGINT/SIGTERM stop the start-up at once (exit 0), and start the drain once ports are open.
  if (absl::Status s = server::ShutdownSignals::Install(); !s.ok()) return Fail(s.ToString());
  server::ShutdownSignals::ExitOnSignalUntilServing("start-up");

  server::ServiceContext ctx;
  server::ServerConfig& config = ctx.config;
  config.listen_address = absl::GetFlag(FLAGS_listen);
  config.model_name = absl::GetFlag(FLAGS_model_name);
  config.language_codes = absl::GetFlag(FLAGS_languages);
  config.max_streams = absl::GetFlag(FLAGS_max_streams);
  config.max_chunk_bytes = absl::GetFlag(FLAGS_max_chunk_bytes);
  config.idle_timeout = absl::Seconds(absl::GetFlag(FLAGS_idle_timeout_s));
  config.max_stream_duration = absl::Seconds(absl::GetFlag(FLAGS_max_stream_duration_s));
  config.max_buffered_audio_ms = absl::GetFlag(FLAGS_max_buffered_audio_ms);
  config.max_recognize_audio = absl::Seconds(absl::GetFlag(FLAGS_max_recognize_audio_s));
  config.drain_grace = absl::Seconds(absl::GetFlag(FLAGS_drain_grace_s));
  config.default_chunk_ms = absl::GetFlag(FLAGS_chunk_ms);
  config.max_new_tokens = absl::GetFlag(FLAGS_max_new_tokens);
  config.max_prompt_suffix_tokens = absl::GetFlag(FLAGS_max_prompt_suffix_tokens);
  config.repetition_guard_tokens = absl::GetFlag(FLAGS_repetition_guard_tokens);
  config.silence_guard_min_speech_ms = absl::GetFlag(FLAGS_silence_guard_min_speech_ms);
  config.carry_context_chars = absl::GetFlag(FLAGS_carry_context_chars);
  config.reflection = absl::GetFlag(FLAGS_reflection);
  config.max_receive_message_bytes = absl::GetFlag(FLAGS_max_receive_message_bytes);
  config.max_pending_responses = absl::GetFlag(FLAGS_max_pending_responses);
  config.metrics_listen_address = absl::GetFlag(FLAGS_metrics_listen);
  config.health_listen_address = absl::GetFlag(FLAGS_health_listen);
  config.tls_cert_path = absl::GetFlag(FLAGS_tls_cert);
  config.tls_key_path = absl::GetFlag(FLAGS_tls_key);
  config.tls_client_ca_path = absl::GetFlag(FLAGS_tls_client_ca);
  config.token_file = absl::GetFlag(FLAGS_token_file);
  config.auth_exempt_health = absl::GetFlag(FLAGS_auth_exempt_health);
  config.auth_exempt_reflection = absl::GetFlag(FLAGS_auth_exempt_reflection);
  config.embedding_cache_dir = absl::GetFlag(FLAGS_embedding_cache_dir);
  config.embedding_cache_mb = absl::GetFlag(FLAGS_embedding_cache_mb);
  config.cache_threads = absl::GetFlag(FLAGS_cache_threads);
  config.embedding_cache_redis = absl::GetFlag(FLAGS_embedding_cache_redis);
  config.embedding_cache_redis_ttl_s = absl::GetFlag(FLAGS_embedding_cache_redis_ttl_s);
  if (absl::Status status = config.Validate(); !status.ok()) return Fail(status.ToString());
  for (const std::string& address : {config.listen_address, config.health_listen_address}) {
    if (absl::Status s = server::CheckPortFree(address); !s.ok()) return Fail(s.ToString());
  }
  server::Metrics metrics(SPEECHLLM_VERSION);
  ctx.metrics = &metrics;
  // Read the TLS files and tokens before the model loads: a typo fails in milliseconds.
  auto credentials = server::BuildServerCredentials(config, &metrics);
  if (!credentials.ok()) return Fail(credentials.status().ToString());
  // Metrics answer from here on, through the model load and warm-up (speechllm_ready 0 until
  // SERVING): a replica loading a large checkpoint is up to Prometheus, not down.
  std::unique_ptr<server::MetricsHttpServer> metrics_http;
  if (!config.metrics_listen_address.empty()) {
    auto started = server::MetricsHttpServer::Start(config.metrics_listen_address, &metrics);
    if (!started.ok()) return Fail(started.status().ToString());
    metrics_http = *std::move(started);
    std::cout << "speechllm-server metrics on port " << metrics_http->port() << std::endl;
    if (absl::Status s =
            server::WritePortFile(absl::GetFlag(FLAGS_metrics_port_file), metrics_http->port());
        !s.ok()) {
      return Fail(s.ToString());
    }
  }

  engine::TorchRunnerConfig runner_config;
  runner_config.runtime.device = absl::GetFlag(FLAGS_device);
  runner_config.runtime.dtype = absl::GetFlag(FLAGS_dtype);
  runner_config.runtime.num_threads = absl::GetFlag(FLAGS_threads);
  runner_config.runtime.blas_threads = absl::GetFlag(FLAGS_blas_threads);
  if (absl::GetFlag(FLAGS_kv_cache_mb) <= 0) return Fail("--kv_cache_mb must be positive");
  if (absl::GetFlag(FLAGS_encoder_kv_cache_mb) < 0)
    return Fail("--encoder_kv_cache_mb must be >= 0 (0: automatic)");
  runner_config.kv_cache_bytes = absl::GetFlag(FLAGS_kv_cache_mb) * (int64_t{1} << 20);
  runner_config.cuda_graph_max_batch = config.max_streams;  // the engine's largest decode step
  auto runner = engine::TorchModelRunner::Create(model_dir, runner_config);
  if (!runner.ok()) return Fail(runner.status().ToString());
  const std::string runner_summary = runner_config.runtime.device == "cpu"
                                         ? (*runner)->threads_summary()
                                         : (*runner)->graphs_summary();

  std::unique_ptr<engine::tokenizer::Tokenizer> tokenizer;
  if (std::filesystem::exists(std::filesystem::path(model_dir) / "tokenizer.json") ||
      std::filesystem::exists(std::filesystem::path(model_dir) / "vocab.json")) {
    auto loaded = engine::tokenizer::Tokenizer::FromDirectory(model_dir);
    if (!loaded.ok()) return Fail(loaded.status().ToString());
    tokenizer = std::move(loaded).value();
  }
  absl::StatusOr<server::PromptSource> prompt_from_flags = server::PromptSource::FromFlags(
      tokenizer.get(), absl::GetFlag(FLAGS_prompt_prefix_ids),
      absl::GetFlag(FLAGS_prompt_suffix_ids), absl::GetFlag(FLAGS_prompt_template),
      absl::GetFlag(FLAGS_instruction));
  if (!prompt_from_flags.ok()) return Fail(std::string(prompt_from_flags.status().message()));
  server::PromptSource prompt = *std::move(prompt_from_flags);
  prompt.set_default_language(config.language_codes.front());

  const absl::StatusOr<streaming::PromptConfig> plain =
      prompt.PlainPrompt(config.carry_context_chars, config.max_prompt_suffix_tokens);
  if (!plain.ok()) return Fail(std::string(plain.status().message()));
  engine::EngineConfig engine_config;
  // The registry enforces --max_streams; the engine's own bound is a backstop with room for a
  // sequence still being released while its call's slot is reused (never a false KV_BUDGET).
  engine_config.max_num_sequences = 2 * config.max_streams;
  // Every stream reserves its worst case of KV at admission. The prefix is this server's own
  // (context goes after the audio), so it is reserved as it is instead of up to 512 tokens; the
  // suffix carries the context: the engine's bound is PromptFromContext's, and each stream
  // reserves its own prompt's (Session::Create).
  engine_config.max_prefix_tokens = std::max<int64_t>(1, prompt.prefix_tokens());
  engine_config.max_suffix_tokens = config.max_prompt_suffix_tokens;
  engine_config.encoder_kv_cache_bytes =
      absl::GetFlag(FLAGS_encoder_kv_cache_mb) * (int64_t{1} << 20);
  if (absl::Status s = engine_config.Validate(); !s.ok()) return Fail(s.ToString());
  // A device or model that fails every step turns health NOT_SERVING (readiness takes the pod out
  // of service, liveness restarts it); a step that succeeds again turns it back, unless draining.
  // Declared before the engine, whose loop thread reports to it until the engine is destroyed.
  server::HealthService health;
  server::HealthService probe_health;  // the --health_listen port's
  absl::Mutex health_mu;
  bool draining = false;  // guarded by health_mu
  server::EngineHealth engine_health(&metrics, [&](bool healthy, const std::string& why) {
    std::cerr << "speechllm-server: " << why << (healthy ? ": SERVING" : ": NOT_SERVING")
              << std::endl;
    absl::MutexLock lock(&health_mu);
    if (draining) return;
    health.SetServing(healthy);
    probe_health.SetServing(healthy);
    metrics.SetReady(healthy);
  });
  engine::Engine engine(engine_config, std::move(runner).value());
  // Every call would otherwise be refused with BAD_CONFIG for the server's own prompt.
  for (const std::vector<int64_t>* ids : {&plain->prefix_ids, &plain->suffix_ids}) {
    if (absl::Status s = engine.model_config().CheckPromptIds(*ids); !s.ok()) {
      return Fail(absl::StrCat(s.message(), " (--prompt_prefix_ids / --prompt_suffix_ids)"));
    }
  }
  const engine::SequenceConfig stream_shape = server::DefaultStreamShape(
      engine, config.max_new_tokens, static_cast<int64_t>(plain->suffix_ids.size()));
  if (absl::Status s =
          server::CheckLongestStreamFits(engine, stream_shape, config.max_prompt_suffix_tokens);
      !s.ok()) {
    return Fail(std::string(s.message()));
  }
  if (absl::Status s = server::CheckEncoderBudgetHoldsAStream(
          engine, stream_shape, absl::GetFlag(FLAGS_encoder_kv_cache_mb));
      !s.ok()) {
    return Fail(std::string(s.message()));
  }
  engine.SetStepObserver(&engine_health);
  if (const int stall_s = absl::GetFlag(FLAGS_engine_stall_s); stall_s != 0) {
    if (stall_s < 0) return Fail("--engine_stall_s must be >= 0 (0: off)");
    engine_health.WatchForStalls([&engine] { return engine.RunningStepTime(); },
                                 absl::Seconds(stall_s));
  }
  absl::Cleanup stop_watchdog = [&engine_health] { engine_health.StopWatching(); };
  metrics.SetEngineStatsSource([&engine] { return engine.stats(); });
  // On every way out, scrapes stop reading the engine before it is destroyed.
  absl::Cleanup stop_engine_stats = [&metrics] { metrics.SetEngineStatsSource(nullptr); };
  const engine::LogMel log_mel(engine.model_config().features);
  streaming::OutputDispatcher dispatcher(&engine);
  server::StreamRegistry registry(config);
  ctx.engine = &engine;
  ctx.dispatcher = &dispatcher;
  ctx.log_mel = &log_mel;
  ctx.tokenizer = tokenizer.get();
  ctx.prompt = &prompt;
  ctx.registry = &registry;
  server::SpeechService service(&ctx);
  // SERVING only once the model has run (API.md 5): a model that loads but cannot run (a dtype the
  // device lacks) stops here instead of failing every call behind a healthy probe.
  const absl::Time warm_up_start = absl::Now();
  if (absl::Status s = server::WarmUp(ctx, absl::Minutes(5)); !s.ok()) return Fail(s.ToString());
  std::cerr << "speechllm-server: warm-up utterance ran in "
            << absl::ToInt64Milliseconds(absl::Now() - warm_up_start) << " ms" << std::endl;
  // After the warm-up (its utterance is not cached); destroyed before the engine it answers.
  auto embedding_cache = server::OpenEmbeddingCache(config, model_dir, engine.model_config(),
                                                    runner_config.runtime, &metrics);
  if (!embedding_cache.ok()) return Fail(embedding_cache.status().ToString());
  ctx.embedding_cache = embedding_cache->get();

  server::ShutdownSignals::StopExitingOnSignal();  // the ports open: a signal drains from here
  grpc::EnableDefaultHealthCheckService(false);
  std::unique_ptr<grpc::Server> probe_server;
  if (!config.health_listen_address.empty()) {
    probe_server = server::StartProbeServer(config.health_listen_address, &probe_health);
    if (probe_server == nullptr) return Fail("cannot listen on " + config.health_listen_address);
  }
  if (config.reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  server::ApplyBuilderOptions(&builder, config.reflection);
  int port = 0;
  builder.AddListeningPort(config.listen_address, *credentials, &port);
  builder.SetMaxReceiveMessageSize(config.transport_max_receive_message_bytes());
  builder.RegisterService(&service);
  builder.RegisterService(&health);
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  if (grpc_server == nullptr || port == 0) return Fail("cannot listen on " + config.listen_address);
  {
    absl::MutexLock lock(&health_mu);
    health.SetServing(true);
    probe_health.SetServing(true);
    metrics.SetReady(true);
  }
  std::cerr << "speechllm-server: " << config.ToString() << "\n"
            << "speechllm-server: " << engine.model_config().ToString() << "\n";
  std::cerr << "speechllm-server: " << runner_summary << "\n"
            << "speechllm-server: " << engine_config.ToString() << "\n"
            << server::DescribeCapacity(engine, stream_shape, absl::GetFlag(FLAGS_kv_cache_mb),
                                        config.max_streams);
  std::cout << "speechllm-server listening on port " << port << std::endl;
  if (absl::Status s = server::WritePortFile(absl::GetFlag(FLAGS_port_file), port); !s.ok()) {
    return Fail(s.ToString());
  }

  const int signal_number = server::ShutdownSignals::Wait();
  std::cerr << "speechllm-server: signal " << signal_number << ", draining" << std::endl;
  // Drain: NOT_SERVING at once, GOAWAY and no new calls (clients that balance over DNS move to
  // other replicas at once), open streams get a grace period, then end with DRAINING.
  {
    absl::MutexLock lock(&health_mu);
    draining = true;
    health.SetServing(false);
    probe_health.SetServing(false);
    metrics.SetReady(false);
  }
  registry.BeginDrain();
  std::thread goaway([&] {  // returns when every call has ended, cancels what is left at its end
    grpc_server->Shutdown(std::chrono::system_clock::now() +
                          absl::ToChronoSeconds(config.drain_grace + absl::Seconds(10)));
  });
  if (!registry.WaitEmpty(config.drain_grace)) {
    // UNAVAILABLE with RetryInfo: retry, on another replica (API.md 3).
    registry.ExpireAll(server::WithRetryDelay(
        server::WithReason(absl::UnavailableError("server shutting down: reconnect"), "DRAINING"),
        config.retry_delay));
    registry.WaitEmpty(absl::Seconds(5));
  }
  health.Shutdown();  // its Watch streams end, so the gRPC shutdown can
  probe_health.Shutdown();
  goaway.join();
  if (probe_server != nullptr) probe_server->Shutdown();
  dispatcher.Stop();
  embedding_cache->reset();  // answers its queued lookups and writes its queued entries
  engine.SetStepObserver(nullptr);
  engine.Stop();
  metrics_http.reset();  // scrapes work until here, through the drain
  std::cerr << "speechllm-server: stopped" << std::endl;
  return 0;
}
