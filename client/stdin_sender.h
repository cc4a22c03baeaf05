// The client CLI's senders of live stdin input: blocks of raw PCM or of a container's bytes as
// they come, or PCM encoded to Ogg Opus on the way (`--encode opus`). Called by the CLI's main
// thread while the StreamingClient runs the call.
#ifndef SPEECHLLM_CLIENT_STDIN_SENDER_H_
#define SPEECHLLM_CLIENT_STDIN_SENDER_H_

#include <functional>

#include "absl/time/time.h"
#include "client/opus_encoder.h"
#include "client/pcm_stream_reader.h"
#include "client/speech_client.h"

namespace speechllm::client {

// Reads stdin PCM blocks of `chunk_ms`, encodes them as Ogg Opus and sends the pages as they
// complete, until the input ends or `stop` is true. With `realtime` (--realtime) each block is
// encoded only once it has played, counted from the first block's arrival; a stop during that
// wait drops the block (the pages' byte rate only approximates their time, so StreamingClient's
// own pacing cannot do this). Returns the duration of the PCM encoded.
absl::Duration SendStdinAsOpus(PcmStreamReader* reader, OggOpusEncoder* encoder, int chunk_ms,
                               bool realtime, StreamingClient* client,
                               const std::function<bool()>& stop);

// Sends each block of at most `max_chunk_bytes` as one message as soon as it is read (raw PCM: a
// whole chunk; a container: what has arrived), until the input ends or `stop` is true; reports a
// partial sample frame dropped at the end on stderr.
void SendStdinBlocks(PcmStreamReader* reader, int64_t max_chunk_bytes, StreamingClient* client,
                     const std::function<bool()>& stop);

// On stderr: the bytes of a partial sample frame `reader` dropped at the end, if any (every stdin
// path: blocks, --encode opus, --recognize).
void WarnOfDroppedBytes(const PcmStreamReader& reader);

}  // namespace speechllm::client

#endif  // SPEECHLLM_CLIENT_STDIN_SENDER_H_
