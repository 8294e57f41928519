#include <doctest/doctest.h>

#include <mutex>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "core/fs.hpp"
#include "roles/drone/log_shipper.hpp"

using namespace swarm;
using namespace swarm::roles::drone;

namespace {

void append(const std::filesystem::path& path, std::string_view text)
{
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  ::close(fd);
}

} // namespace

TEST_CASE("log_shipper: chunks of at most the limit, in order, resent after a failure")
{
  fs::TempDir dir("shipper");
  const auto path = dir / "build.log";
  std::vector<std::string> sent;
  std::vector<SendResult> script;
  const auto send = [&](std::string_view chunk) {
    auto result = SendResult::sent;
    if (!script.empty()) {
      result = script.front();
      script.erase(script.begin());
    }
    if (result == SendResult::sent) {
      sent.emplace_back(chunk);
    }
    return result;
  };
  LogShipper shipper(path, send, std::chrono::milliseconds{10}, 4);
  CHECK(shipper.ship_available()); // no file yet: nothing to do
  append(path, "abcdefghij");
  CHECK(shipper.ship_available());
  CHECK(sent == std::vector<std::string>{"abcd", "efgh", "ij"});
  CHECK(shipper.offset() == 10);

  append(path, "klmnop");
  script = {SendResult::sent, SendResult::later};
  CHECK_FALSE(shipper.ship_available());
  CHECK(shipper.offset() == 14);
  CHECK(shipper.ship_available()); // the refused bytes go again
  CHECK(sent == std::vector<std::string>{"abcd", "efgh", "ij", "klmn", "op"});

  append(path, "qr");
  script = {SendResult::stop};
  CHECK_FALSE(shipper.ship_available());
  CHECK_FALSE(shipper.ship_available()); // refused for good: no more attempts
  CHECK(sent.size() == 5);
}

TEST_CASE("log_shipper: the background rounds and finish() deliver everything")
{
  fs::TempDir dir("shipper-bg");
  const auto path = dir / "build.log";
  std::mutex mutex;
  std::string received;
  LogShipper shipper(
    path,
    [&](std::string_view chunk) {
      std::lock_guard lock(mutex);
      received += chunk;
      return SendResult::sent;
    },
    std::chrono::milliseconds{5});
  shipper.start();
  std::string expected;
  for (int i = 0; i < 50; ++i) {
    const auto line = fmt::format("output line {}\n", i);
    append(path, line);
    expected += line;
  }
  shipper.finish();
  std::lock_guard lock(mutex);
  CHECK(received == expected);
}
