#include "net/protocol.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "net/protocol_version.hpp"

namespace swarm::net {

using nlohmann::json;

namespace {

constexpr double k_max_build_seconds = 30.0 * 86400;
// Byte counts beyond any real machine (2^60, an exbibyte) are refused rather than stored.
constexpr uint64_t k_max_bytes = uint64_t(1) << 60;
// Text fields: names, versions, reasons … (a log tail may be longer, then is cut to its end).
constexpr size_t k_max_text = 64u << 10;
constexpr size_t k_max_log_tail = 16u << 20;
constexpr size_t k_max_list = 100'000;

[[noreturn]] void invalid(std::string message)
{
  throw Fatal{Error{ErrorKind::invalid, std::move(message)}};
}

// Reads the fields of one JSON object, each checked for type and range. Absent and null
// fields give the fallback.
class Fields {
public:
  Fields(const json& object, std::string_view what) : m_object(object)
  {
    if (!object.is_object()) {
      invalid(fmt::format("{} must be a JSON object", what));
    }
  }

  const json* find(const char* key) const
  {
    const auto it = m_object.find(key);
    return it == m_object.end() || it->is_null() ? nullptr : &*it;
  }

  std::string text(const char* key, std::string fallback = {}, size_t max_size = k_max_text) const
  {
    const auto* value = find(key);
    if (!value) {
      return fallback;
    }
    if (!value->is_string()) {
      invalid(fmt::format("field '{}' must be a string", key));
    }
    if (value->get_ref<const std::string&>().size() > max_size) {
      invalid(fmt::format("field '{}' is longer than {} bytes", key, max_size));
    }
    return value->get<std::string>();
  }

  std::string required_text(const char* key) const
  {
    auto value = text(key);
    if (value.empty()) {
      invalid(fmt::format("field '{}' is required", key));
    }
    return value;
  }

  std::optional<std::string> optional_text(const char* key) const
  {
    if (!find(key)) {
      return std::nullopt;
    }
    return text(key);
  }

  bool flag(const char* key, bool fallback = false) const
  {
    const auto* value = find(key);
    if (!value) {
      return fallback;
    }
    if (!value->is_boolean()) {
      invalid(fmt::format("field '{}' must be true or false", key));
    }
    return value->get<bool>();
  }

  int64_t integer(const char* key, int64_t fallback, int64_t min, int64_t max) const
  {
    const auto* value = find(key);
    if (!value) {
      return fallback;
    }
    if (!value->is_number_integer() || (value->is_number_unsigned() && value->get<uint64_t>() > uint64_t(max)) ||
        value->get<int64_t>() < min || value->get<int64_t>() > max) {
      invalid(fmt::format("field '{}' must be an integer from {} to {}", key, min, max));
    }
    return value->get<int64_t>();
  }

  uint64_t count(const char* key, uint64_t fallback = 0, uint64_t max = k_max_bytes) const
  {
    const auto* value = find(key);
    if (!value) {
      return fallback;
    }
    if (!value->is_number_unsigned()) {
      invalid(fmt::format("field '{}' must be a whole number, not negative", key));
    }
    if (value->get<uint64_t>() > max) {
      invalid(fmt::format("field '{}' must be a whole number from 0 to {}", key, max));
    }
    return value->get<uint64_t>();
  }

  double number(const char* key, double fallback, double min, double max) const
  {
    const auto* value = find(key);
    if (!value) {
      return fallback;
    }
    if (!value->is_number()) {
      invalid(fmt::format("field '{}' must be a number", key));
    }
    const auto number = value->get<double>();
    if (!std::isfinite(number) || number < min || number > max) {
      invalid(fmt::format("field '{}' must be a number from {} to {}", key, min, max));
    }
    return number;
  }

  std::vector<std::string> texts(const char* key) const
  {
    std::vector<std::string> out;
    const auto* value = find(key);
    if (!value) {
      return out;
    }
    if (!value->is_array()) {
      invalid(fmt::format("field '{}' must be a list of strings", key));
    }
    if (value->size() > k_max_list) {
      invalid(fmt::format("field '{}' has more than {} entries", key, k_max_list));
    }
    for (const auto& item : *value) {
      if (!item.is_string()) {
        invalid(fmt::format("field '{}' must be a list of strings", key));
      }
      if (item.get_ref<const std::string&>().size() > k_max_text) {
        invalid(fmt::format("field '{}' has an entry longer than {} bytes", key, k_max_text));
      }
      out.push_back(item.get<std::string>());
    }
    return out;
  }

  template <class T>
  std::vector<T> objects(const char* key) const
  {
    std::vector<T> out;
    const auto* value = find(key);
    if (!value) {
      return out;
    }
    if (!value->is_array()) {
      invalid(fmt::format("field '{}' must be a list", key));
    }
    if (value->size() > k_max_list) {
      invalid(fmt::format("field '{}' has more than {} entries", key, k_max_list));
    }
    for (const auto& item : *value) {
      out.push_back(item.get<T>());
    }
    return out;
  }

private:
  const json& m_object;
};

// The "profile" field: a valid profile name, "default" when absent.
std::string profile_field(const Fields& fields)
{
  auto profile = fields.text("profile", "default");
  if (!is_valid_profile_name(profile)) {
    invalid(fmt::format("field 'profile': \"{}\" is not a profile name (1-64 of A-Z a-z 0-9 . _ -)", profile));
  }
  return profile;
}

constexpr std::array k_claim_codes = {
  std::pair{ClaimCode::none, "none"},
  std::pair{ClaimCode::paused, "paused"},
  std::pair{ClaimCode::grounded, "grounded"},
  std::pair{ClaimCode::probation, "probation"},
  std::pair{ClaimCode::tree_mismatch, "tree_mismatch"},
  std::pair{ClaimCode::slots_full, "slots_full"},
  std::pair{ClaimCode::nothing_to_build, "nothing_to_build"},
  std::pair{ClaimCode::waiting_for_dependencies, "waiting_for_dependencies"},
  std::pair{ClaimCode::left_for_other_drones, "left_for_other_drones"},
  std::pair{ClaimCode::shutting_down, "shutting_down"},
  std::pair{ClaimCode::state_unavailable, "state_unavailable"},
  std::pair{ClaimCode::other, "other"},
};

} // namespace

bool is_valid_profile_name(std::string_view name)
{
  return !name.empty() && name.size() <= 64 && name.front() != '.' && name.front() != '-' &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                  c == '-';
         });
}

bool is_safe_lease_id(std::string_view id)
{
  if (id.empty() || id.size() > 128 || id == "." || id == "..") {
    return false;
  }
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

// --- drones ---------------------------------------------------------------------------------

void to_json(json& out, const Lease& lease)
{
  out = json{{"id", lease.id},
             {"cpv", lease.cpv},
             {"slot", lease.slot},
             {"repo", lease.repo},
             {"use", lease.use},
             {"deps", lease.deps},
             {"expires_at", lease.expires_at},
             {"expected_seconds", lease.expected_seconds},
             {"staging_url", lease.staging_url},
             {"tree_timestamp", lease.tree_timestamp},
             {"profile", lease.profile},
             {"profile_hash", lease.profile_hash}};
}

void from_json(const json& in, Lease& lease)
{
  const Fields fields(in, "a lease");
  lease.id = fields.text("id");
  if (!is_safe_lease_id(lease.id)) {
    invalid(fmt::format("lease id \"{}\" is not acceptable", lease.id));
  }
  lease.cpv = fields.required_text("cpv");
  lease.slot = fields.text("slot");
  lease.repo = fields.text("repo");
  lease.use = fields.texts("use");
  lease.deps = fields.texts("deps");
  lease.expires_at = fields.number("expires_at", 0, 0, 1e12);
  lease.expected_seconds = fields.number("expected_seconds", 0, 0, 1e9);
  lease.staging_url = fields.text("staging_url");
  lease.tree_timestamp = fields.text("tree_timestamp");
  lease.profile = fields.text("profile", "default");
  if (!is_valid_profile_name(lease.profile)) {
    invalid(fmt::format("profile name \"{}\" is not acceptable", lease.profile));
  }
  lease.profile_hash = fields.text("profile_hash");
}

void to_json(json& out, const RegisterRequest& request)
{
  out = json{{"name", request.name},
             {"protocol", request.protocol ? request.protocol : k_protocol_version},
             {"version", request.version},
             {"cores", request.cores},
             {"slots", request.slots},
             {"ram_bytes", request.ram_bytes},
             {"disk_free_bytes", request.disk_free_bytes},
             {"tree_timestamp", request.tree_timestamp},
             {"profiles", request.profiles},
             {"build_root", request.build_root},
             {"chost", request.chost}};
}

void from_json(const json& in, RegisterRequest& request)
{
  const Fields fields(in, "a registration");
  request.name = fields.text("name");
  request.protocol = static_cast<int>(fields.integer("protocol", 0, 0, 1'000'000));
  request.version = fields.text("version");
  request.cores = static_cast<int>(fields.integer("cores", 0, 0, 65'536));
  request.slots = static_cast<int>(fields.integer("slots", 1, 1, 256));
  request.ram_bytes = fields.count("ram_bytes");
  request.disk_free_bytes = fields.count("disk_free_bytes");
  request.tree_timestamp = fields.text("tree_timestamp");
  request.profiles = fields.texts("profiles");
  for (const auto& profile : request.profiles) {
    if (!is_valid_profile_name(profile)) {
      invalid(fmt::format("profile name \"{}\" is not acceptable", profile));
    }
  }
  request.build_root = fields.text("build_root", "isolated");
  if (request.build_root != "isolated" && request.build_root != "host") {
    invalid("field 'build_root' must be \"isolated\" or \"host\"");
  }
  request.chost = fields.text("chost");
}

void to_json(json& out, const Registration& registration)
{
  out = json{{"drone", registration.drone},
             {"heartbeat_interval", registration.heartbeat_interval},
             {"lease_ttl", registration.lease_ttl},
             {"claim_wait", registration.claim_wait},
             {"staging_url", registration.staging_url},
             {"leases", registration.leases}};
}

void from_json(const json& in, Registration& registration)
{
  const Fields fields(in, "a registration reply");
  registration.drone = fields.text("drone");
  registration.heartbeat_interval = fields.number("heartbeat_interval", 10, 0.01, 86400);
  registration.lease_ttl = fields.number("lease_ttl", 120, 0.01, 86400 * 7);
  registration.claim_wait = fields.number("claim_wait", 20, 0, 3600);
  registration.staging_url = fields.text("staging_url");
  registration.leases = fields.objects<Lease>("leases");
}

void to_json(json& out, const HeartbeatRequest& request)
{
  out = json{{"cpu_percent", request.cpu_percent},
             {"mem_percent", request.mem_percent},
             {"load1", request.load1},
             {"disk_free_bytes", request.disk_free_bytes},
             {"leases", request.leases}};
  if (request.tree_timestamp) {
    out["tree_timestamp"] = *request.tree_timestamp;
  }
}

void from_json(const json& in, HeartbeatRequest& request)
{
  const Fields fields(in, "a heartbeat");
  request.cpu_percent = fields.number("cpu_percent", 0, 0, 1000);
  request.mem_percent = fields.number("mem_percent", 0, 0, 1000);
  request.load1 = fields.number("load1", 0, 0, 1e6);
  request.disk_free_bytes = fields.count("disk_free_bytes");
  request.tree_timestamp = fields.optional_text("tree_timestamp");
  request.leases = fields.texts("leases");
}

void to_json(json& out, const HeartbeatReply& reply)
{
  out = json{{"state", reply.state}, {"reason", reply.reason}, {"cancel", reply.cancel}};
}

void from_json(const json& in, HeartbeatReply& reply)
{
  const Fields fields(in, "a heartbeat reply");
  reply.state = fields.text("state");
  reply.reason = fields.text("reason");
  reply.cancel = fields.texts("cancel");
}

std::string_view to_string(ClaimCode code)
{
  for (const auto& [value, name] : k_claim_codes) {
    if (value == code) {
      return name;
    }
  }
  return "other";
}

ClaimCode parse_claim_code(std::string_view text)
{
  for (const auto& [value, name] : k_claim_codes) {
    if (text == name) {
      return value;
    }
  }
  return ClaimCode::other;
}

void to_json(json& out, const ClaimReply& reply)
{
  out = json{{"lease", nullptr}, {"code", to_string(reply.code)}, {"reason", reply.reason}};
  if (reply.lease) {
    out["lease"] = *reply.lease;
  }
}

void from_json(const json& in, ClaimReply& reply)
{
  const Fields fields(in, "a claim reply");
  if (const auto* lease = fields.find("lease")) {
    reply.lease = lease->get<Lease>();
  } else {
    reply.lease.reset();
  }
  reply.code = parse_claim_code(fields.text("code", reply.lease ? "none" : "other"));
  reply.reason = fields.text("reason");
}

void to_json(json& out, const UploadReply& reply)
{
  out = json{{"received", reply.received}, {"path", reply.path}};
  if (reply.duplicate) {
    out["duplicate"] = true;
  } else {
    out["sha256"] = reply.sha256;
    out["size"] = reply.size;
  }
}

void from_json(const json& in, UploadReply& reply)
{
  const Fields fields(in, "an upload reply");
  reply.received = fields.flag("received", false);
  reply.duplicate = fields.flag("duplicate", false);
  reply.path = fields.text("path");
  reply.sha256 = fields.text("sha256");
  reply.size = fields.count("size");
}

void to_json(json& out, const ReportRequest& request)
{
  out = json{{"result", request.result == BuildResult::success ? "success" : "failure"},
             {"duration_seconds", request.duration_seconds},
             {"log_tail", request.log_tail},
             {"reason", request.reason}};
}

void from_json(const json& in, ReportRequest& request)
{
  const Fields fields(in, "a report");
  const auto result = fields.text("result");
  if (result != "success" && result != "failure") {
    invalid("field 'result' must be \"success\" or \"failure\"");
  }
  request.result = result == "success" ? BuildResult::success : BuildResult::failure;
  request.duration_seconds = fields.number("duration_seconds", 0, 0, k_max_build_seconds);
  request.log_tail = fields.text("log_tail", {}, k_max_log_tail);
  request.reason = fields.text("reason");
}

void to_json(json& out, const ReportReply& reply)
{
  out = json{{"accepted", reply.accepted}};
  if (reply.duplicate) {
    out["duplicate"] = true;
  }
}

void from_json(const json& in, ReportReply& reply)
{
  const Fields fields(in, "a report reply");
  reply.accepted = fields.flag("accepted", false);
  reply.duplicate = fields.flag("duplicate", false);
}

void to_json(json& out, const RefuseRequest& request)
{
  out = json{{"code", request.code}, {"reason", request.reason}};
}

void from_json(const json& in, RefuseRequest& request)
{
  const Fields fields(in, "a refusal");
  request.code = fields.required_text("code");
  static const std::set<std::string> k_codes = {"chost_unsupported", "repository_missing", "profile_unavailable",
                                                "build_root_unavailable", "other"};
  if (!k_codes.count(request.code)) {
    invalid(fmt::format("field 'code': unknown refusal \"{}\"", request.code));
  }
  request.reason = fields.text("reason");
}

// --- plan and control -----------------------------------------------------------------------

void to_json(json& out, const EnrollRequest& request)
{
  out = json{{"name", request.name}};
}

void from_json(const json& in, EnrollRequest& request)
{
  request.name = Fields(in, "an enrollment").required_text("name");
}

void to_json(json& out, const EnrollReply& reply)
{
  out = json{{"name", reply.name}, {"token", reply.token}};
}

void from_json(const json& in, EnrollReply& reply)
{
  const Fields fields(in, "an enrollment reply");
  reply.name = fields.text("name");
  reply.token = fields.required_text("token");
}

void to_json(json& out, const PlanRequest& request)
{
  out = json{{"mode", request.mode == PlanMode::add ? "add" : "replace"},
             {"clear_staging", request.clear_staging},
             {"profile", request.profile}};
}

void from_json(const json& in, PlanRequest& request)
{
  const Fields fields(in, "a plan submission");
  const auto mode = fields.text("mode", "replace");
  if (mode != "replace" && mode != "add") {
    invalid("field 'mode' must be \"replace\" or \"add\"");
  }
  request.mode = mode == "add" ? PlanMode::add : PlanMode::replace;
  request.clear_staging = fields.flag("clear_staging");
  request.profile = profile_field(fields);
}

void to_json(json& out, const PlanReply& reply)
{
  out =
    json{{"packages", reply.packages}, {"added", reply.added},     {"removed", reply.removed},  {"kept", reply.kept},
         {"reset", reply.reset},       {"changed", reply.changed}, {"warnings", reply.warnings}};
}

void from_json(const json& in, PlanReply& reply)
{
  const Fields fields(in, "a plan reply");
  reply.packages = fields.count("packages");
  reply.added = fields.count("added");
  reply.removed = fields.count("removed");
  reply.kept = fields.count("kept");
  reply.reset = fields.count("reset");
  reply.changed = fields.flag("changed", true);
  reply.warnings = fields.texts("warnings");
}

void to_json(json& out, const PauseReply& reply)
{
  out = json{{"paused", reply.paused}};
}

void from_json(const json& in, PauseReply& reply)
{
  reply.paused = Fields(in, "a pause reply").flag("paused");
}

void to_json(json& out, const ResetReply& reply)
{
  out = json{{"returned", reply.returned}};
}

void from_json(const json& in, ResetReply& reply)
{
  reply.returned = Fields(in, "a reset reply").count("returned");
}

void to_json(json& out, const UnblockRequest& request)
{
  out = json{{"packages", request.packages}, {"profile", request.profile}};
}

void from_json(const json& in, UnblockRequest& request)
{
  const Fields fields(in, "an unblock request");
  request.packages = fields.texts("packages");
  request.profile = profile_field(fields);
}

void to_json(json& out, const UnblockReply& reply)
{
  out = json{{"unblocked", reply.unblocked}};
}

void from_json(const json& in, UnblockReply& reply)
{
  reply.unblocked = Fields(in, "an unblock reply").texts("unblocked");
}

void to_json(json& out, const GroundRequest& request)
{
  out = json{{"drone", request.drone}};
}

void from_json(const json& in, GroundRequest& request)
{
  request.drone = Fields(in, "a ground request").required_text("drone");
}

void to_json(json& out, const GroundReply& reply)
{
  out = json{{"drone", reply.drone}, {"grounded", reply.grounded}};
}

void from_json(const json& in, GroundReply& reply)
{
  const Fields fields(in, "a ground reply");
  reply.drone = fields.text("drone");
  reply.grounded = fields.flag("grounded");
}

void to_json(json& out, const BalanceReply& reply)
{
  out = json{{"moved", reply.moved}};
}

void from_json(const json& in, BalanceReply& reply)
{
  reply.moved = Fields(in, "a balance reply").texts("moved");
}

void to_json(json& out, const LocalBuildRequest& request)
{
  out = json{{"drone", request.drone}, {"package", request.package}, {"profile", request.profile}};
}

void from_json(const json& in, LocalBuildRequest& request)
{
  const Fields fields(in, "a local build request");
  request.drone = fields.required_text("drone");
  request.package = fields.required_text("package");
  request.profile = profile_field(fields);
}

void to_json(json& out, const LocalBuildReply& reply)
{
  out = json{{"drone", reply.drone}, {"token", reply.token}, {"lease", reply.lease}};
}

void from_json(const json& in, LocalBuildReply& reply)
{
  const Fields fields(in, "a local build reply");
  reply.drone = fields.required_text("drone");
  reply.token = fields.required_text("token");
  const auto* lease = fields.find("lease");
  if (!lease) {
    invalid("field 'lease' is required");
  }
  reply.lease = lease->get<Lease>();
}

// --- releases -------------------------------------------------------------------------------

void to_json(json& out, const FinalizeRequest& request)
{
  out = json{{"force", request.force}, {"profile", request.profile}};
  if (request.threshold) {
    out["threshold"] = *request.threshold;
  }
}

void from_json(const json& in, FinalizeRequest& request)
{
  const Fields fields(in, "a finalize request");
  request.force = fields.flag("force");
  request.profile = profile_field(fields);
  if (fields.find("threshold")) {
    request.threshold = static_cast<int>(fields.integer("threshold", 0, 0, 100));
  } else {
    request.threshold.reset();
  }
}

void to_json(json& out, const RollbackRequest& request)
{
  out = json{{"profile", request.profile}};
  if (request.release) {
    out["release"] = *request.release;
  }
}

void from_json(const json& in, RollbackRequest& request)
{
  const Fields fields(in, "a rollback request");
  request.release = fields.optional_text("release");
  if (request.release && request.release->empty()) {
    request.release.reset();
  }
  request.profile = profile_field(fields);
}

} // namespace swarm::net
