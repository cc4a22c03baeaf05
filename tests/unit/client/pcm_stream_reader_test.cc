// PcmStreamReader over a pipe, as stdin is under `arecord | speechllm-client --stdin-pcm`: whole
// frames, a trailing partial frame dropped, and a read on a quiet input that gives up when its
// stop condition turns true (before, a blocking std::cin read held the client after Ctrl-C or the
// call's deadline until the recorder wrote again).
#include "client/pcm_stream_reader.h"

#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace speechllm::client {
namespace {

using speechllm::v1::AudioFormat;

// A pipe with `bytes` written into it; the write end is closed when `close_writer`.
struct Pipe {
  int read_fd = -1, write_fd = -1;
  Pipe(const std::string& bytes, bool close_writer) {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    read_fd = fds[0];
    write_fd = fds[1];
    EXPECT_EQ(::write(write_fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    if (close_writer) CloseWriter();
  }
  void CloseWriter() {
    if (write_fd >= 0) ::close(write_fd);
    write_fd = -1;
  }
  ~Pipe() {
    CloseWriter();
    ::close(read_fd);
  }
};

TEST(PcmStreamReaderTest, ReadsWholeFramesAndDropsATrailingPartialOne) {
  std::string input(1001, '\0');
  for (size_t i = 0; i < input.size(); ++i) input[i] = static_cast<char>(i);
  Pipe pipe(input, /*close_writer=*/true);
  PcmStreamReader reader(pipe.read_fd, 16000, 1);
  EXPECT_EQ(reader.format().encoding(), AudioFormat::PCM_S16LE);
  EXPECT_EQ(reader.format().sample_rate_hz(), 16000);

  std::string all;
  std::vector<size_t> sizes;
  while (true) {
    absl::StatusOr<std::string> block = reader.Read(401);  // rounds down to 400
    ASSERT_TRUE(block.ok()) << block.status();
    if (block->empty()) break;
    sizes.push_back(block->size());
    all += *block;
  }
  EXPECT_THAT(sizes, ::testing::ElementsAre(400, 400, 200));
  EXPECT_EQ(all, input.substr(0, 1000));
  EXPECT_EQ(reader.bytes_read(), 1000);
  EXPECT_EQ(reader.dropped_bytes(), 1);
}

TEST(PcmStreamReaderTest, ReadAllKeepsStereoFrames) {
  Pipe pipe(std::string(4 * 100 + 3, 'x'), /*close_writer=*/true);
  PcmStreamReader reader(pipe.read_fd, 8000, 2);
  absl::StatusOr<std::string> one = reader.Read(1);  // at least one frame
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 4u);
  absl::StatusOr<PcmAudio> rest = reader.ReadAll();
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->data.size(), 4u * 99);
  EXPECT_EQ(rest->format.channels(), 2);
  EXPECT_EQ(reader.dropped_bytes(), 3);
}

// A container's bytes are read as they come: no frames, nothing dropped, the encoding left for
// the server to tell.
TEST(PcmStreamReaderTest, ContainerBytesAreReadUnframed) {
  Pipe pipe(std::string(1001, 'c'), /*close_writer=*/true);
  PcmStreamReader reader(pipe.read_fd);
  EXPECT_EQ(reader.format().encoding(), speechllm::v1::AudioFormat::ENCODING_UNSPECIFIED);
  absl::StatusOr<std::string> first = reader.Read(333);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->size(), 333u);
  absl::StatusOr<PcmAudio> rest = reader.ReadAll();
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->data.size(), 1001u - 333u);
  EXPECT_EQ(reader.dropped_bytes(), 0);
}

// A recorder piping a container writes a piece at a time: the read hands over what has come
// instead of waiting for max_bytes, so each piece leaves at once (stop never has to fire).
TEST(PcmStreamReaderTest, AContainerReadReturnsWhatHasArrived) {
  Pipe pipe(std::string(100, 'w'), /*close_writer=*/false);
  PcmStreamReader reader(pipe.read_fd);
  bool stop_fired = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  const auto stop = [&] { return stop_fired = absl::Now() > deadline; };
  absl::StatusOr<std::string> first = reader.Read(32768, stop);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->size(), 100u);
  EXPECT_FALSE(stop_fired) << "the read waited for more than had arrived";
  ASSERT_EQ(::write(pipe.write_fd, "abc", 3), 3);
  absl::StatusOr<std::string> second = reader.Read(32768, stop);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, "abc");
  EXPECT_FALSE(stop_fired);
}

// The writer stays open and quiet (a microphone after Ctrl-C): the read returns the frames it has
// once `stop` turns true, and every later read returns "" at once.
TEST(PcmStreamReaderTest, AReadOnAQuietInputEndsWhenStopTurnsTrue) {
  Pipe pipe(std::string(3200 + 1, 'a'), /*close_writer=*/false);
  PcmStreamReader reader(pipe.read_fd, 16000, 1);
  std::atomic<bool> stop{false};
  std::thread stopper([&] {
    absl::SleepFor(absl::Milliseconds(300));
    stop = true;
  });
  const absl::Time start = absl::Now();
  absl::StatusOr<std::string> block = reader.Read(6400, [&] { return stop.load(); });
  const absl::Duration waited = absl::Now() - start;
  stopper.join();
  ASSERT_TRUE(block.ok()) << block.status();
  std::printf("stopped after %.0f ms with %zu bytes\n", absl::ToDoubleMilliseconds(waited),
              block->size());
  EXPECT_EQ(block->size(), 3200u);
  EXPECT_TRUE(reader.stopped());
  EXPECT_EQ(reader.dropped_bytes(), 1);
  absl::StatusOr<std::string> after = reader.Read(6400, [] { return false; });
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty());
}

}  // namespace
}  // namespace speechllm::client
