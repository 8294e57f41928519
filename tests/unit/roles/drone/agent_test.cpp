#include <doctest/doctest.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "portage/gpkg.hpp"
#include "roles/drone/agent.hpp"

using namespace swarm;
using namespace swarm::roles::drone;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

Result<Answer> http_answer(int status, json body = json::object())
{
  Answer out;
  out.status = status;
  out.body = std::move(body);
  if (out.body.is_object() && out.body.contains("error")) {
    out.message = out.body["error"].get<std::string>();
  }
  return out;
}

Result<Answer> unreachable()
{
  return fail(ErrorKind::unavailable, "connection refused");
}

// An orchestrator in memory: scripted answers per call (default 200 {}), every call recorded.
class FakeApi final : public OrchApi {
public:
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::string> calls;
  std::vector<net::ReportRequest> reports;
  std::vector<net::HeartbeatRequest> heartbeats;
  std::map<std::string, std::string> uploaded_sha256; // lease → sha256 of the file at upload time
  std::map<std::string, std::deque<Result<Answer>>> script;
  std::function<Result<Answer>()> claim_answer;

  Result<Answer> next(const std::string& call, const std::string& record)
  {
    std::lock_guard lock(mutex);
    calls.push_back(record);
    changed.notify_all();
    auto& queue = script[call];
    if (queue.empty()) {
      return http_answer(200);
    }
    auto out = queue.front();
    queue.pop_front();
    return out;
  }

  Result<Answer> register_drone(const net::RegisterRequest& request) override
  {
    return next("register", "register " + request.name);
  }
  Result<Answer> heartbeat(const net::HeartbeatRequest& request) override
  {
    {
      std::lock_guard lock(mutex);
      heartbeats.push_back(request);
    }
    return next("heartbeat", "heartbeat");
  }
  Result<Answer> claim(std::chrono::seconds) override
  {
    if (claim_answer) {
      {
        std::lock_guard lock(mutex);
        calls.push_back("claim");
      }
      return claim_answer();
    }
    return next("claim", "claim");
  }
  Result<Answer> upload_artifact(const std::string& id, const std::filesystem::path& file, const std::string& sha256,
                                 const std::string&) override
  {
    auto digests = hash::hash_file(file, {hash::Algo::sha256});
    {
      std::lock_guard lock(mutex);
      uploaded_sha256[id] = digests ? digests->at(hash::Algo::sha256) : "unreadable";
      if (uploaded_sha256[id] != sha256) {
        uploaded_sha256[id] += " (declared " + sha256 + ")";
      }
    }
    return next("upload", "upload " + id);
  }
  Result<Answer> report(const std::string& id, const net::ReportRequest& request) override
  {
    {
      std::lock_guard lock(mutex);
      reports.push_back(request);
    }
    const auto* result = request.result == net::BuildResult::success ? "success" : "failure";
    return next("report", fmt::format("report {} {}", id, result));
  }
  Result<Answer> send_log(const std::string& id, std::string_view) override { return next("log", "log " + id); }
  Result<Answer> return_lease(const std::string& id) override { return next("return", "return " + id); }
  Result<Answer> fetch_profile(const std::string& hash) override
  {
    {
      std::lock_guard lock(mutex);
      if (auto it = profiles.find(hash); it != profiles.end() && script["profile"].empty()) {
        calls.push_back("profile " + hash.substr(0, 8));
        return http_answer(200, it->second);
      }
    }
    return next("profile", "profile " + hash.substr(0, 8));
  }
  Result<Answer> refuse_lease(const std::string& id, const net::RefuseRequest& request) override
  {
    {
      std::lock_guard lock(mutex);
      refusals.push_back(request);
    }
    return next("refuse", "refuse " + id + " " + request.code);
  }
  std::map<std::string, json> profiles; // served by fetch_profile
  std::vector<net::RefuseRequest> refusals;

  std::vector<std::string> calls_except_logs()
  {
    std::lock_guard lock(mutex);
    std::vector<std::string> out;
    for (const auto& call : calls) {
      if (!call.starts_with("log ") && call != "heartbeat" && call != "claim") {
        out.push_back(call);
      }
    }
    return out;
  }
  bool wait_for(const std::function<bool()>& predicate)
  {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, 20s, predicate);
  }
};

// A process runner whose build step writes a genuine GPKG, or blocks until stopped.
class FakeEmerge final : public subprocess::ProcessRunner {
public:
  enum class Mode { build, block };
  Mode mode = Mode::build;
  std::mutex mutex;
  std::condition_variable cv;
  bool started = false;
  std::vector<subprocess::Spec> specs;
  std::vector<std::string> binrepos; // the staging binrepos.conf each run saw
  std::vector<std::string> pins;     // the USE pin each run saw

  Result<subprocess::Outcome> run(const subprocess::Spec& spec) override
  {
    subprocess::Outcome outcome;
    {
      std::lock_guard lock(mutex);
      specs.push_back(spec);
      const std::filesystem::path etc = spec.env.at("PORTAGE_CONFIGROOT") + "/etc/portage";
      binrepos.push_back(fs::read_file(etc / "binrepos.conf/swarm-staging.conf").value_or(""));
      pins.push_back(fs::read_file(etc / "package.use/zz-swarm-pin").value_or(""));
    }
    if (mode == Mode::block) {
      {
        std::lock_guard lock(mutex);
        started = true;
      }
      cv.notify_all();
      std::mutex wait_mutex;
      std::condition_variable_any wait_cv;
      std::unique_lock lock(wait_mutex);
      wait_cv.wait(lock, spec.stop, [] { return false; });
      outcome.signal = 15;
      outcome.stopped = true;
      return outcome;
    }
    spec.on_chunk(">>> Emerging (1 of 1)\n");
    const auto cpv = spec.argv.back().substr(1); // "=cat/pkg-ver"
    const auto split = *portage::parse_cpv(cpv);
    const auto pf = fmt::format("{}-{}", split.package, split.full_version());
    portage::GpkgContent content;
    content.dir_name = pf + "-1";
    content.metadata = {{"CATEGORY", split.category}, {"PF", pf}, {"SLOT", "0"}, {"BUILD_ID", "1"}, {"EAPI", "8"}};
    content.image["usr/share/x"] = {"x\n", 0644, portage::TarEntryType::regular, ""};
    const auto dir = std::filesystem::path(spec.env.at("PKGDIR")) / split.category / split.package;
    if (!fs::make_dirs(dir) || !portage::write_gpkg(dir / (pf + "-1.gpkg.tar"), content)) {
      outcome.exit_code = 1;
      return outcome;
    }
    outcome.exit_code = 0;
    return outcome;
  }
  void wait_started()
  {
    std::unique_lock lock(mutex);
    REQUIRE(cv.wait_for(lock, 20s, [this] { return started; }));
  }
};

struct Rig {
  fs::TempDir dir{"agent"};
  FakeApi api;
  FakeEmerge emerge;
  std::vector<std::chrono::milliseconds> pauses;
  std::mutex pause_mutex;
  uint64_t free_disk = 100ull << 30;
  std::unique_ptr<Builder> builder;
  std::unique_ptr<DroneAgent> agent;

  explicit Rig(DrainMode drain = DrainMode::finish)
  {
    // The drone's own configuration: a make.conf and a make.profile, as Portage needs.
    REQUIRE(fs::make_dirs(dir / "repo/profiles/p").has_value());
    REQUIRE(fs::make_dirs(dir / "root/etc/portage").has_value());
    REQUIRE(fs::write_file_atomic(dir / "root/etc/portage/make.conf", "MAKEOPTS=\"-j2\"\n").has_value());
    std::filesystem::create_directory_symlink(dir / "repo/profiles/p", dir / "root/etc/portage/make.profile");
    BuildSettings build;
    build.emerge = "emerge";
    build.pkgdir = dir / "spool/pkgdir";
    build.portage_configroot = dir / "root";
    build.token = "tok";
    builder = std::make_unique<Builder>(emerge, build);
    DroneSettings settings;
    settings.name = "d1";
    settings.spool = dir / "spool";
    settings.tree_timestamp_override = "Mon, 01 Jan 2024 00:00:00 +0000";
    settings.min_free_disk = 5ull << 30;
    settings.drain = drain;
    settings.exit_grace = 100ms;
    settings.setup.drone_configroot = dir / "root";
    settings.setup.token = "tok";
    settings.build_root.helper = "swarm";
    AgentHooks hooks;
    hooks.free_disk = [this]() -> Result<uint64_t> { return free_disk; };
    hooks.stats = [] { return StatsSample{12.5, 40, 0.5}; };
    hooks.pause = [this](std::chrono::milliseconds duration) {
      {
        std::lock_guard lock(pause_mutex);
        pauses.push_back(duration);
      }
      std::this_thread::sleep_for(1ms); // idle loops must not spin hot
      return true;
    };
    agent = std::make_unique<DroneAgent>(settings, api, *builder, hooks);
    REQUIRE(agent->spool().prepare().has_value());
  }

  // A lease left in the spool by an earlier run.
  void leave(const std::string& id, LeasePhase phase)
  {
    LeaseState state;
    state.lease.id = id;
    state.lease.cpv = "dev-libs/" + id + "-1.0";
    state.phase = phase;
    if (phase == LeasePhase::built) {
      state.artifact = id + "-1.0-1.gpkg.tar";
      REQUIRE(fs::make_dirs(agent->spool().work_dir(id)).has_value());
      REQUIRE(fs::write_file_atomic(agent->spool().work_dir(id) / state.artifact, "package bytes").has_value());
      state.sha256 = hash::hex_digest(hash::Algo::sha256, "package bytes");
      state.xxh3_128 = hash::hex_digest(hash::Algo::xxh3_128, "package bytes");
    }
    if (phase == LeasePhase::failed) {
      state.reason = "it broke";
    }
    REQUIRE(agent->spool().save(state).has_value());
    REQUIRE(fs::write_file_atomic(agent->spool().log_path(id), "log of " + id + "\n").has_value());
  }

  std::vector<std::chrono::milliseconds> recorded_pauses()
  {
    std::lock_guard lock(pause_mutex);
    return pauses;
  }
};

net::Lease lease(const std::string& id, const std::string& cpv)
{
  net::Lease out;
  out.id = id;
  out.cpv = cpv;
  return out;
}

// Copies the log into a file for one test, at info level, and puts things back afterwards.
class LogCapture {
public:
  explicit LogCapture(std::filesystem::path file) : m_file(std::move(file))
  {
    for (auto level : {log::Level::trace, log::Level::debug, log::Level::info, log::Level::warn}) {
      if (log::enabled(level)) {
        m_level = level;
        break;
      }
    }
    log::set_level(log::Level::info);
    log::set_file(m_file.string());
  }
  ~LogCapture()
  {
    log::set_file(""); // no file any more
    log::set_level(m_level);
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  // The text after the level of every line containing `needle`, in order.
  std::vector<std::string> lines_with(std::string_view needle) const
  {
    std::vector<std::string> out;
    const auto text = fs::read_file(m_file).value_or("");
    for (const auto& line : strings::split(text, '\n')) {
      if (line.find(needle) != std::string_view::npos) {
        const auto at = line.find(" INFO ");
        out.emplace_back(at == std::string_view::npos ? line : line.substr(at + 6));
      }
    }
    return out;
  }

private:
  std::filesystem::path m_file;
  log::Level m_level = log::Level::error;
};

} // namespace

TEST_CASE("agent: a restart finishes uploads and reports, and returns builds that never ended")
{
  Rig rig;
  rig.leave("l1", LeasePhase::built);
  rig.leave("l2", LeasePhase::uploaded);
  rig.leave("l3", LeasePhase::building);
  rig.leave("l4", LeasePhase::failed);
  REQUIRE(fs::make_dirs(rig.agent->spool().work_dir("l6")).has_value()); // crashed before any state
  rig.agent->resume({lease("l3", "dev-libs/l3-1.0"), lease("l5", "dev-libs/l5-1.0")});

  CHECK(rig.api.calls_except_logs() == std::vector<std::string>{"upload l1", "report l1 success", "report l2 success",
                                                                "return l3", "report l4 failure", "return l6",
                                                                "return l5"});
  CHECK(rig.api.uploaded_sha256["l1"] == hash::hex_digest(hash::Algo::sha256, "package bytes"));
  REQUIRE(rig.api.reports.size() == 3);
  CHECK(rig.api.reports[0].log_tail == "log of l1\n");
  CHECK(rig.api.reports[2].reason == "it broke");
  CHECK(rig.api.reports[2].log_tail == "log of l4\n");
  CHECK(rig.agent->spool().scan().empty());
  CHECK(rig.agent->active_leases().empty());
}

TEST_CASE("agent: uploads are retried with backoff until acknowledged, keeping the artifact meanwhile")
{
  Rig rig;
  rig.leave("l1", LeasePhase::built);
  auto& uploads = rig.api.script["upload"];
  uploads = {unreachable(),    http_answer(503), http_answer(502),
             http_answer(500), unreachable(),    unreachable(),
             unreachable(),    unreachable(),    http_answer(201, {{"received", true}})};
  auto& reports = rig.api.script["report"];
  reports = {http_answer(500), http_answer(200, {{"accepted", true}})};
  const auto artifact = rig.agent->spool().work_dir("l1") / "l1-1.0-1.gpkg.tar";
  rig.agent->resume({});
  CHECK(rig.recorded_pauses() == std::vector<std::chrono::milliseconds>{1s, 2s, 4s, 8s, 16s, 32s, 60s, 60s,
                                                                        /* report */ 1s});
  CHECK(rig.api.calls_except_logs().size() == 9 + 2);
  CHECK_FALSE(std::filesystem::exists(artifact));
  CHECK(rig.agent->spool().scan().empty());
}

TEST_CASE("agent: what the orchestrator's refusals of an upload lead to")
{
  Rig rig;
  SUBCASE("409: received from another build; ours is dropped, nothing reported")
  {
    rig.leave("l1", LeasePhase::built);
    rig.api.script["upload"] = {http_answer(409, {{"error", "already received"}})};
    rig.agent->resume({});
    CHECK(rig.api.calls_except_logs() == std::vector<std::string>{"upload l1"});
  }
  SUBCASE("422: not a valid package; reported as a failure with the reason")
  {
    rig.leave("l1", LeasePhase::built);
    rig.api.script["upload"] = {http_answer(422, {{"error", "metadata PF differs"}})};
    rig.agent->resume({});
    CHECK(rig.api.calls_except_logs() == std::vector<std::string>{"upload l1", "report l1 failure"});
    REQUIRE(rig.api.reports.size() == 1);
    CHECK(rig.api.reports[0].reason == "the orchestrator refused the artifact (HTTP 422: metadata PF differs)");
  }
  SUBCASE("404: the lease is unknown; dropped")
  {
    rig.leave("l1", LeasePhase::built);
    rig.api.script["upload"] = {http_answer(404)};
    rig.agent->resume({});
    CHECK(rig.api.calls_except_logs() == std::vector<std::string>{"upload l1"});
  }
  SUBCASE("401: this drone is unknown; the spool keeps the artifact and the drone exits 1")
  {
    rig.leave("l1", LeasePhase::built);
    rig.api.script["upload"] = {http_answer(401)};
    rig.agent->resume({});
    CHECK(rig.agent->exit_code() == 1);
    REQUIRE(rig.agent->spool().scan().size() == 1);
    CHECK(rig.agent->spool().scan()[0].state->phase == LeasePhase::built);
    return;
  }
  CHECK(rig.agent->spool().scan().empty());
}

TEST_CASE("agent: no claim while the spool's free disk is below the floor")
{
  Rig rig;
  rig.free_disk = 1ull << 30;
  auto step = rig.agent->claim_step();
  CHECK(step.status == DroneAgent::ClaimStatus::no_disk);
  CHECK(step.reason == "free disk 1.0 GiB below the minimum 5.0 GiB");
  CHECK(rig.api.calls.empty());

  rig.free_disk = 6ull << 30;
  rig.api.script["claim"] = {http_answer(200, {{"lease", nullptr}, {"reason", "no package ready"}}),
                             http_answer(200, {{"lease", {{"id", "l9"}, {"cpv", "dev-libs/x-1"}}}}), unreachable(),
                             http_answer(401)};
  step = rig.agent->claim_step();
  CHECK(step.status == DroneAgent::ClaimStatus::idle);
  CHECK(step.reason == "no package ready");
  step = rig.agent->claim_step();
  REQUIRE(step.status == DroneAgent::ClaimStatus::lease);
  CHECK(step.lease->id == "l9");
  CHECK(rig.agent->claim_step().status == DroneAgent::ClaimStatus::unavailable);
  CHECK(rig.agent->claim_step().status == DroneAgent::ClaimStatus::fatal);
  CHECK(rig.api.calls == std::vector<std::string>{"claim", "claim", "claim", "claim"});
}

TEST_CASE("agent: a claim without a lease gives its reason code; the log says it once per change")
{
  Rig rig;
  LogCapture log(rig.dir / "drone.log");
  const auto idle = [](std::string code, std::string reason) {
    return http_answer(200, {{"lease", nullptr}, {"code", std::move(code)}, {"reason", std::move(reason)}});
  };
  rig.api.script["claim"] = {idle("paused", "the queue is paused"),
                             idle("paused", "the queue is paused"),
                             idle("paused", "the queue is paused"),
                             idle("waiting_for_dependencies", "3 packages wait for dependencies"),
                             idle("waiting_for_dependencies", "2 packages wait for dependencies"),
                             http_answer(200, {{"lease", {{"id", "l1"}, {"cpv", "dev-libs/x-1"}}}}),
                             idle("waiting_for_dependencies", "1 package waits for dependencies"),
                             http_answer(200, {{"lease", nullptr}, {"reason", "no package ready"}}),
                             idle("a_code_from_the_future", "something new")};

  auto step = rig.agent->claim_step();
  CHECK(step.status == DroneAgent::ClaimStatus::idle);
  CHECK(step.code == net::ClaimCode::paused);
  CHECK(step.reason == "the queue is paused");
  CHECK(rig.agent->claim_step().code == net::ClaimCode::paused);
  CHECK(rig.agent->claim_step().code == net::ClaimCode::paused);
  CHECK(rig.agent->claim_step().code == net::ClaimCode::waiting_for_dependencies);
  CHECK(rig.agent->claim_step().code == net::ClaimCode::waiting_for_dependencies);
  step = rig.agent->claim_step();
  REQUIRE(step.status == DroneAgent::ClaimStatus::lease);
  CHECK(step.code == net::ClaimCode::none);
  CHECK(rig.agent->claim_step().code == net::ClaimCode::waiting_for_dependencies);
  step = rig.agent->claim_step(); // an orchestrator from before the codes
  CHECK(step.status == DroneAgent::ClaimStatus::idle);
  CHECK(step.code == net::ClaimCode::other);
  CHECK(step.reason == "no package ready");
  CHECK(rig.agent->claim_step().code == net::ClaimCode::other); // a code this build does not know

  CHECK(log.lines_with("no work:") ==
        std::vector<std::string>{
          "no work: paused: the queue is paused", "no work: waiting_for_dependencies: 3 packages wait for dependencies",
          "no work: waiting_for_dependencies: 1 package waits for dependencies", "no work: other: no package ready"});
}

TEST_CASE("agent: a malformed claim answer is an idle step with the error, and a lease it names goes back")
{
  Rig rig;
  rig.api.script["claim"] = {http_answer(200, {{"lease", {{"id", "l7"}, {"cpv", ""}}}}),
                             http_answer(200, {{"lease", {{"id", "l8"}, {"cpv", "a/b-1"}, {"expires_at", "soon"}}}}),
                             http_answer(200, {{"lease", "l9"}}),
                             http_answer(200, {{"lease", {{"id", "../x"}, {"cpv", "a/b-1"}}}}),
                             http_answer(200, {{"lease", nullptr}, {"code", 7}}),
                             http_answer(200, json()),
                             http_answer(200, json::array())};
  std::vector<DroneAgent::ClaimStep> steps;
  for (int i = 0; i < 7; ++i) {
    CHECK_NOTHROW(steps.push_back(rig.agent->claim_step()));
  }
  REQUIRE(steps.size() == 7);
  for (const auto& step : steps) {
    CHECK(step.status == DroneAgent::ClaimStatus::idle);
    CHECK(step.code == net::ClaimCode::other);
    CHECK_FALSE(step.lease.has_value());
  }
  CHECK(steps[0].reason == "field 'cpv' is required");
  CHECK(steps[1].reason == "field 'expires_at' must be a number");
  CHECK(steps[2].reason == "a lease must be a JSON object");
  CHECK(steps[3].reason == "lease id \"../x\" is not acceptable");
  CHECK(steps[4].reason == "field 'code' must be a string");
  CHECK(steps[5].reason == "a claim reply must be a JSON object");
  // Only the leases it can name safely are handed back; nothing was built.
  CHECK(rig.api.calls_except_logs() == std::vector<std::string>{"return l7", "return l8"});
  CHECK(rig.agent->spool().scan().empty());
  CHECK(rig.agent->exit_code() == 0);
}

TEST_CASE("agent: malformed register and heartbeat answers are errors, not crashes")
{
  Rig rig;
  rig.api.script["register"] = {http_answer(200, {{"drone", "d1"}, {"heartbeat_interval", "often"}})};
  Result<std::optional<net::Registration>> registered;
  CHECK_NOTHROW(registered = rig.agent->register_with_retry());
  REQUIRE_FALSE(registered.has_value());
  CHECK(registered.error().kind == ErrorKind::invalid);
  CHECK(registered.error().message ==
        "the orchestrator's register answer is not usable: field 'heartbeat_interval' must be a number");

  // A heartbeat answer that cannot be read cancels nothing; the drone carries on.
  rig.emerge.mode = FakeEmerge::Mode::block;
  std::thread worker([&] { rig.agent->work_lease(lease("l1", "dev-libs/foo-1.0")); });
  rig.emerge.wait_started();
  rig.api.script["heartbeat"] = {http_answer(200, {{"state", "online"}, {"cancel", "l1"}}), http_answer(200, json()),
                                 http_answer(200, {{"cancel", json::array({"l1"})}})};
  CHECK(rig.agent->heartbeat_once());
  CHECK(rig.agent->active_leases() == std::vector<std::string>{"l1"});
  CHECK(rig.agent->heartbeat_once()); // an empty body: nothing to do
  CHECK(rig.agent->active_leases() == std::vector<std::string>{"l1"});
  CHECK(rig.agent->heartbeat_once()); // a well-formed cancel still works afterwards
  worker.join();
  CHECK(rig.agent->active_leases().empty());
  CHECK(rig.agent->exit_code() == 0);
}

TEST_CASE("agent: a lease is built, uploaded with its hashes and reported, and the spool is cleaned")
{
  Rig rig;
  rig.agent->work_lease(lease("l1", "dev-libs/foo-1.0"));
  CHECK(rig.api.calls_except_logs() == std::vector<std::string>{"upload l1", "report l1 success"});
  CHECK(rig.api.uploaded_sha256["l1"].find("declared") == std::string::npos);
  REQUIRE(rig.api.reports.size() == 1);
  CHECK(rig.api.reports[0].log_tail.find(">>> Emerging (1 of 1)") != std::string::npos);
  CHECK(rig.api.reports[0].reason.empty());
  CHECK(rig.agent->spool().scan().empty());
  // The log went out in chunks too.
  CHECK(std::count(rig.api.calls.begin(), rig.api.calls.end(), "log l1") >= 1);
}

TEST_CASE("agent: a heartbeat's cancel kills the build and forgets the lease")
{
  Rig rig;
  rig.emerge.mode = FakeEmerge::Mode::block;
  std::thread worker([&] { rig.agent->work_lease(lease("l1", "dev-libs/foo-1.0")); });
  rig.emerge.wait_started();
  rig.api.script["heartbeat"] = {http_answer(200, {{"state", "online"}, {"cancel", {"l1", "other"}}})};
  CHECK(rig.agent->heartbeat_once());
  worker.join();
  REQUIRE(rig.api.heartbeats.size() == 1);
  CHECK(rig.api.heartbeats[0].leases == std::vector<std::string>{"l1"});
  CHECK(rig.api.heartbeats[0].cpu_percent == 12.5);
  CHECK(rig.api.heartbeats[0].tree_timestamp == "Mon, 01 Jan 2024 00:00:00 +0000");
  CHECK(rig.api.calls_except_logs().empty()); // no report, no return
  CHECK(rig.agent->spool().scan().empty());
  CHECK(rig.agent->active_leases().empty());
}

TEST_CASE("agent: drain=return kills running builds and hands their leases back")
{
  Rig rig;
  rig.emerge.mode = FakeEmerge::Mode::block;
  std::thread worker([&] { rig.agent->work_lease(lease("l1", "dev-libs/foo-1.0")); });
  rig.emerge.wait_started();
  rig.agent->request_stop(DrainMode::return_leases);
  worker.join();
  CHECK(rig.api.calls_except_logs() == std::vector<std::string>{"return l1"});
  CHECK(rig.agent->spool().scan().empty());
}

TEST_CASE("agent: a heartbeat answered 401 or 403 makes the drone exit 1")
{
  Rig rig;
  rig.api.script["heartbeat"] = {http_answer(200), http_answer(403)};
  CHECK(rig.agent->heartbeat_once());
  CHECK(rig.agent->exit_code() == 0);
  CHECK_FALSE(rig.agent->heartbeat_once());
  CHECK(rig.agent->exit_code() == 1);
}

TEST_CASE("agent: a whole run registers after the orchestrator comes up, builds, and stops on request")
{
  Rig rig;
  rig.api.script["register"] = {unreachable(), unreachable(),
                                http_answer(200, {{"drone", "d1"},
                                                  {"heartbeat_interval", 0.05},
                                                  {"lease_ttl", 30},
                                                  {"claim_wait", 20},
                                                  {"staging_url", "http://127.0.0.1:9/staging/o1"},
                                                  {"leases", json::array()}})};
  std::mutex mutex;
  int claims = 0;
  rig.api.claim_answer = [&]() -> Result<Answer> {
    std::lock_guard lock(mutex);
    if (++claims == 1) {
      return http_answer(200, {{"lease", {{"id", "l1"}, {"cpv", "dev-libs/foo-1.0"}, {"deps", json::array()}}}});
    }
    return http_answer(200, {{"lease", nullptr}, {"reason", "no package ready"}});
  };
  int code = -1;
  std::thread runner([&] { code = rig.agent->run(); });
  REQUIRE(rig.api.wait_for(
    [&] { return std::find(rig.api.calls.begin(), rig.api.calls.end(), "report l1 success") != rig.api.calls.end(); }));
  rig.agent->request_stop(DrainMode::finish);
  runner.join();
  CHECK(code == 0);
  CHECK_FALSE(rig.agent->left_threads_behind());
  const auto pauses = rig.recorded_pauses();
  REQUIRE(pauses.size() >= 2);
  CHECK(pauses[0] == 1s); // registration backoff
  CHECK(pauses[1] == 2s);
  // The staging repository went into the lease's own configuration root, never the drone's.
  REQUIRE(rig.emerge.binrepos.size() == 1);
  CHECK(rig.emerge.binrepos[0].find("drone:tok@127.0.0.1:9/staging/o1") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(rig.dir / "root/etc/portage/binrepos.conf"));
  CHECK(rig.agent->spool().scan().empty());
}

TEST_CASE("agent: drain modes and the tree timestamp")
{
  CHECK(drain_mode_from_name("finish") == DrainMode::finish);
  CHECK(drain_mode_from_name("return") == DrainMode::return_leases);
  CHECK_FALSE(drain_mode_from_name("kill").has_value());
  CHECK(disk_refusal(10, 10) == std::nullopt);
  CHECK(disk_refusal(9, 10).has_value());

  fs::TempDir repo("repo");
  CHECK(read_tree_timestamp(repo.path(), "") == "");
  REQUIRE(fs::make_dirs(repo / "metadata").has_value());
  REQUIRE(fs::write_file_atomic(repo / "metadata/timestamp.chk", "Sun, 01 Mar 2026 00:45:01 +0000\n").has_value());
  CHECK(read_tree_timestamp(repo.path(), "") == "Sun, 01 Mar 2026 00:45:01 +0000");
  CHECK(read_tree_timestamp(repo.path(), "override") == "override");
}
