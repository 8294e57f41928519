// Benchmark: dispatch through the whole drone protocol against a real `swarm orch` child on
// 127.0.0.1 (kernel-chosen port). 8 drone clients (threads, each its own enrolled token and
// HttpClient) register, long-poll claims, upload a genuine 2 KiB GPKG per lease (BUILD_ID,
// declared SHA-256 and XXH3-128) and report, over a 2,000-package layered DAG of zero-time builds.
//
// Prints packages/s, claim latency p50/p99 and the wake-up latency p99: from the report of a
// package's last dependency (when it was sent) to the dependant's waiting claim returning. The
// baselines, measured in the same run: one client alone on a smaller plan (throughput ratio),
// and the 10 s polling interval of the system swarm replaces (wake-up ratio).
// Targets: >= 300 packages/s, wake-up p99 < 50 ms, claim p99 < 50 ms.
//
// The main run has hostile company (--hostile N, default 200): N connections trickling request
// headers a byte at a time, each from its own loopback address (127.0.1.x …), reopened when the
// server closes them, and 4 clients sending unauthenticated 15 MiB POSTs in a loop. /healthz is
// sampled meanwhile; its p99 is printed too.
//
//   bench_dispatch [--swarm PATH] [--packages N] [--clients N] [--width W] [--hostile N]
// PATH defaults to the `swarm` next to the bench/ build directory.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/strings.hpp"
#include "core/subprocess.hpp"
#include "net/http_client.hpp"
#include "net/protocol_version.hpp"
#include "portage/gpkg.hpp"

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* k_tree = "Tue, 01 Dec 2026 00:00:00 +0000";
constexpr double k_polling_interval = 10.0; // what the replaced system's drones poll at
constexpr int k_claim_wait = 5;

double seconds_since(Clock::time_point origin, Clock::time_point t)
{
  return std::chrono::duration<double>(t - origin).count();
}

double percentile(std::vector<double> values, double p)
{
  if (values.empty()) {
    return 0;
  }
  std::sort(values.begin(), values.end());
  const auto index =
    static_cast<size_t>(std::min<double>(values.size() - 1, p * static_cast<double>(values.size() - 1) + 0.5));
  return values[index];
}

[[noreturn]] void die(const std::string& message)
{
  fmt::print(stderr, "bench_dispatch: {}\n", message);
  std::exit(1);
}

template <class T>
T must(swarm::Result<T> result, std::string_view what)
{
  if (!result) {
    die(fmt::format("{}: {}", what, result.error().message));
  }
  return std::move(*result);
}

struct Package {
  std::string cpv;
  std::vector<size_t> deps;
  std::string gpkg; // the artifact's bytes
  std::string sha256, xxh3;
  // Filled by the client that builds it (one writer; read after the threads are joined).
  double claim_start = 0, claim_return = 0, report_sent = 0;
};

// A layered DAG: `width` packages per layer, each (after the first layer) needing 1–3 packages
// of the layer before. Each package's GPKG is written for real, with 2 KiB of incompressible
// image content.
std::vector<Package> make_plan(const std::string& category, size_t count, size_t width,
                               const std::filesystem::path& dir, uint32_t seed)
{
  std::mt19937 rng(seed);
  std::vector<Package> packages(count);
  for (size_t i = 0; i < count; ++i) {
    auto& package = packages[i];
    const auto name = fmt::format("pkg{:04}", i);
    package.cpv = fmt::format("{}/{}-1.0", category, name);
    const size_t layer = i / width;
    if (layer > 0) {
      const size_t first = (layer - 1) * width;
      const int deps = 1 + static_cast<int>(rng() % 3);
      for (int d = 0; d < deps; ++d) {
        const size_t dep = first + rng() % width;
        if (std::find(package.deps.begin(), package.deps.end(), dep) == package.deps.end()) {
          package.deps.push_back(dep);
        }
      }
    }
    swarm::portage::GpkgContent content;
    content.dir_name = fmt::format("{}-1.0-1", name);
    content.metadata = {{"CATEGORY", category}, {"PF", name + "-1.0"},    {"SLOT", "0"}, {"BUILD_ID", "1"},
                        {"EAPI", "8"},          {"repository", "gentoo"}, {"USE", ""},   {"KEYWORDS", "amd64"}};
    std::string payload(2048, '\0');
    for (auto& c : payload) {
      c = static_cast<char>(rng());
    }
    content.image["usr/share/bench/" + name] =
      swarm::portage::ImageFile{payload, 0644, swarm::portage::TarEntryType::regular, ""};
    const auto path = dir / (name + ".gpkg.tar");
    if (auto written = swarm::portage::write_gpkg(path, content); !written) {
      die("write_gpkg: " + written.error().message);
    }
    package.gpkg = must(swarm::fs::read_file(path), "read gpkg");
    auto digests = swarm::hash::hash_bytes(package.gpkg, {swarm::hash::Algo::sha256, swarm::hash::Algo::xxh3_128});
    package.sha256 = digests[swarm::hash::Algo::sha256];
    package.xxh3 = digests[swarm::hash::Algo::xxh3_128];
  }
  return packages;
}

json plan_json(const std::vector<Package>& packages)
{
  json list = json::array();
  json edges = json::array();
  for (const auto& package : packages) {
    list.push_back(
      {{"cpv", package.cpv}, {"slot", "0"}, {"repo", "gentoo"}, {"use", json::array()}, {"build_seconds", 1}});
    for (const auto dep : package.deps) {
      edges.push_back({{"package", package.cpv}, {"needs", packages[dep].cpv}, {"kind", "DEPEND"}});
    }
  }
  return json{
    {"source", "bench_dispatch layered DAG"}, {"tree_timestamp", k_tree}, {"packages", list}, {"edges", edges}};
}

struct Orch {
  swarm::subprocess::Process process;
  std::string url;
  std::string admin_token;
};

Orch start_orch(const std::string& swarm, const std::filesystem::path& dir)
{
  swarm::subprocess::Spec spec;
  spec.argv = {swarm,          "orch",
               "--listen",     "127.0.0.1:0",
               "--data-dir",   (dir / "orch").string(),
               "--claim-wait", fmt::format("{}s", k_claim_wait),
               "--threads",    "64"};
  spec.output_file = dir / "orch.log";
  auto process = must(swarm::subprocess::Process::spawn(spec), "start swarm orch");
  const std::regex ready(R"(orch ready on 127\.0\.0\.1:(\d+))");
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    if (auto text = swarm::fs::read_file(spec.output_file)) {
      std::smatch match;
      if (std::regex_search(*text, match, ready)) {
        auto token = must(swarm::fs::read_file(dir / "orch" / "admin.token"), "admin token");
        return Orch{std::move(process), "http://127.0.0.1:" + match[1].str(), std::string(swarm::strings::trim(token))};
      }
    }
    if (process.wait_until(Clock::now())) {
      die("swarm orch exited before it was ready; see " + spec.output_file.string());
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  die("swarm orch not ready within 30 s");
}

// A TCP connection to 127.0.0.1:port from `source`, or -1.
int connect_from(int port, const std::string& source)
{
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  sockaddr_in local{};
  local.sin_family = AF_INET;
  ::inet_pton(AF_INET, source.c_str(), &local.sin_addr);
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(static_cast<uint16_t>(port));
  remote.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof(remote)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string hostile_source(int block, size_t i)
{
  return fmt::format("127.{}.{}.{}", block, 1 + i / 250, 1 + i % 250);
}

// Slow-loris connections and unauthenticated large bodies, until stopped; and /healthz sampled
// from 127.0.0.1 meanwhile.
class HostileLoad {
public:
  HostileLoad(int port, const std::string& url, size_t slow) : m_port(port), m_url(url)
  {
    m_fds.assign(slow, -1);
    m_threads.emplace_back([this] { trickle(); });
    for (int i = 0; i < 4; ++i) {
      m_threads.emplace_back([this, i] { big_bodies(i); });
    }
    m_threads.emplace_back([this] { sample_health(); });
  }
  ~HostileLoad() { stop(); }

  void stop()
  {
    m_stop = true;
    for (auto& thread : m_threads) {
      thread.join();
    }
    m_threads.clear();
    for (int& fd : m_fds) {
      if (fd >= 0) {
        ::close(fd);
        fd = -1;
      }
    }
  }

  size_t reopened() const { return m_reopened; }
  size_t bodies() const { return m_bodies; }
  std::vector<double> health_latency() const
  {
    std::lock_guard lock(m_mutex);
    return m_health;
  }
  size_t health_failures() const { return m_health_failures; }

private:
  void trickle()
  {
    const std::string head = "POST /api/v1/claim HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: ";
    while (!m_stop) {
      for (size_t i = 0; i < m_fds.size() && !m_stop; ++i) {
        int& fd = m_fds[i];
        if (fd >= 0) {
          char sink[512];
          const auto got = ::recv(fd, sink, sizeof sink, MSG_DONTWAIT);
          if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK) || got > 0 ||
              ::send(fd, "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
            ::close(fd); // answered (408) or closed by the server: open another
            fd = -1;
            ++m_reopened;
          }
        }
        if (fd < 0) {
          fd = connect_from(m_port, hostile_source(1, i));
          if (fd >= 0) {
            (void)::send(fd, head.data(), head.size(), MSG_NOSIGNAL);
          }
        }
      }
      std::this_thread::sleep_for(milliseconds(100));
    }
  }

  void big_bodies(int worker)
  {
    const std::string head = fmt::format("POST /api/v1/plan HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                                         "application/json\r\nContent-Length: {}\r\n\r\n",
                                         15u << 20);
    const std::string chunk(1u << 20, ' ');
    size_t n = 0;
    while (!m_stop) {
      const int fd = connect_from(m_port, hostile_source(3, static_cast<size_t>(worker) * 1000 + n++ % 1000));
      if (fd < 0) {
        std::this_thread::sleep_for(milliseconds(10));
        continue;
      }
      (void)::send(fd, head.data(), head.size(), MSG_NOSIGNAL);
      for (int i = 0; i < 15 && !m_stop; ++i) {
        if (::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0) {
          break;
        }
      }
      ::close(fd);
      ++m_bodies;
      // A hostile client, not a CPU burner: on 2 cores a tight loop would measure the machine.
      std::this_thread::sleep_for(milliseconds(20));
    }
  }

  void sample_health()
  {
    swarm::net::HttpClient client(swarm::net::ClientOptions{m_url, "", milliseconds(30'000), milliseconds(5000), ""});
    while (!m_stop) {
      const auto t0 = Clock::now();
      auto answer = client.get_json("/healthz");
      const auto ms = std::chrono::duration<double>(Clock::now() - t0).count();
      if (!answer) {
        ++m_health_failures;
      } else {
        std::lock_guard lock(m_mutex);
        m_health.push_back(ms);
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
  }

  int m_port;
  std::string m_url;
  std::vector<int> m_fds;
  std::vector<std::thread> m_threads;
  std::atomic<bool> m_stop{false};
  std::atomic<size_t> m_reopened{0};
  std::atomic<size_t> m_bodies{0};
  std::atomic<size_t> m_health_failures{0};
  mutable std::mutex m_mutex;
  std::vector<double> m_health;
};

struct RunResult {
  double seconds = 0;
  std::vector<double> claim_latency; // claims that returned a lease
  std::vector<double> wake_latency;  // claims that were waiting when their package became ready
};

// Enrolls and registers `clients` drones, submits the plan and runs the clients until every
// package is reported. Times are relative to the submission.
RunResult run(const Orch& orch, std::vector<Package>& packages, int clients, const std::string& prefix)
{
  swarm::net::HttpClient admin(
    swarm::net::ClientOptions{orch.url, orch.admin_token, milliseconds(60'000), milliseconds(5000), ""});
  std::vector<swarm::net::HttpClient> drones;
  for (int i = 0; i < clients; ++i) {
    const auto name = fmt::format("{}{}", prefix, i);
    auto enrolled = must(admin.post_json("/api/v1/drones/enroll", json{{"name", name}}), "enroll");
    drones.emplace_back(swarm::net::ClientOptions{orch.url, enrolled["token"].get<std::string>(), milliseconds(30'000),
                                                  milliseconds(5000), ""});
    must(drones.back().post_json("/api/v1/drones/register", json{{"name", name},
                                                                 {"protocol", swarm::net::k_protocol_version},
                                                                 {"version", "bench"},
                                                                 {"cores", 1},
                                                                 {"slots", 1},
                                                                 {"ram_bytes", uint64_t{1} << 33},
                                                                 {"disk_free_bytes", uint64_t{1} << 40},
                                                                 {"tree_timestamp", k_tree}}),
         "register");
  }
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < packages.size(); ++i) {
    index[packages[i].cpv] = i;
  }

  std::atomic<size_t> reported{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;
  std::vector<double> claim_latency;
  double last_report = 0;
  const auto origin = Clock::now(); // every time below is relative to this
  double submitted_at = 0;

  // Clients start long-polling before the plan exists, as drones do.
  std::atomic<int> started{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      const auto& client = drones[static_cast<size_t>(c)];
      std::vector<double> my_latency;
      ++started;
      while (reported.load() < packages.size() && !failed) {
        const auto t0 = Clock::now();
        auto answer = client.post_json(fmt::format("/api/v1/claim?wait={}", k_claim_wait), json::object(),
                                       swarm::net::CallOptions{milliseconds((k_claim_wait + 30) * 1000)});
        const auto t1 = Clock::now();
        if (!answer) {
          fmt::print(stderr, "claim: {}\n", answer.error().message);
          failed = true;
          break;
        }
        if (!(*answer)["lease"].is_object()) {
          continue;
        }
        const auto& lease = (*answer)["lease"];
        const auto it = index.find(lease["cpv"].get<std::string>());
        if (it == index.end()) {
          fmt::print(stderr, "claim: unknown package {}\n", lease["cpv"].dump());
          failed = true;
          break;
        }
        auto& package = packages[it->second];
        package.claim_start = seconds_since(origin, t0);
        package.claim_return = seconds_since(origin, t1);
        my_latency.push_back(std::chrono::duration<double>(t1 - t0).count());
        const auto id = lease["id"].get<std::string>();
        swarm::net::CallOptions call;
        call.on_http_error = swarm::net::OnHttpError::return_response;
        auto uploaded = client.request("PUT", fmt::format("/api/v1/leases/{}/artifact", id), package.gpkg,
                                       {{"X-Swarm-Sha256", package.sha256},
                                        {"X-Swarm-Xxh3-128", package.xxh3},
                                        {"Content-Type", "application/octet-stream"}},
                                       call);
        if (!uploaded || !uploaded->ok()) {
          fmt::print(stderr, "upload {}: {}\n", package.cpv,
                     uploaded ? fmt::format("HTTP {} {}", uploaded->status, uploaded->body) : uploaded.error().message);
          failed = true;
          break;
        }
        package.report_sent = seconds_since(origin, Clock::now());
        auto report =
          client.post_json(fmt::format("/api/v1/leases/{}/report", id),
                           json{{"result", "success"}, {"duration_seconds", 0}, {"log_tail", ""}, {"reason", ""}});
        if (!report) {
          fmt::print(stderr, "report {}: {}\n", package.cpv, report.error().message);
          failed = true;
          break;
        }
        const auto done = ++reported;
        if (done == packages.size()) {
          std::lock_guard lock(mutex);
          last_report = seconds_since(origin, Clock::now());
        }
      }
      std::lock_guard lock(mutex);
      claim_latency.insert(claim_latency.end(), my_latency.begin(), my_latency.end());
    });
  }
  while (started.load() < clients) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  std::this_thread::sleep_for(milliseconds(200)); // every client is in its long-poll
  submitted_at = seconds_since(origin, Clock::now());
  auto submitted = admin.post_json("/api/v1/plan", json{{"plan", plan_json(packages)}, {"mode", "replace"}});
  if (!submitted) {
    failed = true;
    for (auto& thread : threads) {
      thread.join();
    }
    die("plan: " + submitted.error().message);
  }
  for (auto& thread : threads) {
    thread.join();
  }
  if (failed) {
    die("a client failed (see above)");
  }

  RunResult result;
  result.seconds = last_report - submitted_at;
  result.claim_latency = std::move(claim_latency);
  for (const auto& package : packages) {
    if (package.deps.empty()) {
      continue;
    }
    double ready = 0;
    for (const auto dep : package.deps) {
      ready = std::max(ready, packages[dep].report_sent);
    }
    if (package.claim_start < ready) { // the claim was waiting for this package
      result.wake_latency.push_back(package.claim_return - ready);
    }
  }
  return result;
}

} // namespace

int main(int argc, char** argv)
{
  std::string swarm = (std::filesystem::canonical("/proc/self/exe").parent_path().parent_path() / "swarm").string();
  size_t count = 2000;
  // Layers narrower than the client count keep claims waiting, so the wake-up p99 rests on
  // hundreds of samples (with wide layers few claims ever wait and p99 is just the worst one).
  size_t width = 6;
  int clients = 8;
  size_t hostile = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--swarm") {
      swarm = value;
    } else if (flag == "--packages") {
      count = std::stoul(value);
    } else if (flag == "--clients") {
      clients = std::stoi(value);
    } else if (flag == "--width") {
      width = std::stoul(value);
    } else if (flag == "--hostile") {
      hostile = std::stoul(value);
    } else {
      die("unknown flag " + flag);
    }
  }
  swarm::fs::TempDir dir("bench-dispatch");
  std::filesystem::create_directories(dir / "gpkgs-a");
  std::filesystem::create_directories(dir / "gpkgs-b");

  const auto prepare_start = Clock::now();
  auto main_plan = make_plan("bench-main", count, width, dir / "gpkgs-a", 1);
  auto solo_plan = make_plan("bench-solo", std::max<size_t>(count / 5, 1), width, dir / "gpkgs-b", 2);
  fmt::print("prepared {} + {} GPKGs of {} bytes in {:.2f}s\n", main_plan.size(), solo_plan.size(),
             main_plan.front().gpkg.size(), seconds_since(prepare_start, Clock::now()));

  auto orch = start_orch(swarm, dir.path());
  fmt::print("orch {} (data {})\n", orch.url, (dir / "orch").string());

  const auto solo = run(orch, solo_plan, 1, "solo");
  const double solo_rate = static_cast<double>(solo_plan.size()) / solo.seconds;
  fmt::print("baseline: 1 client, {} packages in {:.2f}s = {:.0f} packages/s\n", solo_plan.size(), solo.seconds,
             solo_rate);

  const int port = std::stoi(orch.url.substr(orch.url.rfind(':') + 1));
  std::optional<HostileLoad> load;
  if (hostile > 0) {
    load.emplace(port, orch.url, hostile);
    std::this_thread::sleep_for(milliseconds(500)); // the slow connections are open
  }
  const auto many = run(orch, main_plan, clients, "drone");
  std::vector<double> health;
  size_t health_failures = 0;
  if (load) {
    load->stop();
    health = load->health_latency();
    health_failures = load->health_failures();
    fmt::print("hostile company   {} trickling connections ({} reopened after the server closed them), {} "
               "unauthenticated 15 MiB POSTs\n",
               hostile, load->reopened(), load->bodies());
    fmt::print("/healthz          p50 {:6.2f} ms  p99 {:6.2f} ms   ({} samples, {} failed)\n",
               1000 * percentile(health, 0.5), 1000 * percentile(health, 0.99), health.size(), health_failures);
  }
  const double rate = static_cast<double>(main_plan.size()) / many.seconds;
  const double wake_p99 = percentile(many.wake_latency, 0.99);
  fmt::print("\n{} clients, {} packages (layers of {}), 2 KiB GPKGs, zero-time builds\n", clients, main_plan.size(),
             width);
  fmt::print("throughput        {:8.0f} packages/s   ({:.2f}s; target >= 300)   x{:.2f} vs 1 client\n", rate,
             many.seconds, rate / solo_rate);
  const double claim_p99 = percentile(many.claim_latency, 0.99);
  fmt::print("claim latency     p50 {:6.2f} ms  p99 {:6.2f} ms   ({} claims with a lease; target p99 < 50 ms)\n",
             1000 * percentile(many.claim_latency, 0.5), 1000 * claim_p99, many.claim_latency.size());
  fmt::print("wake-up latency   p50 {:6.2f} ms  p99 {:6.2f} ms   ({} waiting claims; target p99 < 50 ms)\n",
             1000 * percentile(many.wake_latency, 0.5), 1000 * wake_p99, many.wake_latency.size());
  fmt::print("                  vs {:.0f} s polling (p99 {:.1f} s): x{:.0f} faster\n", k_polling_interval,
             0.99 * k_polling_interval, wake_p99 > 0 ? 0.99 * k_polling_interval / wake_p99 : 0.0);
  const bool ok = rate >= 300 && wake_p99 < 0.050 && claim_p99 < 0.050 && health_failures == 0;
  fmt::print("targets           {}\n", ok ? "met" : "MISSED");

  orch.process.kill(milliseconds(5000));
  return ok ? 0 : 1;
}
