#pragma once
// The orchestrator's durable state in SQLite (WAL). Every state transition is one
// transaction: callers wrap the writes of one transition in transaction(). With WAL and
// synchronous=NORMAL a committed transaction survives kill -9 of the process (only a power
// loss can take the last commits; `orch` documents this).

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <SQLiteCpp/SQLiteCpp.h>

#include "core/error.hpp"
#include "roles/orch/model.hpp"

namespace swarm::roles::orch {

class Store {
public:
  // Opens (creating if needed) the database at `path` and brings its schema up to date.
  static Result<std::unique_ptr<Store>> open(const std::string& path);

  // Runs `body` in one transaction (BEGIN IMMEDIATE: it waits for the write lock up to the busy
  // timeout). Anything `body` throws rolls the whole transaction back and becomes an Error.
  Result<> transaction(const std::function<void()>& body);

  // Test seam: called with the operation's name before every write; a hook that throws makes
  // that write fail (and so its transaction roll back), as a full disk or a lock timeout would.
  void set_write_hook(std::function<void(std::string_view operation)> hook) { m_write_hook = std::move(hook); }

  std::optional<std::string> get_meta(const std::string& key);
  void set_meta(const std::string& key, const std::string& value);

  // The plan of each swarm profile.
  std::vector<PlanInfo> load_plans();
  void save_plan(const PlanInfo& info);
  void delete_plan(const std::string& profile);

  // Captured build profiles, content-addressed (the hash is their key).
  void save_build_profile(const std::string& hash, const std::string& content);
  std::optional<std::string> load_build_profile(const std::string& hash);

  std::vector<PackageRow> load_packages();
  void save_package(PackageRow& row); // inserts when row.id == 0 (and sets it), else updates
  void delete_package(int64_t id);

  std::vector<EdgeRow> load_edges();
  // Replaces the edges of `packages` (one profile's) with `edges`.
  void replace_edges(const std::vector<int64_t>& packages, const std::vector<EdgeRow>& edges);

  std::vector<DroneRow> load_drones();
  std::optional<DroneRow> load_drone(const std::string& name);
  // Inserts when row.id == 0 (with its token hash); an update never touches the token hash, so a
  // daemon saving a drone it loaded before a `swarm drone enroll` cannot undo the new token.
  void save_drone(DroneRow& row);
  void set_drone_token(int64_t id, const std::string& token_hash, double revoked_at = 0);
  // Tokens that are not a drone's (read-only ones), by name; saving a name replaces its token.
  std::vector<TokenRow> load_tokens();
  void save_token(const TokenRow& row);
  bool delete_token(const std::string& name);

  // Leases that may still matter: active, uploaded or expired (a late result may arrive).
  std::vector<LeaseRow> load_open_leases();
  void save_lease(const LeaseRow& row); // insert or replace
  std::optional<LeaseRow> get_lease(const std::string& id);

  void save_build(BuildRow& row);
  void finish_build(int64_t id, double ended, const std::string& result, double duration, const std::string& reason,
                    const std::string& log_tail);
  // (package id, duration) of every successful build, oldest first: the history of durations.
  std::vector<std::pair<int64_t, double>> load_success_durations();
  std::vector<BuildRow> list_builds(int64_t package, int64_t drone, size_t limit);
  std::optional<BuildRow> get_build(int64_t id);

  int64_t add_event(EventRow& row);
  std::vector<EventRow> list_events(int64_t since, size_t limit);
  int64_t last_event_id();

private:
  explicit Store(const std::string& path);
  SQLite::Statement& statement(const char* sql);
  void migrate();
  void migrate_from_1();
  void before_write(std::string_view operation) const;

  SQLite::Database m_db;
  std::unordered_map<const char*, std::unique_ptr<SQLite::Statement>> m_statements;
  std::function<void(std::string_view)> m_write_hook;
};

} // namespace swarm::roles::orch
