#include "server/server_config.h"

#include "absl/strings/str_cat.h"

namespace speechllm::server {

absl::Status ServerConfig::Validate() const {
  if (listen_address.empty()) return absl::InvalidArgumentError("listen address must not be empty");
  if (max_streams < 1) return absl::InvalidArgumentError("max_streams must be >= 1");
  if (max_chunk_bytes < 320 || max_chunk_bytes > max_receive_message_bytes) {
    return absl::InvalidArgumentError(
        "max_chunk_bytes must be in [320, max_receive_message_bytes]");
  }
  if (idle_timeout <= absl::ZeroDuration() || max_stream_duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("idle_timeout and max_stream_duration must be > 0");
  }
  if (max_buffered_audio_ms < 1000)
    return absl::InvalidArgumentError("max_buffered_audio_ms must be >= 1000");
  if (max_pending_responses < 16)
    return absl::InvalidArgumentError("max_pending_responses must be >= 16");
  if (max_new_tokens < 1 || max_new_tokens > 4096)
    return absl::InvalidArgumentError("max_new_tokens must be in [1, 4096]");
  return absl::OkStatus();
}

std::string ServerConfig::ToString() const {
  return absl::StrCat(
      "ServerConfig(listen=", listen_address, ", model=", model_name, ", max_streams=", max_streams,
      ", max_chunk_bytes=", max_chunk_bytes, ", idle_timeout=", absl::FormatDuration(idle_timeout),
      ", max_stream_duration=", absl::FormatDuration(max_stream_duration),
      ", max_buffered_audio_ms=", max_buffered_audio_ms,
      ", max_recognize_audio=", absl::FormatDuration(max_recognize_audio),
      ", drain_grace=", absl::FormatDuration(drain_grace), ", default_chunk_ms=", default_chunk_ms,
      ", max_new_tokens=", max_new_tokens, ", reflection=", reflection, ")");
}

}  // namespace speechllm::server
