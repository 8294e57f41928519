#pragma once
// Streams a growing build log to the orchestrator: about once a second, whatever the file
// gained since the last round, in chunks of at most 1 MiB. Reading from the file (not from
// memory) means a slow or absent orchestrator costs no memory: the backlog waits on disk.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string_view>
#include <thread>

namespace swarm::roles::drone {

// What happened to one chunk.
enum class SendResult {
  sent,  // accepted: move on
  later, // not now (orchestrator unreachable): the same bytes go next round
  stop,  // refused for good: stop sending this log
};

class LogShipper {
public:
  using Send = std::function<SendResult(std::string_view chunk)>;

  LogShipper(std::filesystem::path path, Send send, std::chrono::milliseconds interval = std::chrono::seconds{1},
             uint64_t max_chunk = 1u << 20);
  ~LogShipper();
  LogShipper(const LogShipper&) = delete;
  LogShipper& operator=(const LogShipper&) = delete;

  // Starts the background rounds.
  void start();
  // Stops the rounds and sends what is left, giving up at the first chunk that does not go.
  void finish();

  // One round: sends everything new, chunk by chunk; false when a chunk did not go.
  bool ship_available();
  // Bytes of the file sent so far.
  uint64_t offset() const;

private:
  std::filesystem::path m_path;
  Send m_send;
  std::chrono::milliseconds m_interval;
  uint64_t m_max_chunk;
  mutable std::mutex m_ship_mutex; // one round at a time
  uint64_t m_offset = 0;
  bool m_stopped_for_good = false;
  std::mutex m_wait_mutex;
  std::condition_variable_any m_wake;
  std::jthread m_thread;
};

} // namespace swarm::roles::drone
