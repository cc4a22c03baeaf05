#include "server/http_exchange.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace speechllm::server {
namespace {

constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";
constexpr char kTextContentType[] = "text/plain; charset=utf-8";

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}

std::string Reply(int status, const char* content_type, const std::string& body,
                  bool head_only = false, absl::string_view extra_headers = "") {
  std::string out = absl::StrCat(
      "HTTP/1.1 ", status, " ", ReasonPhrase(status), "\r\nContent-Type: ", content_type,
      "\r\nContent-Length: ", body.size(), "\r\n", extra_headers, "Connection: close\r\n\r\n");
  if (!head_only) out += body;
  return out;
}

// RFC 9110 5.6.2: a method is a token.
bool IsToken(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        absl::string_view("!#$%&'*+-.^_`|~").find(c) == absl::string_view::npos) {
      return false;
    }
  }
  return true;
}

}  // namespace

size_t RequestHeadEnd(absl::string_view received) {
  // RFC 9112 2.2: a recipient may take a bare LF as a line end.
  const size_t crlf = received.find("\r\n\r\n");
  const size_t lf = received.find("\n\n");
  if (crlf == absl::string_view::npos && lf == absl::string_view::npos) {
    return absl::string_view::npos;
  }
  if (lf == absl::string_view::npos || (crlf != absl::string_view::npos && crlf < lf)) {
    return crlf + 4;
  }
  return lf + 2;
}

// Whether a header line after the request line is "Host:" (the name matched without case).
bool HasHostField(absl::string_view head) {
  for (absl::string_view line : absl::StrSplit(head, '\n')) {
    if (line.size() >= 5 && absl::EqualsIgnoreCase(line.substr(0, 5), "host:")) return true;
  }
  return false;
}

std::string ReplyTo(absl::string_view head, const std::function<std::string()>& scrape) {
  const absl::string_view request_line =
      absl::StripTrailingAsciiWhitespace(head.substr(0, head.find('\n')));
  const std::vector<absl::string_view> parts = absl::StrSplit(request_line, ' ');
  if (parts.size() != 3 || !IsToken(parts[0]) || parts[1].empty() ||
      !absl::StartsWith(parts[2], "HTTP/")) {
    return Reply(400, kTextContentType, "malformed request line\n");
  }
  if (parts[2] != "HTTP/1.1" && parts[2] != "HTTP/1.0") {
    return Reply(505, kTextContentType, "HTTP/1.0 and HTTP/1.1 only\n");
  }
  // RFC 9112 3.2: an HTTP/1.1 request without a Host header field is a 400 (Prometheus sends one).
  if (parts[2] == "HTTP/1.1" && !HasHostField(head)) {
    return Reply(400, kTextContentType, "HTTP/1.1 needs a Host header\n");
  }
  const absl::string_view method = parts[0];
  const bool head_only = method == "HEAD";
  if (method != "GET" && !head_only) {
    return Reply(405, kTextContentType, "GET or HEAD only\n", false, "Allow: GET, HEAD\r\n");
  }
  absl::string_view path = parts[1];
  // RFC 9112 3.2.2: a server must accept the absolute form ("http://host:port/metrics").
  for (const absl::string_view scheme : {"http://", "https://"}) {
    if (absl::StartsWithIgnoreCase(path, scheme)) {
      path.remove_prefix(scheme.size());
      const size_t slash = path.find('/');
      path = slash == absl::string_view::npos ? "/" : path.substr(slash);
    }
  }
  path = path.substr(0, path.find('?'));
  if (path == "/metrics") return Reply(200, kMetricsContentType, scrape(), head_only);
  if (path == "/") {
    return Reply(200, kTextContentType, "speechllm metrics: GET /metrics\n", head_only);
  }
  return Reply(404, kTextContentType, "not found: GET /metrics\n", head_only);
}

std::string ErrorReply(int status) {
  return Reply(status, kTextContentType,
               status == 431 ? "request head too large\n" : "request head too slow\n");
}

}  // namespace speechllm::server
