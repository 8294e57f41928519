#include "roles/drone/spool.hpp"

#include <algorithm>
#include <cerrno>
#include <system_error>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/fs.hpp"
#include "roles/drone/orch_api.hpp"

namespace swarm::roles::drone {

namespace {

using nlohmann::json;

constexpr std::string_view k_state_file = "state.json";

} // namespace

std::string_view lease_phase_name(LeasePhase phase)
{
  switch (phase) {
  case LeasePhase::building:
    return "building";
  case LeasePhase::failed:
    return "failed";
  case LeasePhase::built:
    return "built";
  case LeasePhase::uploaded:
    return "uploaded";
  }
  return "building";
}

std::optional<LeasePhase> lease_phase_from_name(std::string_view name)
{
  for (auto phase : {LeasePhase::building, LeasePhase::failed, LeasePhase::built, LeasePhase::uploaded}) {
    if (lease_phase_name(phase) == name) {
      return phase;
    }
  }
  return std::nullopt;
}

json lease_state_to_json(const LeaseState& state)
{
  return {{"lease", state.lease},
          {"phase", lease_phase_name(state.phase)},
          {"started_at", state.started_at},
          {"duration_seconds", state.duration_seconds},
          {"reason", state.reason},
          {"artifact", state.artifact},
          {"sha256", state.sha256},
          {"xxh3_128", state.xxh3_128},
          {"size", state.size}};
}

Result<LeaseState> lease_state_from_json(const json& object)
{
  if (!object.is_object() || !object.contains("lease") || !object.contains("phase") || !object["phase"].is_string()) {
    return fail(ErrorKind::invalid, "not a lease state");
  }
  LeaseState state;
  auto lease = read_message<net::Lease>(object["lease"]);
  if (!lease) {
    return fail(lease.error());
  }
  state.lease = std::move(*lease);
  const auto phase = lease_phase_from_name(object["phase"].get<std::string>());
  if (!phase) {
    return fail(ErrorKind::invalid, "unknown lease phase \"{}\"", object["phase"].get<std::string>());
  }
  state.phase = *phase;
  try {
    state.started_at = object.value("started_at", int64_t{0});
    state.duration_seconds = object.value("duration_seconds", 0.0);
    state.reason = object.value("reason", std::string());
    state.artifact = object.value("artifact", std::string());
    state.sha256 = object.value("sha256", std::string());
    state.xxh3_128 = object.value("xxh3_128", std::string());
    state.size = object.value("size", uint64_t{0});
  } catch (const json::exception& e) {
    return fail(ErrorKind::invalid, "bad lease state: {}", e.what());
  }
  // The artifact name becomes a path: it must stay inside the work dir.
  if (state.artifact.find('/') != std::string::npos || state.artifact == "." || state.artifact == "..") {
    return fail(ErrorKind::invalid, "bad artifact name \"{}\"", state.artifact);
  }
  if (state.phase == LeasePhase::built && state.artifact.empty()) {
    return fail(ErrorKind::invalid, "a built lease without an artifact");
  }
  return state;
}

ResumeAction resume_action(LeasePhase phase)
{
  switch (phase) {
  case LeasePhase::building:
    return ResumeAction::return_lease;
  case LeasePhase::built:
    return ResumeAction::upload;
  case LeasePhase::failed:
  case LeasePhase::uploaded:
    return ResumeAction::report;
  }
  return ResumeAction::return_lease;
}

Spool::Spool(std::filesystem::path root) : m_root(std::move(root))
{}

Result<> Spool::prepare() const
{
  for (const auto& dir : {m_root, pkgdir(), m_root / "leases"}) {
    if (auto made = fs::make_dirs(dir); !made) {
      return made;
    }
  }
  return {};
}

std::filesystem::path Spool::pkgdir() const
{
  return m_root / "pkgdir";
}

std::filesystem::path Spool::work_dir(std::string_view lease_id) const
{
  return m_root / "leases" / std::string(lease_id);
}

std::filesystem::path Spool::log_path(std::string_view lease_id) const
{
  return work_dir(lease_id) / "build.log";
}

std::filesystem::path Spool::state_path(std::string_view lease_id) const
{
  return work_dir(lease_id) / k_state_file;
}

std::filesystem::path Spool::artifact_path(const LeaseState& state) const
{
  if (state.artifact.empty()) {
    return {};
  }
  return work_dir(state.lease.id) / state.artifact;
}

Result<> Spool::save(const LeaseState& state) const
{
  if (!net::is_safe_lease_id(state.lease.id)) {
    return fail(ErrorKind::invalid, "lease id \"{}\" is not acceptable", state.lease.id);
  }
  if (auto made = fs::make_dirs(work_dir(state.lease.id)); !made) {
    return made;
  }
  return fs::write_file_atomic(state_path(state.lease.id), lease_state_to_json(state).dump(1) + "\n", 0600);
}

Result<LeaseState> Spool::load(std::string_view lease_id) const
{
  auto text = fs::read_file(state_path(lease_id), 16u << 20);
  if (!text) {
    return fail(text.error());
  }
  json parsed;
  try {
    parsed = json::parse(*text);
  } catch (const json::exception& e) {
    return fail(ErrorKind::invalid, "{}: {}", state_path(lease_id).string(), e.what());
  }
  auto state = lease_state_from_json(parsed);
  if (!state) {
    return fail(ErrorKind::invalid, "{}: {}", state_path(lease_id).string(), state.error().message);
  }
  if (state->lease.id != lease_id) {
    return fail(ErrorKind::invalid, "{}: names lease {}", state_path(lease_id).string(), state->lease.id);
  }
  return state;
}

std::vector<Spool::Entry> Spool::scan() const
{
  std::vector<Entry> out;
  std::error_code error;
  std::filesystem::directory_iterator it(m_root / "leases", error);
  if (error) {
    return out;
  }
  for (const auto& entry : it) {
    if (!entry.is_directory(error)) {
      continue;
    }
    auto id = entry.path().filename().string();
    if (!net::is_safe_lease_id(id)) {
      continue;
    }
    auto state = load(id);
    out.push_back(Entry{std::move(id), std::move(state)});
  }
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.id < b.id; });
  return out;
}

Result<> Spool::remove(std::string_view lease_id) const
{
  if (!net::is_safe_lease_id(lease_id)) {
    return fail(ErrorKind::invalid, "lease id \"{}\" is not acceptable", std::string(lease_id));
  }
  std::error_code error;
  std::filesystem::remove_all(work_dir(lease_id), error);
  if (error) {
    return fail(ErrorKind::io, "cannot remove {}: {}", work_dir(lease_id).string(), error.message());
  }
  return {};
}

std::string read_tail(const std::filesystem::path& path, uint64_t max_bytes)
{
  auto fd = fs::open_read(path);
  if (!fd) {
    return {};
  }
  const off_t size = ::lseek(fd->get(), 0, SEEK_END);
  if (size < 0) {
    return {};
  }
  const uint64_t start = static_cast<uint64_t>(size) > max_bytes ? static_cast<uint64_t>(size) - max_bytes : 0;
  std::string out(static_cast<size_t>(static_cast<uint64_t>(size) - start), '\0');
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t got = ::pread(fd->get(), out.data() + done, out.size() - done, static_cast<off_t>(start + done));
    if (got <= 0) {
      if (got < 0 && errno == EINTR) {
        continue;
      }
      break;
    }
    done += static_cast<size_t>(got);
  }
  out.resize(done);
  if (start > 0) {
    // A window that starts mid-line starts at the next line instead.
    if (const auto newline = out.find('\n'); newline != std::string::npos && newline + 1 < out.size()) {
      out.erase(0, newline + 1);
    }
  }
  return out;
}

} // namespace swarm::roles::drone
