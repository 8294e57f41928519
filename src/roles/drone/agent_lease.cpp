// The lease side of the drone agent: building a claimed lease (setup, refusal, emerge), and
// delivering its result — also what a previous run left in the spool.

#include <set>

#include <fcntl.h>
#include <unistd.h>

#include "core/log.hpp"
#include "core/strings.hpp"
#include "core/unique_fd.hpp"
#include "roles/drone/agent.hpp"
#include "roles/drone/backoff.hpp"
#include "roles/drone/drone_metrics.hpp"
#include "roles/drone/log_shipper.hpp"

namespace swarm::roles::drone {

namespace {

// The report carries the end of the build log.
constexpr uint64_t k_log_tail_bytes = 64u << 10;
// A refusal is worth a few attempts; after that the lease goes back (it expires anyway).
constexpr int k_refuse_attempts = 4;

int64_t epoch_seconds()
{
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string status_of(const Result<Answer>& result)
{
  return result ? std::to_string(result->status) : std::string("none");
}

// A line of our own in the build log (best effort, as the builder's own lines).
void append_log(const std::filesystem::path& path, std::string_view text)
{
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (fd) {
    (void)!::write(fd.get(), text.data(), text.size());
  }
}

} // namespace

void DroneAgent::give_back(const std::string& lease_id, int attempts)
{
  Backoff backoff;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    const auto result = m_api.return_lease(lease_id);
    const auto verdict = verdict_of(result);
    if (verdict == Verdict::done) {
      LOG_INFO("lease {}: returned", lease_id);
      return;
    }
    if (verdict != Verdict::retry) {
      LOG_WARN("lease {}: return refused ({}); it will expire", lease_id, describe(result));
      return;
    }
    if (attempt == attempts || !pause(backoff.next(), [this] {
          std::lock_guard lock(m_mutex);
          return m_fatal;
        })) {
      LOG_WARN("lease {}: could not return it ({}); it will expire", lease_id, describe(result));
      return;
    }
  }
}

void DroneAgent::resume(const std::vector<net::Lease>& registered)
{
  std::set<std::string> in_spool;
  for (auto& entry : m_spool.scan()) {
    in_spool.insert(entry.id);
    if (!entry.state) {
      LOG_WARN("lease {}: unreadable spool state ({}); returning it", entry.id, entry.state.error().message);
      give_back(entry.id, k_return_attempts);
      (void)m_spool.remove(entry.id);
      continue;
    }
    auto& state = *entry.state;
    switch (resume_action(state.phase)) {
    case ResumeAction::return_lease:
      LOG_INFO("lease {}: the build of {} never finished; returning it", entry.id, state.lease.cpv);
      give_back(entry.id, k_return_attempts);
      (void)m_spool.remove(entry.id);
      break;
    case ResumeAction::upload:
    case ResumeAction::report:
      LOG_INFO("lease {}: resuming delivery of {} ({})", entry.id, state.lease.cpv, lease_phase_name(state.phase));
      deliver(std::move(state));
      break;
    }
  }
  // Leases the orchestrator thinks we hold but that never reached the spool (a crash right
  // after the claim): hand them back now rather than let them wait for their expiry.
  for (const auto& lease : registered) {
    if (!in_spool.contains(lease.id)) {
      LOG_INFO("lease {}: {} is not in the spool; returning it", lease.id, lease.cpv);
      give_back(lease.id, k_return_attempts);
    }
  }
}

void DroneAgent::work_lease(const net::Lease& lease)
{
  LeaseState state;
  state.lease = lease;
  state.phase = LeasePhase::building;
  state.started_at = epoch_seconds();
  if (auto saved = m_spool.save(state); !saved) {
    LOG_ERROR("lease {}: cannot write its spool state ({}); returning it", lease.id, saved.error().message);
    give_back(lease.id, k_return_attempts);
    return;
  }
  const auto active = track(lease.id);
  const auto& staging = lease.staging_url.empty() ? m_staging_url : lease.staging_url;
  const auto work_dir = m_spool.work_dir(lease.id);
  auto setup = m_setup.prepare(lease, staging, work_dir);
  if (setup.refusal) {
    if (refuse(lease, *setup.refusal)) {
      untrack(lease.id);
      return;
    }
    // The orchestrator has no refusal for us: the lease fails instead, so that it is not
    // handed to this drone again and again.
    setup.failure = fmt::format("swarm: drone environment: cannot build it as its profile asks ({}): {}",
                                setup.refusal->code, setup.refusal->reason);
  }
  LOG_INFO("lease {}: building {} ({} dependencies{})", lease.id, lease.cpv, lease.deps.size(),
           setup.prepared && setup.prepared->root ? ", isolated" : "");

  LogShipper shipper(m_spool.log_path(lease.id), [this, id = lease.id](std::string_view chunk) {
    const auto result = m_api.send_log(id, chunk);
    switch (verdict_of(result)) {
    case Verdict::done:
      return SendResult::sent;
    case Verdict::retry:
      return SendResult::later;
    case Verdict::drone_unknown:
    case Verdict::rejected:
      LOG_DEBUG("lease {}: log chunk refused ({}); not sending more of it", id, describe(result));
      return SendResult::stop;
    }
    return SendResult::stop;
  });
  shipper.start();
  BuildOutcome outcome;
  if (setup.prepared) {
    for (const auto& note : setup.prepared->notes) {
      append_log(m_spool.log_path(lease.id), fmt::format(">>> swarm: {}\n", note));
    }
    outcome = m_builder.build(lease, setup.prepared->environment, work_dir, m_spool.log_path(lease.id),
                              active->stop.get_token());
    m_setup.finish(*setup.prepared);
  } else {
    outcome.status = BuildOutcome::Status::failure;
    outcome.reason = setup.failure;
    append_log(m_spool.log_path(lease.id), fmt::format(">>> swarm: {}\n", setup.failure));
  }

  if (outcome.status == BuildOutcome::Status::stopped) {
    shipper.finish();
    bool cancelled = false;
    bool fatal_stop = false;
    {
      std::lock_guard lock(m_mutex);
      cancelled = active->cancelled;
      fatal_stop = m_fatal;
    }
    if (cancelled) {
      LOG_INFO("lease {}: build of {} cancelled by the orchestrator", lease.id, lease.cpv);
      (void)m_spool.remove(lease.id);
    } else if (fatal_stop) {
      LOG_INFO("lease {}: build of {} killed", lease.id, lease.cpv);
    } else {
      LOG_INFO("lease {}: build of {} killed for the drain; returning the lease", lease.id, lease.cpv);
      give_back(lease.id, k_return_attempts);
      (void)m_spool.remove(lease.id);
    }
    untrack(lease.id);
    return;
  }

  state.duration_seconds = outcome.seconds;
  if (m_hooks.metrics) {
    m_hooks.metrics->build_finished(outcome.status == BuildOutcome::Status::success, outcome.seconds);
  }
  if (outcome.status == BuildOutcome::Status::success) {
    state.phase = LeasePhase::built;
    state.artifact = outcome.artifact.filename().string();
    state.sha256 = outcome.sha256;
    state.xxh3_128 = outcome.xxh3_128;
    state.size = outcome.size;
    LOG_INFO("lease {}: built {} in {} ({})", lease.id, lease.cpv, strings::human_duration(outcome.seconds),
             strings::human_bytes(outcome.size));
  } else {
    state.phase = LeasePhase::failed;
    state.reason = outcome.reason;
    LOG_WARN("lease {}: build of {} failed: {}", lease.id, lease.cpv, outcome.reason);
  }
  if (auto saved = m_spool.save(state); !saved) {
    LOG_ERROR("lease {}: cannot record the build's end in the spool: {}", lease.id, saved.error().message);
  }
  // Only now the rest of the log: with the result recorded, a drone killed while an unreachable
  // orchestrator holds up the last chunks still delivers the artifact after its restart.
  shipper.finish();
  deliver_tracked(std::move(state), active);
  untrack(lease.id);
}

void DroneAgent::deliver(LeaseState state)
{
  const auto id = state.lease.id;
  const auto active = track(id);
  deliver_tracked(std::move(state), active);
  untrack(id);
}

void DroneAgent::deliver_tracked(LeaseState state, const std::shared_ptr<Active>& active)
{
  const auto& id = state.lease.id;
  // Retries stop early only when the lease is cancelled or the drone aborts (drain=return, or
  // an orchestrator that no longer knows us): the spool then keeps the lease for next time.
  const auto interrupted = [this, &active] {
    std::lock_guard lock(m_mutex);
    return active->cancelled || m_aborting;
  };
  const auto give_up_if_cancelled = [&] {
    if (is_cancelled(active)) {
      LOG_INFO("lease {}: cancelled by the orchestrator; dropping its result", id);
      (void)m_spool.remove(id);
    }
  };
  // A failed attempt to retry: warned about once, then a backoff pause. False when the pause was
  // interrupted (the caller stops; a cancelled lease's result is dropped).
  const auto retry_later = [&](Backoff& backoff, bool& warned, std::string_view what, const auto& result) {
    if (!warned) {
      LOG_WARN("lease {}: {} failed ({}); retrying with backoff", id, what, describe(result));
      warned = true;
    }
    if (!pause(backoff.next(), interrupted)) {
      give_up_if_cancelled();
      return false;
    }
    return true;
  };

  if (state.phase == LeasePhase::built) {
    Backoff backoff;
    bool warned = false;
    while (true) {
      const auto artifact = m_spool.artifact_path(state);
      if (!std::filesystem::exists(artifact)) {
        state.phase = LeasePhase::failed;
        state.reason = fmt::format("the artifact {} vanished from the spool before it was uploaded", state.artifact);
        LOG_ERROR("lease {}: {}", id, state.reason);
        (void)m_spool.save(state);
        break;
      }
      const auto result = m_api.upload_artifact(id, artifact, state.sha256, state.xxh3_128);
      const auto verdict = verdict_of(result);
      if (verdict == Verdict::done) {
        LOG_INFO("lease {}: uploaded {} (HTTP {})", id, state.artifact, result->status);
        if (m_hooks.metrics) {
          m_hooks.metrics->upload("ok", state.size);
        }
        std::error_code error;
        std::filesystem::remove(artifact, error);
        state.phase = LeasePhase::uploaded;
        if (auto saved = m_spool.save(state); !saved) {
          LOG_ERROR("lease {}: cannot record the upload in the spool: {}", id, saved.error().message);
        }
        break;
      }
      // 409 with upload_in_progress: an earlier attempt of ours is still being received.
      const bool in_progress =
        result && result->status == 409 && result->body.is_object() && result->body.value("upload_in_progress", false);
      if (verdict == Verdict::retry || in_progress) {
        if (m_hooks.metrics) {
          m_hooks.metrics->upload("retry");
        }
        if (!retry_later(backoff, warned, "upload", result)) {
          return;
        }
        continue;
      }
      if (verdict == Verdict::drone_unknown) {
        fatal(fmt::format("lease {}: the orchestrator no longer knows this drone ({})", id, describe(result)));
        return;
      }
      // Refused for good.
      if (m_hooks.metrics) {
        m_hooks.metrics->upload("refused");
      }
      const int status = result ? result->status : 0;
      if (status == 409) {
        LOG_INFO("lease {}: {} was already received from another build; dropping ours", id, state.lease.cpv);
        (void)m_spool.remove(id);
        return;
      }
      if (status == 400 || status == 413 || status == 422) {
        state.phase = LeasePhase::failed;
        state.reason = fmt::format("the orchestrator refused the artifact ({})", describe(result));
        LOG_WARN("lease {}: {}", id, state.reason);
        std::error_code error;
        std::filesystem::remove(artifact, error);
        (void)m_spool.save(state);
        break;
      }
      LOG_WARN("lease {}: upload refused ({}); the lease is no longer ours, dropping it", id, describe(result));
      (void)m_spool.remove(id);
      return;
    }
  }

  net::ReportRequest report;
  report.result = state.phase == LeasePhase::uploaded ? net::BuildResult::success : net::BuildResult::failure;
  report.duration_seconds = state.duration_seconds;
  report.log_tail = read_tail(m_spool.log_path(id), k_log_tail_bytes);
  report.reason = report.result == net::BuildResult::success ? std::string() : state.reason;

  Backoff backoff;
  bool warned = false;
  while (true) {
    const auto result = m_api.report(id, report);
    const auto verdict = verdict_of(result);
    if (verdict == Verdict::done) {
      LOG_INFO("lease {}: reported {} of {}", id, report.result == net::BuildResult::success ? "success" : "failure",
               state.lease.cpv);
      (void)m_spool.remove(id);
      return;
    }
    if (verdict == Verdict::retry) {
      if (!retry_later(backoff, warned, "report", result)) {
        return;
      }
      continue;
    }
    if (verdict == Verdict::drone_unknown) {
      fatal(fmt::format("lease {}: the orchestrator no longer knows this drone ({})", id, describe(result)));
      return;
    }
    LOG_WARN("lease {}: report refused ({}, status {}); dropping it", id, describe(result), status_of(result));
    (void)m_spool.remove(id);
    return;
  }
}

bool DroneAgent::refuse(const net::Lease& lease, const Refusal& refusal)
{
  LOG_WARN("lease {}: refusing {} (profile {}): {}: {}", lease.id, lease.cpv, lease.profile, refusal.code,
           refusal.reason);
  const net::RefuseRequest request{refusal.code, refusal.reason};
  Backoff backoff;
  for (int attempt = 1;; ++attempt) {
    const auto result = m_api.refuse_lease(lease.id, request);
    switch (verdict_of(result)) {
    case Verdict::done:
      (void)m_spool.remove(lease.id);
      return true;
    case Verdict::drone_unknown:
      fatal(fmt::format("lease {}: the orchestrator no longer knows this drone ({})", lease.id, describe(result)));
      (void)m_spool.remove(lease.id);
      return true;
    case Verdict::rejected:
      LOG_WARN("lease {}: the refusal was not taken ({}); reporting the lease failed instead", lease.id,
               describe(result));
      return false;
    case Verdict::retry:
      break;
    }
    if (attempt == k_refuse_attempts || !pause(backoff.next(), [this] { return aborting(); })) {
      LOG_WARN("lease {}: could not refuse it ({}); returning it", lease.id, describe(result));
      give_back(lease.id, k_return_attempts);
      (void)m_spool.remove(lease.id);
      return true;
    }
  }
}

} // namespace swarm::roles::drone
