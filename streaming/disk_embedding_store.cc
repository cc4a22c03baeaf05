#include "streaming/disk_embedding_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "streaming/embedding_cache_entry.h"

namespace speechllm::streaming {
namespace {

namespace fs = std::filesystem;

constexpr absl::string_view kEntrySuffix = ".emb";
constexpr absl::string_view kTemporarySuffix = ".tmp";

bool IsKey(absl::string_view name) {
  return name.size() == kCacheKeyHexChars && std::all_of(name.begin(), name.end(), [](char c) {
           return absl::ascii_isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

DiskEmbeddingStore::DiskEmbeddingStore(std::string dir, int64_t max_bytes)
    : dir_(std::move(dir)), max_bytes_(max_bytes) {}

absl::StatusOr<std::unique_ptr<DiskEmbeddingStore>> DiskEmbeddingStore::Open(const std::string& dir,
                                                                             int64_t max_bytes) {
  if (max_bytes < 1) return absl::InvalidArgumentError("the disk cache needs a size above 0");
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create the embedding cache directory ", dir, ": ", error.message()));
  }
  struct Found {
    std::string key;
    int64_t bytes;
    fs::file_time_type modified;
  };
  std::vector<Found> found;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    std::error_code ignored;
    if (absl::EndsWith(name, kTemporarySuffix)) {  // a write that a crash interrupted
      fs::remove(it->path(), ignored);
      continue;
    }
    if (!absl::EndsWith(name, kEntrySuffix)) continue;
    const std::string key = name.substr(0, name.size() - kEntrySuffix.size());
    if (!IsKey(key) || !it->is_regular_file(ignored)) continue;
    const auto bytes = it->file_size(ignored);
    const auto modified = it->last_write_time(ignored);
    if (!ignored) found.push_back({key, static_cast<int64_t>(bytes), modified});
  }
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot list the embedding cache directory ", dir, ": ", error.message()));
  }
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.modified < b.modified; });
  std::unique_ptr<DiskEmbeddingStore> store(new DiskEmbeddingStore(dir, max_bytes));
  absl::MutexLock lock(&store->mu_);
  for (const Found& f : found) {
    store->index_[f.key] = {f.bytes, ++store->clock_};
    store->total_bytes_ += f.bytes;
  }
  store->EvictLocked();
  return store;
}

std::string DiskEmbeddingStore::PathOf(const std::string& key) const {
  return absl::StrCat(dir_, "/", key, kEntrySuffix);
}

absl::StatusOr<std::optional<std::string>> DiskEmbeddingStore::Read(const std::string& key) {
  {
    absl::MutexLock lock(&mu_);
    auto it = index_.find(key);
    if (it == index_.end()) return std::nullopt;
    it->second.last_use = ++clock_;
  }
  const std::string path = PathOf(key);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    if (error == ENOENT) {  // deleted behind our back: a miss
      absl::MutexLock lock(&mu_);
      ForgetLocked(key);
      return std::nullopt;
    }
    return absl::UnavailableError(absl::StrCat("cannot open ", path, ": ", std::strerror(error)));
  }
  absl::Cleanup close_file = [fd] { close(fd); };
  // The modification time is the recency a restart orders eviction by (Open): a hit renews it,
  // so an entry read often outlives one written later and never read. Best effort.
  futimens(fd, nullptr);
  struct stat status;
  if (fstat(fd, &status) != 0) return absl::UnavailableError(absl::StrCat("cannot stat ", path));
  // One read into the entry's own buffer: up to 12 MiB for 30 s of the 7B.
  std::string bytes(static_cast<size_t>(status.st_size), '\0');
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t got = read(fd, bytes.data() + done, bytes.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return absl::UnavailableError(absl::StrCat("cannot read ", path));
    done += static_cast<size_t>(got);
  }
  return bytes;
}

absl::Status DiskEmbeddingStore::Write(const std::string& key, absl::string_view bytes) {
  const int64_t size = static_cast<int64_t>(bytes.size());
  if (size > max_bytes_) return absl::OkStatus();  // would evict everything and then itself
  uint64_t temporary_number;
  {
    absl::MutexLock lock(&mu_);
    temporary_number = ++next_temporary_;
  }
  const std::string temporary =
      absl::StrCat(dir_, "/", key, ".", temporary_number, kTemporarySuffix);
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::remove(temporary.c_str());
      return absl::UnavailableError(absl::StrCat("cannot write ", temporary));
    }
  }
  // rename() replaces atomically: a reader sees the old entry or the new one, never a part.
  if (std::rename(temporary.c_str(), PathOf(key).c_str()) != 0) {
    const int error = errno;
    std::remove(temporary.c_str());
    return absl::UnavailableError(
        absl::StrCat("cannot rename ", temporary, ": ", std::strerror(error)));
  }
  absl::MutexLock lock(&mu_);
  Entry& entry = index_[key];
  total_bytes_ += size - entry.bytes;
  entry.bytes = size;
  entry.last_use = ++clock_;
  EvictLocked();
  return absl::OkStatus();
}

void DiskEmbeddingStore::Remove(const std::string& key) {
  absl::MutexLock lock(&mu_);
  ForgetLocked(key);
  std::remove(PathOf(key).c_str());
}

void DiskEmbeddingStore::ForgetLocked(const std::string& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return;
  total_bytes_ -= it->second.bytes;
  index_.erase(it);
}

void DiskEmbeddingStore::EvictLocked() {
  if (total_bytes_ <= max_bytes_ || index_.empty()) return;
  // A write over the cap evicts about one entry: one scan for the oldest.
  auto oldest = std::min_element(index_.begin(), index_.end(), [](const auto& a, const auto& b) {
    return a.second.last_use < b.second.last_use;
  });
  std::string key = oldest->first;
  ForgetLocked(key);
  std::remove(PathOf(key).c_str());
  if (total_bytes_ <= max_bytes_) return;
  // More (a lowered cap at Open): oldest first in one sort, not a scan per entry.
  std::vector<std::pair<uint64_t, std::string>> by_age;
  by_age.reserve(index_.size());
  for (const auto& [name, entry] : index_) by_age.emplace_back(entry.last_use, name);
  std::sort(by_age.begin(), by_age.end());
  for (auto& [last_use, name] : by_age) {
    if (total_bytes_ <= max_bytes_) break;
    ForgetLocked(name);
    std::remove(PathOf(name).c_str());
  }
}

int64_t DiskEmbeddingStore::total_bytes() const {
  absl::MutexLock lock(&mu_);
  return total_bytes_;
}

int64_t DiskEmbeddingStore::num_entries() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(index_.size());
}

}  // namespace speechllm::streaming
