// The HTTP/1.x subset the metrics port speaks: whether a request head is complete, and the reply
// (status line, headers, body) to it. Pure functions, no sockets; MetricsHttpServer's loop thread
// calls them. Every reply closes the connection (RFC 9112 9.6), so no request body is ever read.
#ifndef SPEECHLLM_SERVER_HTTP_EXCHANGE_H_
#define SPEECHLLM_SERVER_HTTP_EXCHANGE_H_

#include <functional>
#include <string>

#include "absl/strings/string_view.h"

namespace speechllm::server {

// Where the request head ends (the index past its blank line), or npos while it is incomplete.
size_t RequestHeadEnd(absl::string_view received);

// The whole reply to `head` (request line and header fields): GET or HEAD of /metrics gives
// `scrape()`, / a short index; other paths 404, other methods 405, a malformed request line 400,
// another HTTP version 505. `scrape` runs only for /metrics.
std::string ReplyTo(absl::string_view head, const std::function<std::string()>& scrape);

// A reply without a request to answer: `status` 408 (the head did not arrive in time) or 431
// (the head passed the size limit).
std::string ErrorReply(int status);

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_HTTP_EXCHANGE_H_
