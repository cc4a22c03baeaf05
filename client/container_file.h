// Audio container files the client sends unchanged, the server decoding them: WebM Opus (what a
// browser's MediaRecorder saves) and FLAC, each with the duration it holds, by which the client
// paces its chunks. Stateless; any thread.
#ifndef SPEECHLLM_CLIENT_CONTAINER_FILE_H_
#define SPEECHLLM_CLIENT_CONTAINER_FILE_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"
#include "client/pcm_source.h"

namespace speechllm::client {

// Where "fLaC" should start in FLAC bytes: after an ID3v2 tag in front (its header's syncsafe
// size, ID3v2.4 section 3.1, plus 10 for the header and 10 for a footer), else 0.
size_t FlacStreamStart(absl::string_view bytes);
// Seconds of audio in FLAC bytes: STREAMINFO's total samples over its rate (an ID3v2 tag in
// front is skipped); 0 when STREAMINFO does not say (total 0) or the bytes are not FLAC.
double FlacDurationSeconds(absl::string_view bytes);
// Seconds of audio in WebM bytes: the Segment Info's Duration; without one (a recording saved as
// it streamed), the last block's timestamp plus 20 ms (one Opus frame); 0 if neither is found.
double WebmDurationSeconds(absl::string_view bytes);

// `bytes` of a file whose magic said WebM (1A 45 DF A3) or FLAC ("fLaC", or "ID3" before it), as
// WEBM_OPUS or FLAC with rate and channels 0 (the server reads them from the file).
PcmAudio ContainerAudio(std::string bytes, speechllm::v1::AudioFormat::Encoding encoding);

}  // namespace speechllm::client

#endif  // SPEECHLLM_CLIENT_CONTAINER_FILE_H_
