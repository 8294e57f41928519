#include "roles/drone/agent.hpp"

#include <algorithm>
#include <set>

#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "roles/drone/backoff.hpp"
#include "roles/drone/drone_metrics.hpp"
#include "roles/drone/hygiene.hpp"

namespace swarm::roles::drone {

namespace {

using namespace std::chrono_literals;

// A claim answered at once with no lease (paused, grounded …) is not retried at once.
constexpr auto k_quick_claim = 1s;
constexpr auto k_idle_pause = 5s;
// How often a drone short of disk looks again.
constexpr auto k_disk_recheck = 30s;
} // namespace

std::optional<DrainMode> drain_mode_from_name(std::string_view name)
{
  if (name == "finish") {
    return DrainMode::finish;
  }
  if (name == "return") {
    return DrainMode::return_leases;
  }
  return std::nullopt;
}

std::optional<std::string> disk_refusal(uint64_t free_bytes, uint64_t min_free_bytes)
{
  if (free_bytes >= min_free_bytes) {
    return std::nullopt;
  }
  return fmt::format("free disk {} below the minimum {}", strings::human_bytes(free_bytes),
                     strings::human_bytes(min_free_bytes));
}

std::string read_tree_timestamp(const std::filesystem::path& repo_dir, std::string_view override_value)
{
  if (!override_value.empty()) {
    return std::string(override_value);
  }
  auto text = fs::read_file(repo_dir / "metadata/timestamp.chk", 64u << 10);
  if (!text) {
    return {};
  }
  const auto end = text->find('\n');
  return std::string(strings::trim(std::string_view(*text).substr(0, end)));
}

namespace {

DroneSettings with_spool_defaults(DroneSettings settings)
{
  if (settings.build_root.roots_dir.empty()) {
    settings.build_root.roots_dir = settings.spool / "roots";
  }
  if (settings.setup.pkgdir.empty()) {
    settings.setup.pkgdir = Spool(settings.spool).pkgdir();
  }
  return settings;
}

} // namespace

DroneAgent::DroneAgent(DroneSettings settings, OrchApi& api, Builder& builder, AgentHooks hooks)
    : m_settings(with_spool_defaults(std::move(settings))), m_api(api), m_builder(builder), m_hooks(std::move(hooks)),
      m_spool(m_settings.spool), m_roots(m_settings.build_root),
      m_profiles(m_settings.spool / "profiles", m_api,
                 [this](std::chrono::milliseconds wait) { return pause(wait, [this] { return aborting(); }); }),
      m_setup(m_settings.setup, m_profiles, m_roots)
{}

DroneAgent::~DroneAgent()
{
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
    m_done = true;
  }
  m_changed.notify_all();
  if (m_heartbeat.joinable()) {
    m_heartbeat.join();
  }
  for (auto& worker : m_workers) {
    if (worker->thread.joinable()) {
      worker->thread.join();
    }
  }
}

bool DroneAgent::left_threads_behind() const
{
  std::lock_guard lock(m_mutex);
  return m_left_behind;
}

int DroneAgent::exit_code() const
{
  std::lock_guard lock(m_mutex);
  return m_exit_code;
}

void DroneAgent::request_stop(DrainMode mode)
{
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
    if (mode == DrainMode::return_leases && !m_aborting) {
      m_aborting = true;
      for (auto& [id, active] : m_active) {
        active->stop.request_stop();
      }
    }
  }
  m_changed.notify_all();
}

void DroneAgent::fatal(std::string_view why)
{
  LOG_ERROR("{}", why);
  {
    std::lock_guard lock(m_mutex);
    m_fatal = true;
    m_stopping = true;
    m_aborting = true;
    m_exit_code = 1;
    for (auto& [id, active] : m_active) {
      active->stop.request_stop();
    }
  }
  m_changed.notify_all();
}

bool DroneAgent::stopping() const
{
  std::lock_guard lock(m_mutex);
  return m_stopping;
}

bool DroneAgent::aborting() const
{
  std::lock_guard lock(m_mutex);
  return m_aborting;
}

std::shared_ptr<DroneAgent::Active> DroneAgent::track(const std::string& lease_id)
{
  std::lock_guard lock(m_mutex);
  auto active = std::make_shared<Active>();
  if (m_aborting) {
    active->stop.request_stop();
  }
  m_active[lease_id] = active;
  return active;
}

void DroneAgent::untrack(const std::string& lease_id)
{
  {
    std::lock_guard lock(m_mutex);
    m_active.erase(lease_id);
  }
  m_changed.notify_all();
}

bool DroneAgent::is_cancelled(const std::shared_ptr<Active>& active) const
{
  std::lock_guard lock(m_mutex);
  return active->cancelled;
}

std::vector<std::string> DroneAgent::active_leases() const
{
  std::lock_guard lock(m_mutex);
  std::vector<std::string> out;
  for (const auto& [id, active] : m_active) {
    out.push_back(id);
  }
  return out;
}

bool DroneAgent::pause(std::chrono::milliseconds duration, const std::function<bool()>& interrupted)
{
  if (m_hooks.pause) {
    if (interrupted()) {
      return false;
    }
    return m_hooks.pause(duration) && !interrupted();
  }
  // `interrupted` reads state guarded by m_mutex, so it is called without holding it; every
  // change of that state notifies m_changed, and the short slices bound a missed wake-up.
  const auto deadline = std::chrono::steady_clock::now() + duration;
  while (!interrupted()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      return true;
    }
    std::unique_lock lock(m_mutex);
    m_changed.wait_for(lock, std::min<std::chrono::steady_clock::duration>(deadline - now, 200ms));
  }
  return false;
}

uint64_t DroneAgent::free_disk() const
{
  auto free = m_hooks.free_disk ? m_hooks.free_disk() : fs::free_disk_bytes(m_settings.spool);
  if (!free) {
    LOG_WARN("cannot measure free disk of {}: {}", m_settings.spool.string(), free.error().message);
    return 0;
  }
  return *free;
}

net::RegisterRequest DroneAgent::register_request() const
{
  net::RegisterRequest request;
  request.name = m_settings.name;
  request.version = m_settings.version;
  request.cores = m_settings.cores;
  request.slots = m_settings.slots;
  request.ram_bytes = m_settings.ram_bytes;
  request.disk_free_bytes = free_disk();
  request.tree_timestamp = read_tree_timestamp(m_settings.repo_dir, m_settings.tree_timestamp_override);
  request.profiles = m_settings.profiles;
  request.build_root = std::string(build_root_mode_name(m_settings.build_root.mode));
  // The CHOST of the base most profiles build on.
  const auto& chosts = m_settings.setup.base_chosts;
  if (const auto it = chosts.find(m_settings.build_root.bases.fallback); it != chosts.end()) {
    request.chost = it->second;
  } else {
    request.chost = m_settings.setup.facts.chost;
  }
  return request;
}

bool DroneAgent::start_up()
{
  if (auto prepared = m_spool.prepare(); !prepared) {
    LOG_ERROR("cannot prepare the spool: {}", prepared.error().message);
    return false;
  }
  auto lock = lock_spool(m_spool);
  if (!lock) {
    LOG_ERROR("{}", lock.error().message);
    return false;
  }
  m_spool_lock = std::move(*lock);
  // Before anything is built or handed back: a leftover emerge must be gone before the
  // orchestrator can give its package to anyone, this drone included.
  auto cleaned = clean_up_previous_run(m_spool, m_settings.build_root.roots_dir);
  if (!cleaned) {
    LOG_ERROR("{}", cleaned.error().message);
    return false;
  }
  if (m_settings.build_root.mode == BuildRootMode::host) {
    LOG_WARN("build root: host — builds install their dependencies into this machine's own system and may up- or "
             "downgrade its packages (the default, --build-root isolated, never changes it)");
  }
  return true;
}

Result<std::optional<net::Registration>> DroneAgent::register_with_retry()
{
  Backoff backoff;
  bool warned = false;
  while (true) {
    const auto result = m_api.register_drone(register_request());
    switch (verdict_of(result)) {
    case Verdict::done: {
      auto registration = read_message<net::Registration>(result->body);
      if (!registration) {
        return fail(ErrorKind::invalid, "the orchestrator's register answer is not usable: {}",
                    registration.error().message);
      }
      return std::optional<net::Registration>(std::move(*registration));
    }
    case Verdict::retry:
      if (!warned) {
        LOG_WARN("cannot register yet ({}); retrying until the orchestrator answers", describe(result));
        warned = true;
      } else {
        LOG_DEBUG("register: {}", describe(result));
      }
      if (!pause(backoff.next(), [this] { return stopping(); })) {
        return std::optional<net::Registration>();
      }
      break;
    case Verdict::drone_unknown:
    case Verdict::rejected:
      return fail(ErrorKind::forbidden, "the orchestrator refused to register drone {}: {}", m_settings.name,
                  describe(result));
    }
  }
}

DroneAgent::ClaimStep DroneAgent::claim_step()
{
  ClaimStep step;
  if (stopping()) {
    step.status = ClaimStatus::stopped;
    return step;
  }
  if (auto refusal = disk_refusal(free_disk(), m_settings.min_free_disk)) {
    bool first = false;
    {
      std::lock_guard lock(m_mutex);
      first = !m_disk_refused;
      m_disk_refused = true;
    }
    if (first) {
      LOG_WARN("not claiming work: {} (spool {})", *refusal, m_settings.spool.string());
    }
    step.status = ClaimStatus::no_disk;
    step.reason = *refusal;
    return step;
  }
  {
    std::lock_guard lock(m_mutex);
    if (m_disk_refused) {
      LOG_INFO("free disk is back above the minimum; claiming again");
      m_disk_refused = false;
    }
  }

  const auto result = m_api.claim(m_settings.claim_wait);
  switch (verdict_of(result)) {
  case Verdict::done:
    break;
  case Verdict::retry:
    step.status = ClaimStatus::unavailable;
    step.reason = describe(result);
    return step;
  case Verdict::drone_unknown:
    step.status = ClaimStatus::fatal;
    step.reason = describe(result);
    return step;
  case Verdict::rejected:
    if (result->status == 403) {
      step.status = ClaimStatus::fatal;
    } else {
      step.status = ClaimStatus::unavailable;
    }
    step.reason = describe(result);
    return step;
  }

  auto reply = read_message<net::ClaimReply>(result->body);
  if (!reply) {
    LOG_ERROR("the orchestrator's claim answer is not usable: {}", reply.error().message);
    // A lease we cannot read is still ours until it expires: hand it back if we can name it.
    const auto& body = result->body;
    if (body.is_object() && body.contains("lease") && body["lease"].is_object()) {
      const auto& id = body["lease"].value("id", nlohmann::json());
      if (id.is_string() && net::is_safe_lease_id(id.get<std::string>())) {
        give_back(id.get<std::string>(), k_return_attempts);
      }
    }
    step.status = ClaimStatus::idle;
    step.code = net::ClaimCode::other;
    step.reason = reply.error().message;
    return step;
  }
  if (!reply->lease) {
    // An orchestrator older than the codes sends only the reason: its code reads as `other`.
    step.status = ClaimStatus::idle;
    step.code = reply->code == net::ClaimCode::none ? net::ClaimCode::other : reply->code;
    step.reason = std::move(reply->reason);
    note_no_work(step.code, step.reason);
    return step;
  }
  note_no_work(net::ClaimCode::none, "");
  auto& lease = reply->lease;
  if (stopping()) {
    // The long-poll answered after the stop: this drone will not build it.
    LOG_INFO("lease {}: {} arrived while stopping; returning it", lease->id, lease->cpv);
    give_back(lease->id, k_return_attempts);
    step.status = ClaimStatus::stopped;
    return step;
  }
  step.status = ClaimStatus::lease;
  step.lease = std::move(*lease);
  return step;
}

void DroneAgent::note_no_work(net::ClaimCode code, std::string_view reason)
{
  {
    std::lock_guard lock(m_mutex);
    // Every slot long-polls on its own: the code is shared so that N idle slots say it once.
    if (code == m_last_claim_code) {
      return;
    }
    m_last_claim_code = code;
  }
  if (code == net::ClaimCode::none) {
    return;
  }
  if (reason.empty()) {
    LOG_INFO("no work: {}", net::to_string(code));
  } else {
    LOG_INFO("no work: {}: {}", net::to_string(code), reason);
  }
}

bool DroneAgent::heartbeat_once()
{
  net::HeartbeatRequest request;
  const auto stats = m_hooks.stats ? m_hooks.stats() : m_stats.sample();
  request.cpu_percent = stats.cpu_percent;
  request.mem_percent = stats.mem_percent;
  request.load1 = stats.load1;
  request.disk_free_bytes = free_disk();
  request.tree_timestamp = read_tree_timestamp(m_settings.repo_dir, m_settings.tree_timestamp_override);
  request.leases = active_leases();

  const auto result = m_api.heartbeat(request);
  const auto verdict = verdict_of(result);
  if (verdict == Verdict::drone_unknown || (result && result->status == 403)) {
    fatal(fmt::format("the orchestrator no longer knows drone {} ({}); was it enrolled again elsewhere? exiting",
                      m_settings.name, describe(result)));
    return false;
  }
  if (verdict != Verdict::done) {
    LOG_DEBUG("heartbeat: {}", describe(result));
    return true;
  }
  // An empty body (null) is an answer with nothing to do, as it always was.
  auto answer = result->body.is_null() ? Result<net::HeartbeatReply>(net::HeartbeatReply{})
                                       : read_message<net::HeartbeatReply>(result->body);
  if (!answer) {
    LOG_WARN("heartbeat answer not understood: {}", answer.error().message);
    return true;
  }
  if (!answer->state.empty() && answer->state != "online") {
    LOG_DEBUG("orchestrator says this drone is {}{}", answer->state,
              answer->reason.empty() ? "" : " (" + answer->reason + ")");
  }
  bool any = false;
  {
    std::lock_guard lock(m_mutex);
    for (const auto& id : answer->cancel) {
      auto it = m_active.find(id);
      if (it == m_active.end()) {
        continue;
      }
      LOG_INFO("lease {}: cancelled by the orchestrator", id);
      it->second->cancelled = true;
      it->second->stop.request_stop();
      any = true;
    }
  }
  if (any) {
    m_changed.notify_all();
  }
  return true;
}

void DroneAgent::heartbeat_loop(double interval_seconds)
{
  const auto interval = std::chrono::milliseconds(static_cast<int64_t>(std::max(0.05, interval_seconds) * 1000));
  while (true) {
    if (!pause(interval, [this] {
          std::lock_guard lock(m_mutex);
          return m_done || m_fatal;
        })) {
      return;
    }
    try {
      if (!heartbeat_once()) {
        return;
      }
    } catch (const std::exception& e) {
      LOG_ERROR("heartbeat: internal error: {}", e.what());
    }
  }
}

void DroneAgent::worker_loop(size_t index)
{
  Worker& self = *m_workers[index];
  Backoff backoff;
  bool warned = false;
  const auto stop_waiting = [this] { return stopping(); };
  while (!stopping()) {
    {
      std::lock_guard lock(m_mutex);
      self.in_claim = true;
    }
    m_changed.notify_all(); // a stopping run() counts idle long-polls as settled
    const auto started = std::chrono::steady_clock::now();
    ClaimStep step;
    try {
      step = claim_step();
    } catch (const std::exception& e) {
      LOG_ERROR("claim: internal error: {}", e.what());
      step.status = ClaimStatus::unavailable;
    }
    {
      std::lock_guard lock(m_mutex);
      self.in_claim = false;
    }
    switch (step.status) {
    case ClaimStatus::lease:
      backoff.reset();
      warned = false;
      try {
        work_lease(*step.lease);
      } catch (const std::exception& e) {
        LOG_ERROR("lease {}: internal error: {}", step.lease->id, e.what());
        untrack(step.lease->id);
      }
      break;
    case ClaimStatus::idle:
      backoff.reset();
      warned = false;
      LOG_DEBUG("no lease: {}", step.reason);
      if (std::chrono::steady_clock::now() - started < k_quick_claim) {
        pause(k_idle_pause, stop_waiting);
      }
      break;
    case ClaimStatus::no_disk:
      pause(k_disk_recheck, stop_waiting);
      break;
    case ClaimStatus::unavailable:
      if (!warned) {
        LOG_WARN("cannot claim work ({}); retrying with backoff", step.reason);
        warned = true;
      }
      pause(backoff.next(), stop_waiting);
      break;
    case ClaimStatus::stopped:
      break;
    case ClaimStatus::fatal:
      fatal(fmt::format("the orchestrator no longer knows drone {} ({}); exiting", m_settings.name, step.reason));
      break;
    }
  }
  std::lock_guard lock(m_mutex);
  self.exited = true;
  m_changed.notify_all();
}

int DroneAgent::run()
{
  if (!start_up()) {
    return 1;
  }
  auto registered = register_with_retry();
  if (!registered) {
    LOG_ERROR("{}", registered.error().message);
    return 1;
  }
  if (!registered->has_value()) {
    LOG_INFO("stopped before registering");
    return 0;
  }
  const auto registration = std::move(**registered);
  m_staging_url = registration.staging_url;
  if (m_hooks.metrics) {
    m_hooks.metrics->set_registered(true);
  }
  LOG_INFO("drone {} ready ({} slots, build root {})", m_settings.name, m_settings.slots,
           build_root_mode_name(m_settings.build_root.mode));

  m_heartbeat = std::thread([this, interval = registration.heartbeat_interval] { heartbeat_loop(interval); });
  resume(registration.leases);

  {
    std::lock_guard lock(m_mutex);
    if (!m_stopping) {
      for (int i = 0; i < m_settings.slots; ++i) {
        m_workers.push_back(std::make_unique<Worker>());
      }
    }
  }
  for (size_t i = 0; i < m_workers.size(); ++i) {
    m_workers[i]->thread = std::thread([this, i] { worker_loop(i); });
  }

  // Wait for a stop, then for every worker to be done or idle in a long-poll that cannot be
  // interrupted; give those a moment to answer, then leave them behind.
  const auto settled = [this] {
    if (!m_stopping) {
      return false;
    }
    if (!m_active.empty()) {
      return false;
    }
    return std::all_of(m_workers.begin(), m_workers.end(), [](const auto& w) { return w->exited || w->in_claim; });
  };
  {
    std::unique_lock lock(m_mutex);
    m_changed.wait(lock, settled);
    const auto grace_end = std::chrono::steady_clock::now() + m_settings.exit_grace;
    m_changed.wait_until(lock, grace_end, [this] {
      return std::all_of(m_workers.begin(), m_workers.end(), [](const auto& w) { return w->exited; });
    });
    for (auto& worker : m_workers) {
      if (!worker->exited) {
        m_left_behind = true;
      }
    }
    m_done = true;
  }
  m_changed.notify_all();
  if (m_heartbeat.joinable()) {
    m_heartbeat.join();
  }
  {
    std::lock_guard lock(m_mutex);
    if (m_left_behind) {
      // Their threads stay blocked in a long-poll; the caller ends the process.
      for (auto& worker : m_workers) {
        if (!worker->exited && worker->thread.joinable()) {
          worker->thread.detach();
        }
      }
    }
  }
  for (auto& worker : m_workers) {
    if (worker->thread.joinable()) {
      worker->thread.join();
    }
  }
  LOG_INFO("drone {} stopped", m_settings.name);
  return exit_code();
}

} // namespace swarm::roles::drone
