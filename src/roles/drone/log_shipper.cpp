#include "roles/drone/log_shipper.hpp"

#include <cerrno>
#include <string>

#include <unistd.h>

#include "core/fs.hpp"

namespace swarm::roles::drone {

LogShipper::LogShipper(std::filesystem::path path, Send send, std::chrono::milliseconds interval, uint64_t max_chunk)
    : m_path(std::move(path)), m_send(std::move(send)), m_interval(interval), m_max_chunk(max_chunk)
{}

LogShipper::~LogShipper()
{
  if (m_thread.joinable()) {
    m_thread.request_stop();
    m_wake.notify_all();
    m_thread.join();
  }
}

void LogShipper::start()
{
  m_thread = std::jthread([this](std::stop_token stop) {
    while (!stop.stop_requested()) {
      {
        std::unique_lock lock(m_wait_mutex);
        m_wake.wait_for(lock, stop, m_interval, [] { return false; });
      }
      if (stop.stop_requested()) {
        return;
      }
      ship_available();
    }
  });
}

void LogShipper::finish()
{
  if (m_thread.joinable()) {
    m_thread.request_stop();
    m_wake.notify_all();
    m_thread.join();
  }
  ship_available();
}

bool LogShipper::ship_available()
{
  std::lock_guard lock(m_ship_mutex);
  if (m_stopped_for_good) {
    return false;
  }
  auto fd = fs::open_read(m_path);
  if (!fd) {
    return true; // nothing written yet
  }
  std::string chunk;
  while (true) {
    chunk.resize(m_max_chunk);
    size_t got = 0;
    while (got < chunk.size()) {
      const ssize_t n = ::pread(fd->get(), chunk.data() + got, chunk.size() - got, static_cast<off_t>(m_offset + got));
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        break;
      }
      got += static_cast<size_t>(n);
    }
    if (got == 0) {
      return true;
    }
    chunk.resize(got);
    switch (m_send(chunk)) {
    case SendResult::sent:
      m_offset += got;
      break;
    case SendResult::later:
      return false;
    case SendResult::stop:
      m_stopped_for_good = true;
      return false;
    }
  }
}

uint64_t LogShipper::offset() const
{
  std::lock_guard lock(m_ship_mutex);
  return m_offset;
}

} // namespace swarm::roles::drone
