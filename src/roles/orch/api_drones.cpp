// Route handlers of the drone protocol (docs/protocol.md, "Drones"): registration, heartbeats,
// claims, artifact uploads (streamed to disk, hashed and validated on the way), reports, log
// chunks and returns.
#include "roles/orch/api_context.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"
#include "core/random.hpp"
#include "core/strings.hpp"
#include "core/unique_fd.hpp"
#include "net/protocol_version.hpp"
#include "portage/build_check.hpp"
#include "portage/gpkg.hpp"
#include "portage/packages_index.hpp"
#include "roles/orch/coordinator.hpp"
#include "roles/orch/observability.hpp"
#include "roles/orch/signing.hpp"

namespace swarm::roles::orch {

namespace {

constexpr uint64_t k_log_file_limit = 64u << 20;
constexpr size_t k_log_tail_limit = 256u << 10;

// A build has ended: its log (`live`, BUILD.log) is compressed. A failure leaves the plain log,
// which the retention sweep compresses later.
void compress_ended_log(Api& api, const std::filesystem::path& live)
{
  const auto build = strings::parse_int(live.stem().string());
  if (!build) {
    return;
  }
  if (auto packed = api.logs.compress(*build); !packed) {
    LOG_WARN("cannot compress the log of build {}: {}", *build, packed.error().message);
  }
  api.coordinator.announce_news();
}

std::string lower(std::string text)
{
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

// Streams an upload into the profile's staging/.incoming/, checks the declared hashes, the GPKG
// and that it was built as its plan entry and profile ask, and returns what the coordinator needs
// to take it. The file is removed on every failure; a GPKG that is not acceptable is `status` 422,
// one built otherwise than asked also fills `differences`.
Result<ArtifactInfo> ingest(net::RequestBody& body, const httplib::Request& request, const UploadTicket& ticket,
                            const std::string& lease, BinhostSigner* signer, int& status,
                            std::vector<std::string>& differences)
{
  const auto declared_sha256 = lower(request.get_header_value("X-Swarm-Sha256"));
  const auto declared_xxh3 = lower(request.get_header_value("X-Swarm-Xxh3-128"));
  if (declared_sha256.size() != 64 || declared_xxh3.size() != 32) {
    return fail(ErrorKind::invalid, "X-Swarm-Sha256 and X-Swarm-Xxh3-128 headers (hex) are required");
  }
  if (auto made = fs::make_dirs(ticket.incoming_dir); !made) {
    return fail(made.error());
  }
  const auto path = ticket.incoming_dir / fmt::format("{}-{}.part", lease, random::hex_token(4));
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) {
    status = errno == ENOSPC || errno == EDQUOT ? 507 : 0;
    return fail(ErrorKind::io, "cannot create {}: {}", path.string(), std::strerror(errno));
  }
  auto remove_file = [&] {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  };
  hash::MultiHasher hasher({hash::Algo::sha256, hash::Algo::xxh3_128});
  auto received = body.read([&](std::string_view chunk) -> Result<> {
    hasher.update(chunk);
    const char* data = chunk.data();
    size_t left = chunk.size();
    while (left > 0) {
      const auto written = ::write(fd.get(), data, left);
      if (written < 0) {
        if (errno == EINTR) {
          continue;
        }
        status = errno == ENOSPC || errno == EDQUOT ? 507 : 0;
        return fail(ErrorKind::io, "writing the upload: {}", std::strerror(errno));
      }
      data += written;
      left -= static_cast<size_t>(written);
    }
    return {};
  });
  const bool synced = ::fsync(fd.get()) == 0;
  const int sync_errno = synced ? 0 : errno;
  fd.reset();
  if (!received) {
    remove_file();
    return fail(received.error());
  }
  if (!synced) {
    const int error_number = sync_errno;
    remove_file();
    status = error_number == ENOSPC || error_number == EDQUOT ? 507 : 0;
    return fail(ErrorKind::io, "cannot fsync the upload: {}", std::strerror(error_number));
  }
  const auto digests = hasher.finish();
  if (digests.at(hash::Algo::sha256) != declared_sha256 || digests.at(hash::Algo::xxh3_128) != declared_xxh3) {
    remove_file();
    return fail(ErrorKind::invalid,
                "hash mismatch: the upload does not match the declared X-Swarm-Sha256/X-Swarm-Xxh3-128 "
                "(received sha256 {})",
                digests.at(hash::Algo::sha256));
  }
  portage::GpkgOptions gpkg_options;
  gpkg_options.expect_cpv = ticket.cpv;
  gpkg_options.file_digests = {hash::Algo::md5, hash::Algo::sha1};
  auto report = portage::validate_gpkg(path, gpkg_options);
  if (!report) {
    remove_file();
    return fail(report.error());
  }
  if (!report->valid) {
    remove_file();
    status = 422;
    return fail(ErrorKind::invalid, "not a valid GPKG for {}: {}", ticket.cpv, report->reason);
  }
  differences = portage::check_build(report->metadata, {ticket.cpv, ticket.slot, ticket.repo, ticket.use,
                                                        ticket.build_profile ? &*ticket.build_profile : nullptr});
  if (!differences.empty()) {
    remove_file();
    status = 422;
    return fail(ErrorKind::invalid, "{} was not built as its plan and profile ask: {}", ticket.cpv,
                strings::join(differences, "; "));
  }
  const auto build_id = strings::parse_int(report->metadata["BUILD_ID"]);
  if (!build_id || *build_id < 1) {
    remove_file();
    status = 422;
    return fail(ErrorKind::invalid, "the GPKG has no BUILD_ID (build with FEATURES=binpkg-multi-instance)");
  }
  // A signed binhost signs the package here, in place (temporary file + rename), before it enters
  // staging: the index then describes the signed file, and the signatures are checked once.
  bool signed_here = false;
  if (signer != nullptr) {
    auto signed_ok = signer->sign(path);
    if (!signed_ok) {
      remove_file();
      status = is_no_space(signed_ok.error()) ? 507 : 0;
      return fail(signed_ok.error().kind, "cannot sign {}: {}", ticket.cpv, signed_ok.error().message);
    }
    if (*signed_ok) {
      signed_here = true;
      if (auto home = signer->verify_home()) {
        gpkg_options.verify_signature_with = *home;
      }
      report = portage::validate_gpkg(path, gpkg_options);
      if (!report || !report->valid) {
        remove_file();
        return fail(ErrorKind::internal, "{} does not verify after signing: {}", ticket.cpv,
                    report ? report->reason : report.error().message);
      }
    }
  }
  const auto pf = report->metadata["PF"];
  ArtifactInfo artifact;
  artifact.signed_here = signed_here;
  artifact.incoming_path = path;
  artifact.relative_path = fmt::format("{}/{}/{}-{}.gpkg.tar", ticket.category, ticket.package, pf, *build_id);
  artifact.sha256 = report->sha256;
  artifact.size = report->size;
  artifact.build_id = *build_id;
  auto entry = portage::index_entry_for_gpkg(path, artifact.relative_path, *report);
  if (!entry) {
    remove_file();
    return fail(entry.error());
  }
  json entry_json = json::object();
  for (const auto& [key, value] : *entry) {
    entry_json[key] = value;
  }
  artifact.index_entry = entry_json.dump();
  return artifact;
}

} // namespace

namespace handlers {

void register_drone(Api& api, const Call& call)
{
  const auto hello = call.read<net::RegisterRequest>();
  if (hello.protocol != net::k_protocol_version) {
    return call.fail({ErrorKind::conflict, fmt::format("protocol {} is not supported (this orchestrator speaks {})",
                                                       hello.protocol, net::k_protocol_version)});
  }
  call.reply(api.coordinator.register_drone(call.caller.drone, hello));
}

void heartbeat(Api& api, const Call& call)
{
  call.reply(api.coordinator.heartbeat(call.caller.drone, call.read<net::HeartbeatRequest>()));
}

void claim(Api& api, const Call& call)
{
  double wait = 0;
  if (call.request.has_param("wait")) {
    auto parsed = strings::parse_double(call.param("wait"));
    if (!parsed || !(*parsed >= 0 && *parsed <= 86400)) {
      return call.fail({ErrorKind::invalid, "wait must be a number of seconds"});
    }
    wait = *parsed;
  }
  // A waiting claim holds a server worker: past the long-poll cap it is answered at once, with a
  // lease if one is free now, else with "claim again" (the drone pauses, then claims again).
  bool waiting = false;
  if (wait > 0) {
    waiting = api.enter_long_poll();
  }
  struct Leave {
    Api& api;
    bool active;
    ~Leave()
    {
      if (active) {
        api.leave_long_poll();
      }
    }
  } leave{api, waiting};
  const bool capped = wait > 0 && !waiting;
  const auto started = std::chrono::steady_clock::now();
  auto reply = api.coordinator.claim(call.caller.drone, capped ? 0 : wait);
  if (api.observability && reply) {
    api.observability->on_claim(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
                                reply->lease.has_value());
  }
  if (reply && capped && !reply->lease) {
    reply->reason += reply->reason.empty() ? "" : "; ";
    reply->reason += "every long-poll place is taken: claim again";
    call.response.set_header("Retry-After", "1");
  }
  call.reply(reply);
}

void upload_artifact(Api& api, const Call& call)
{
  const auto lease = call.match(1);
  auto ticket = api.coordinator.begin_upload(lease, call.caller.drone);
  if (!ticket) {
    return call.fail(ticket.error());
  }
  // One upload per lease at a time: a second one (a retry while the first is still being
  // received) would race it into the same staging path.
  if (!api.begin_lease_upload(lease)) {
    call.response.set_header("Retry-After", "5");
    return call.reply(409, json{{"error", fmt::format("an upload to lease {} is already in progress", lease)},
                                {"kind", "conflict"},
                                {"upload_in_progress", true}});
  }
  struct Done {
    Api& api;
    const std::string& lease;
    ~Done() { api.end_lease_upload(lease); }
  } done{api, lease};
  int status = 0;
  std::vector<std::string> differences;
  auto artifact = ingest(call.body(), call.request, *ticket, lease, api.options.signer.get(), status, differences);
  if (api.observability) {
    api.observability->on_upload(artifact ? artifact->size : 0, artifact.has_value());
  }
  const auto staging = ticket->incoming_dir.parent_path().string();
  if (!artifact && (status == 507 || is_no_space(artifact.error()))) {
    return reply_no_space(api, call, staging, artifact.error());
  }
  if (artifact) {
    api.clear_disk_full(staging);
  }
  if (!artifact) {
    if (!differences.empty()) {
      // Counted against the drone, never against the package.
      if (auto rejected = api.coordinator.reject_artifact(lease, call.caller.drone, differences); !rejected) {
        return call.fail(rejected.error());
      }
      return call.reply(422,
                        json{{"error", artifact.error().message}, {"kind", "invalid"}, {"differences", differences}});
    }
    if (status == 422) {
      return call.reply(422, json{{"error", artifact.error().message}, {"kind", "invalid"}});
    }
    return call.fail(artifact.error());
  }
  auto accepted = api.coordinator.accept_artifact(lease, call.caller.drone, *artifact);
  if (!accepted) {
    if (is_no_space(accepted.error())) {
      return reply_no_space(api, call, staging, accepted.error());
    }
    return call.fail(accepted.error());
  }
  call.reply(accepted->duplicate ? 200 : 201, json(*accepted));
}

void report(Api& api, const Call& call)
{
  auto report = call.read<net::ReportRequest>();
  if (report.log_tail.size() > k_log_tail_limit) {
    report.log_tail = report.log_tail.substr(report.log_tail.size() - k_log_tail_limit);
  }
  // The log's path before the report (the lease is the drone's until then).
  auto log = api.coordinator.log_path(call.match(1), call.caller.drone);
  auto reply = api.coordinator.report(call.match(1), call.caller.drone, report);
  if (api.observability && reply && !reply->duplicate) {
    api.observability->on_report(report.result == net::BuildResult::success, report.duration_seconds);
  }
  if (reply && log) {
    compress_ended_log(api, *log);
  }
  call.reply(reply);
}

void append_log(Api& api, const Call& call)
{
  auto path = api.coordinator.log_path(call.match(1), call.caller.drone);
  if (!path) {
    return call.fail(path.error());
  }
  auto text = call.body().read_all();
  if (!text) {
    return call.fail(text.error());
  }
  std::error_code ec;
  std::filesystem::create_directories(path->parent_path(), ec);
  if (auto packed = *path; std::filesystem::exists(packed += ".zst", ec)) {
    return call.reply(json{{"stored", false}, {"reason", "the build has ended"}});
  }
  const auto size = std::filesystem::file_size(*path, ec);
  if (!ec && size > k_log_file_limit) {
    return call.reply(json{{"stored", false}, {"reason", "log limit reached"}});
  }
  UniqueFd fd(::open(path->c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!fd) {
    return call.fail({ErrorKind::io, "cannot open the build log"});
  }
  const auto written = ::write(fd.get(), text->data(), text->size());
  if (written < 0 && (errno == ENOSPC || errno == EDQUOT)) {
    return reply_no_space(api, call, path->parent_path().string(), {ErrorKind::io, std::strerror(errno)});
  }
  api.coordinator.announce_news(); // wakes `swarm logs --follow` and the dashboard
  call.reply(json{{"stored", written == static_cast<ssize_t>(text->size())}});
}

void refuse(Api& api, const Call& call)
{
  auto result = api.coordinator.refuse(call.match(1), call.caller.drone, call.read<net::RefuseRequest>());
  if (!result) {
    return call.fail(result.error());
  }
  call.reply(json{{"refused", true}});
}

void build_profile(Api& api, const Call& call)
{
  auto text = api.coordinator.build_profile(call.match(1));
  if (!text) {
    return call.fail(text.error());
  }
  call.response.set_content(*text, "application/json");
}

void return_lease(Api& api, const Call& call)
{
  auto log = api.coordinator.log_path(call.match(1), call.caller.drone);
  auto result = api.coordinator.return_lease(call.match(1), call.caller.drone);
  if (!result) {
    return call.fail(result.error());
  }
  if (log) {
    compress_ended_log(api, *log);
  }
  call.reply(json{{"returned", true}});
}

} // namespace handlers

} // namespace swarm::roles::orch
