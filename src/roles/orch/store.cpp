#include "roles/orch/store.hpp"

#include <nlohmann/json.hpp>

#include "core/log.hpp"

namespace swarm::roles::orch {

namespace {

constexpr int k_schema_version = 2;

constexpr const char* k_schema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS packages (
  id INTEGER PRIMARY KEY,
  profile TEXT NOT NULL DEFAULT 'default',
  cpv TEXT NOT NULL,
  slot TEXT NOT NULL, repo TEXT NOT NULL, use TEXT NOT NULL,
  plan_seconds REAL NOT NULL, plan_position INTEGER NOT NULL, in_plan INTEGER NOT NULL, state TEXT NOT NULL,
  failures INTEGER NOT NULL, failed_on TEXT NOT NULL, last_failure TEXT NOT NULL,
  retry_at REAL NOT NULL, retries INTEGER NOT NULL,
  artifact_path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, build_id INTEGER NOT NULL,
  received_at REAL NOT NULL, built_by TEXT NOT NULL, built_tree_timestamp TEXT NOT NULL,
  index_entry TEXT NOT NULL, released_in INTEGER NOT NULL,
  UNIQUE (profile, cpv));
CREATE TABLE IF NOT EXISTS plans (
  profile TEXT PRIMARY KEY, source TEXT NOT NULL, tree_timestamp TEXT NOT NULL, portage_profile TEXT NOT NULL,
  merge_order INTEGER NOT NULL, submitted_at REAL NOT NULL, build_profile TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS build_profiles (hash TEXT PRIMARY KEY, content TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS edges (
  package INTEGER NOT NULL, needs INTEGER NOT NULL, kind TEXT NOT NULL,
  PRIMARY KEY (package, needs, kind));
CREATE TABLE IF NOT EXISTS drones (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, token_hash TEXT NOT NULL UNIQUE,
  enrolled_at REAL NOT NULL, cores INTEGER NOT NULL, slots INTEGER NOT NULL,
  ram_bytes INTEGER NOT NULL, disk_free_bytes INTEGER NOT NULL, tree_timestamp TEXT NOT NULL,
  version TEXT NOT NULL, last_seen REAL NOT NULL, online INTEGER NOT NULL,
  consecutive_failures INTEGER NOT NULL, grounded_until REAL NOT NULL, probation INTEGER NOT NULL,
  cpu_percent REAL NOT NULL, mem_percent REAL NOT NULL, load1 REAL NOT NULL,
  profiles TEXT NOT NULL DEFAULT '[]', build_root TEXT NOT NULL DEFAULT '', chost TEXT NOT NULL DEFAULT '',
  revoked_at REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS tokens (
  name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS leases (
  id TEXT PRIMARY KEY, package INTEGER NOT NULL, drone INTEGER NOT NULL,
  created REAL NOT NULL, expires REAL NOT NULL, state TEXT NOT NULL, build INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS leases_state ON leases (state);
CREATE TABLE IF NOT EXISTS builds (
  id INTEGER PRIMARY KEY, package INTEGER NOT NULL, drone INTEGER NOT NULL, lease TEXT NOT NULL,
  started REAL NOT NULL, ended REAL NOT NULL, result TEXT NOT NULL, duration REAL NOT NULL,
  reason TEXT NOT NULL, log_tail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS builds_package ON builds (package);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY, time REAL NOT NULL, kind TEXT NOT NULL, drone TEXT NOT NULL,
  package TEXT NOT NULL, detail TEXT NOT NULL);
)sql";

std::string to_json_text(const std::vector<std::string>& items)
{
  return nlohmann::json(items).dump();
}

std::string to_json_text(const std::set<std::string>& items)
{
  return nlohmann::json(items).dump();
}

template <class Container>
Container from_json_text(const std::string& text)
{
  Container out;
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  if (parsed.is_array()) {
    for (const auto& item : parsed) {
      if (item.is_string()) {
        out.insert(out.end(), item.get<std::string>());
      }
    }
  }
  return out;
}

} // namespace

Store::Store(const std::string& path) : m_db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE)
{
  m_db.setBusyTimeout(5000);
  m_db.exec("PRAGMA journal_mode=WAL");
  // NORMAL in WAL mode: a commit is durable against a process crash (kill -9); fsync happens
  // at checkpoints. That is the failure this system must survive at hundreds of commits/s.
  m_db.exec("PRAGMA synchronous=NORMAL");
  m_db.exec("PRAGMA foreign_keys=OFF");
}

Result<std::unique_ptr<Store>> Store::open(const std::string& path)
{
  try {
    std::unique_ptr<Store> store(new Store(path));
    store->migrate();
    return store;
  } catch (const std::exception& e) {
    return fail(ErrorKind::io, "cannot open state database {}: {}", path, e.what());
  }
}

void Store::migrate()
{
  SQLite::Transaction transaction(m_db, SQLite::TransactionBehavior::IMMEDIATE);
  const bool existing = m_db.tableExists("meta");
  const auto version = existing ? get_meta("schema_version") : std::nullopt;
  if (version && std::stoi(*version) > k_schema_version) {
    throw std::runtime_error("the state database was written by a newer swarm (schema " + *version + ")");
  }
  if (version && std::stoi(*version) == 1) {
    migrate_from_1();
  }
  m_db.exec(k_schema);
  // Added to schema 2 later: a database from before gets the column.
  bool has_revoked_at = false;
  {
    SQLite::Statement columns(m_db, "PRAGMA table_info(drones)");
    while (columns.executeStep()) {
      has_revoked_at = has_revoked_at || columns.getColumn(1).getString() == "revoked_at";
    }
  }
  if (!has_revoked_at) {
    m_db.exec("ALTER TABLE drones ADD COLUMN revoked_at REAL NOT NULL DEFAULT 0");
  }
  set_meta("schema_version", std::to_string(k_schema_version));
  transaction.commit();
}

// Schema 1 had one plan: packages unique by cpv, the plan in meta. Schema 2 has a plan per
// profile; what there was becomes the `default` profile's.
void Store::migrate_from_1()
{
  m_db.exec("ALTER TABLE packages RENAME TO packages_1");
  m_db.exec(k_schema);
  m_db.exec("INSERT INTO packages SELECT id, 'default', cpv, slot, repo, use, plan_seconds, plan_position, in_plan, "
            "state, failures, failed_on, last_failure, retry_at, retries, artifact_path, sha256, size, build_id, "
            "received_at, built_by, built_tree_timestamp, index_entry, released_in FROM packages_1");
  m_db.exec("DROP TABLE packages_1");
  for (const char* column : {"profiles TEXT NOT NULL DEFAULT '[]'", "build_root TEXT NOT NULL DEFAULT ''",
                             "chost TEXT NOT NULL DEFAULT ''"}) {
    m_db.exec(std::string("ALTER TABLE drones ADD COLUMN ") + column);
  }
  if (auto source = get_meta("plan.source")) {
    PlanInfo info;
    info.profile = "default";
    info.source = *source;
    info.tree_timestamp = get_meta("plan.tree_timestamp").value_or("");
    info.portage_profile = get_meta("plan.profile").value_or("");
    info.merge_order = get_meta("plan.merge_order").value_or("0") == "1";
    info.submitted_at = std::stod(get_meta("plan.submitted_at").value_or("0"));
    save_plan(info);
  }
  m_db.exec("DELETE FROM meta WHERE key LIKE 'plan.%'");
}

// A cached statement left mid-step keeps a read transaction open on the connection: the
// orchestrator would go on reading an old snapshot (missing drones enrolled by `swarm drone
// enroll` meanwhile) and its next write would fail with SQLITE_BUSY. Every use resets it.
namespace {
struct ResetOnExit {
  SQLite::Statement& statement;
  explicit ResetOnExit(SQLite::Statement& used) : statement(used) {}
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;
  ~ResetOnExit()
  {
    try {
      statement.reset();
    } catch (...) {
    }
  }
};
} // namespace

SQLite::Statement& Store::statement(const char* sql)
{
  auto& slot = m_statements[sql];
  if (!slot) {
    slot = std::make_unique<SQLite::Statement>(m_db, sql);
  } else {
    slot->reset();
    slot->clearBindings();
  }
  return *slot;
}

Result<> Store::transaction(const std::function<void()>& body)
{
  try {
    SQLite::Transaction transaction(m_db, SQLite::TransactionBehavior::IMMEDIATE);
    body();
    transaction.commit();
    return {};
  } catch (const std::exception& e) {
    // Statements may be mid-step; reset them so the next use starts clean.
    for (auto& [sql, statement] : m_statements) {
      try {
        statement->reset();
      } catch (...) {
      }
    }
    LOG_ERROR("state database: {}", e.what());
    return fail(ErrorKind::io, "state database: {}", e.what());
  }
}

void Store::before_write(std::string_view operation) const
{
  if (m_write_hook) {
    m_write_hook(operation);
  }
}

std::optional<std::string> Store::get_meta(const std::string& key)
{
  auto& q = statement("SELECT value FROM meta WHERE key = ?");
  const ResetOnExit reset_q{q};
  q.bind(1, key);
  if (q.executeStep()) {
    return q.getColumn(0).getString();
  }
  return std::nullopt;
}

void Store::set_meta(const std::string& key, const std::string& value)
{
  before_write("set_meta");
  auto& q =
    statement("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  const ResetOnExit reset_q{q};
  q.bind(1, key);
  q.bind(2, value);
  q.exec();
}

std::vector<PlanInfo> Store::load_plans()
{
  std::vector<PlanInfo> out;
  auto& q = statement("SELECT profile, source, tree_timestamp, portage_profile, merge_order, submitted_at, "
                      "build_profile FROM plans ORDER BY profile");
  const ResetOnExit reset_q{q};
  while (q.executeStep()) {
    PlanInfo info;
    int c = 0;
    info.profile = q.getColumn(c++).getString();
    info.source = q.getColumn(c++).getString();
    info.tree_timestamp = q.getColumn(c++).getString();
    info.portage_profile = q.getColumn(c++).getString();
    info.merge_order = q.getColumn(c++).getInt() != 0;
    info.submitted_at = q.getColumn(c++).getDouble();
    info.build_profile = q.getColumn(c++).getString();
    out.push_back(std::move(info));
  }
  return out;
}

void Store::save_plan(const PlanInfo& info)
{
  before_write("save_plan");
  auto& q = statement("INSERT INTO plans (profile, source, tree_timestamp, portage_profile, merge_order, "
                      "submitted_at, build_profile) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(profile) DO UPDATE SET "
                      "source = excluded.source, tree_timestamp = excluded.tree_timestamp, "
                      "portage_profile = excluded.portage_profile, merge_order = excluded.merge_order, "
                      "submitted_at = excluded.submitted_at, build_profile = excluded.build_profile");
  const ResetOnExit reset_q{q};
  q.bind(1, info.profile);
  q.bind(2, info.source);
  q.bind(3, info.tree_timestamp);
  q.bind(4, info.portage_profile);
  q.bind(5, info.merge_order ? 1 : 0);
  q.bind(6, info.submitted_at);
  q.bind(7, info.build_profile);
  q.exec();
}

void Store::delete_plan(const std::string& profile)
{
  before_write("delete_plan");
  auto& q = statement("DELETE FROM plans WHERE profile = ?");
  const ResetOnExit reset_q{q};
  q.bind(1, profile);
  q.exec();
}

void Store::save_build_profile(const std::string& hash, const std::string& content)
{
  before_write("save_build_profile");
  auto& q = statement("INSERT OR IGNORE INTO build_profiles (hash, content) VALUES (?, ?)");
  const ResetOnExit reset_q{q};
  q.bind(1, hash);
  q.bind(2, content);
  q.exec();
}

std::optional<std::string> Store::load_build_profile(const std::string& hash)
{
  auto& q = statement("SELECT content FROM build_profiles WHERE hash = ?");
  const ResetOnExit reset_q{q};
  q.bind(1, hash);
  if (!q.executeStep()) {
    return std::nullopt;
  }
  return q.getColumn(0).getString();
}

std::vector<PackageRow> Store::load_packages()
{
  std::vector<PackageRow> out;
  auto& q = statement(
    "SELECT id, profile, cpv, slot, repo, use, plan_seconds, plan_position, in_plan, state, failures, failed_on, "
    "last_failure, retry_at, retries, artifact_path, sha256, size, build_id, received_at, built_by, "
    "built_tree_timestamp, index_entry, released_in FROM packages ORDER BY id");
  const ResetOnExit reset_q{q};
  while (q.executeStep()) {
    PackageRow row;
    int c = 0;
    row.id = q.getColumn(c++).getInt64();
    row.profile = q.getColumn(c++).getString();
    row.cpv = q.getColumn(c++).getString();
    row.slot = q.getColumn(c++).getString();
    row.repo = q.getColumn(c++).getString();
    row.use = from_json_text<std::vector<std::string>>(q.getColumn(c++).getString());
    row.plan_seconds = q.getColumn(c++).getDouble();
    row.plan_position = q.getColumn(c++).getInt64();
    row.in_plan = q.getColumn(c++).getInt() != 0;
    row.state = parse_pkg_state(q.getColumn(c++).getString()).value_or(PkgState::needed);
    row.failures = q.getColumn(c++).getInt();
    row.failed_on = from_json_text<std::set<std::string>>(q.getColumn(c++).getString());
    row.last_failure = q.getColumn(c++).getString();
    row.retry_at = q.getColumn(c++).getDouble();
    row.retries = q.getColumn(c++).getInt();
    row.artifact_path = q.getColumn(c++).getString();
    row.sha256 = q.getColumn(c++).getString();
    row.size = static_cast<uint64_t>(q.getColumn(c++).getInt64());
    row.build_id = q.getColumn(c++).getInt64();
    row.received_at = q.getColumn(c++).getDouble();
    row.built_by = q.getColumn(c++).getString();
    row.built_tree_timestamp = q.getColumn(c++).getString();
    row.index_entry = q.getColumn(c++).getString();
    row.released_in = q.getColumn(c++).getInt64();
    out.push_back(std::move(row));
  }
  return out;
}

void Store::save_package(PackageRow& row)
{
  before_write("save_package");
  const bool insert = row.id == 0;
  auto& q =
    insert
      ? statement("INSERT INTO packages (profile, cpv, slot, repo, use, plan_seconds, plan_position, in_plan, state, "
                  "failures, failed_on, last_failure, retry_at, retries, artifact_path, sha256, size, build_id, "
                  "received_at, built_by, built_tree_timestamp, index_entry, released_in) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
      : statement("UPDATE packages SET profile = ?, cpv = ?, slot = ?, repo = ?, use = ?, plan_seconds = ?, "
                  "plan_position = ?, in_plan = ?, "
                  "state = ?, failures = ?, failed_on = ?, last_failure = ?, retry_at = ?, retries = ?, "
                  "artifact_path = ?, sha256 = ?, size = ?, build_id = ?, received_at = ?, built_by = ?, "
                  "built_tree_timestamp = ?, index_entry = ?, released_in = ? WHERE id = ?");
  int c = 1;
  q.bind(c++, row.profile);
  q.bind(c++, row.cpv);
  q.bind(c++, row.slot);
  q.bind(c++, row.repo);
  q.bind(c++, to_json_text(row.use));
  q.bind(c++, row.plan_seconds);
  q.bind(c++, row.plan_position);
  q.bind(c++, row.in_plan ? 1 : 0);
  q.bind(c++, std::string(to_string(row.state)));
  q.bind(c++, row.failures);
  q.bind(c++, to_json_text(row.failed_on));
  q.bind(c++, row.last_failure);
  q.bind(c++, row.retry_at);
  q.bind(c++, row.retries);
  q.bind(c++, row.artifact_path);
  q.bind(c++, row.sha256);
  q.bind(c++, static_cast<int64_t>(row.size));
  q.bind(c++, row.build_id);
  q.bind(c++, row.received_at);
  q.bind(c++, row.built_by);
  q.bind(c++, row.built_tree_timestamp);
  q.bind(c++, row.index_entry);
  q.bind(c++, row.released_in);
  if (!insert) {
    q.bind(c++, row.id);
  }
  q.exec();
  if (insert) {
    row.id = m_db.getLastInsertRowid();
  }
}

void Store::delete_package(int64_t id)
{
  before_write("delete_package");
  auto& q = statement("DELETE FROM packages WHERE id = ?");
  const ResetOnExit reset_q{q};
  q.bind(1, id);
  q.exec();
}

std::vector<EdgeRow> Store::load_edges()
{
  std::vector<EdgeRow> out;
  auto& q = statement("SELECT package, needs, kind FROM edges ORDER BY package, needs, kind");
  const ResetOnExit reset_q{q};
  while (q.executeStep()) {
    out.push_back({q.getColumn(0).getInt64(), q.getColumn(1).getInt64(), q.getColumn(2).getString()});
  }
  return out;
}

void Store::replace_edges(const std::vector<int64_t>& packages, const std::vector<EdgeRow>& edges)
{
  before_write("replace_edges");
  for (const auto package : packages) {
    auto& q = statement("DELETE FROM edges WHERE package = ?");
    const ResetOnExit reset_q{q};
    q.bind(1, package);
    q.exec();
  }
  for (const auto& edge : edges) {
    auto& q = statement("INSERT OR IGNORE INTO edges (package, needs, kind) VALUES (?, ?, ?)");
    const ResetOnExit reset_q{q};
    q.bind(1, edge.package);
    q.bind(2, edge.needs);
    q.bind(3, edge.kind);
    q.exec();
  }
}

namespace {

constexpr const char* k_drone_columns =
  "SELECT id, name, token_hash, enrolled_at, cores, slots, ram_bytes, disk_free_bytes, tree_timestamp, version, "
  "last_seen, online, consecutive_failures, grounded_until, probation, cpu_percent, mem_percent, load1, profiles, "
  "build_root, chost, revoked_at FROM drones ";

DroneRow drone_from(SQLite::Statement& q)
{
  DroneRow row;
  int c = 0;
  row.id = q.getColumn(c++).getInt64();
  row.name = q.getColumn(c++).getString();
  row.token_hash = q.getColumn(c++).getString();
  row.enrolled_at = q.getColumn(c++).getDouble();
  row.cores = q.getColumn(c++).getInt();
  row.slots = q.getColumn(c++).getInt();
  row.ram_bytes = static_cast<uint64_t>(q.getColumn(c++).getInt64());
  row.disk_free_bytes = static_cast<uint64_t>(q.getColumn(c++).getInt64());
  row.tree_timestamp = q.getColumn(c++).getString();
  row.version = q.getColumn(c++).getString();
  row.last_seen = q.getColumn(c++).getDouble();
  row.online = q.getColumn(c++).getInt() != 0;
  row.consecutive_failures = q.getColumn(c++).getInt();
  row.grounded_until = q.getColumn(c++).getDouble();
  row.probation = q.getColumn(c++).getInt() != 0;
  row.cpu_percent = q.getColumn(c++).getDouble();
  row.mem_percent = q.getColumn(c++).getDouble();
  row.load1 = q.getColumn(c++).getDouble();
  row.profiles = from_json_text<std::vector<std::string>>(q.getColumn(c++).getString());
  row.build_root = q.getColumn(c++).getString();
  row.chost = q.getColumn(c++).getString();
  row.revoked_at = q.getColumn(c++).getDouble();
  return row;
}

} // namespace

std::vector<DroneRow> Store::load_drones()
{
  static const std::string sql = std::string(k_drone_columns) + "ORDER BY name";
  std::vector<DroneRow> out;
  auto& q = statement(sql.c_str());
  const ResetOnExit reset_q{q};
  while (q.executeStep()) {
    out.push_back(drone_from(q));
  }
  return out;
}

std::optional<DroneRow> Store::load_drone(const std::string& name)
{
  static const std::string sql = std::string(k_drone_columns) + "WHERE name = ?";
  auto& q = statement(sql.c_str());
  const ResetOnExit reset_q{q};
  q.bind(1, name);
  if (!q.executeStep()) {
    return std::nullopt;
  }
  return drone_from(q);
}

void Store::set_drone_token(int64_t id, const std::string& token_hash, double revoked_at)
{
  before_write("set_drone_token");
  auto& q = statement("UPDATE drones SET token_hash = ?, revoked_at = ? WHERE id = ?");
  const ResetOnExit reset_q{q};
  q.bind(1, token_hash);
  q.bind(2, revoked_at);
  q.bind(3, id);
  q.exec();
}

std::vector<TokenRow> Store::load_tokens()
{
  std::vector<TokenRow> out;
  auto& q = statement("SELECT name, token_hash, role, created_at FROM tokens ORDER BY name");
  const ResetOnExit reset_q{q};
  while (q.executeStep()) {
    out.push_back(TokenRow{q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getString(),
                           q.getColumn(3).getDouble()});
  }
  return out;
}

void Store::save_token(const TokenRow& row)
{
  before_write("save_token");
  auto& q = statement("INSERT OR REPLACE INTO tokens (name, token_hash, role, created_at) VALUES (?, ?, ?, ?)");
  const ResetOnExit reset_q{q};
  q.bind(1, row.name);
  q.bind(2, row.token_hash);
  q.bind(3, row.role);
  q.bind(4, row.created_at);
  q.exec();
}

bool Store::delete_token(const std::string& name)
{
  before_write("delete_token");
  auto& q = statement("DELETE FROM tokens WHERE name = ?");
  const ResetOnExit reset_q{q};
  q.bind(1, name);
  return q.exec() > 0;
}

void Store::save_drone(DroneRow& row)
{
  before_write("save_drone");
  const bool insert = row.id == 0;
  auto& q =
    insert ? statement("INSERT INTO drones (name, token_hash, enrolled_at, cores, slots, ram_bytes, disk_free_bytes, "
                       "tree_timestamp, version, last_seen, online, consecutive_failures, grounded_until, probation, "
                       "cpu_percent, mem_percent, load1, profiles, build_root, chost) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
           : statement("UPDATE drones SET name = ?, enrolled_at = ?, cores = ?, slots = ?, "
                       "ram_bytes = ?, disk_free_bytes = ?, tree_timestamp = ?, version = ?, last_seen = ?, "
                       "online = ?, consecutive_failures = ?, grounded_until = ?, probation = ?, cpu_percent = ?, "
                       "mem_percent = ?, load1 = ?, profiles = ?, build_root = ?, chost = ? WHERE id = ?");
  int c = 1;
  q.bind(c++, row.name);
  if (insert) {
    q.bind(c++, row.token_hash);
  }
  q.bind(c++, row.enrolled_at);
  q.bind(c++, row.cores);
  q.bind(c++, row.slots);
  q.bind(c++, static_cast<int64_t>(row.ram_bytes));
  q.bind(c++, static_cast<int64_t>(row.disk_free_bytes));
  q.bind(c++, row.tree_timestamp);
  q.bind(c++, row.version);
  q.bind(c++, row.last_seen);
  q.bind(c++, row.online ? 1 : 0);
  q.bind(c++, row.consecutive_failures);
  q.bind(c++, row.grounded_until);
  q.bind(c++, row.probation ? 1 : 0);
  q.bind(c++, row.cpu_percent);
  q.bind(c++, row.mem_percent);
  q.bind(c++, row.load1);
  q.bind(c++, to_json_text(row.profiles));
  q.bind(c++, row.build_root);
  q.bind(c++, row.chost);
  if (!insert) {
    q.bind(c++, row.id);
  }
  q.exec();
  if (insert) {
    row.id = m_db.getLastInsertRowid();
  }
}

std::vector<LeaseRow> Store::load_open_leases()
{
  std::vector<LeaseRow> out;
  auto& q = statement("SELECT id, package, drone, created, expires, state, build FROM leases "
                      "WHERE state IN ('active', 'uploaded', 'expired') ORDER BY created");
  const ResetOnExit reset_q{q};
  while (q.executeStep()) {
    LeaseRow row;
    row.id = q.getColumn(0).getString();
    row.package = q.getColumn(1).getInt64();
    row.drone = q.getColumn(2).getInt64();
    row.created = q.getColumn(3).getDouble();
    row.expires = q.getColumn(4).getDouble();
    row.state = parse_lease_state(q.getColumn(5).getString()).value_or(LeaseState::expired);
    row.build = q.getColumn(6).getInt64();
    out.push_back(std::move(row));
  }
  return out;
}

void Store::save_lease(const LeaseRow& row)
{
  before_write("save_lease");
  auto& q =
    statement("INSERT INTO leases (id, package, drone, created, expires, state, build) VALUES (?, ?, ?, ?, ?, ?, ?) "
              "ON CONFLICT(id) DO UPDATE SET expires = excluded.expires, state = excluded.state, "
              "build = excluded.build");
  const ResetOnExit reset_q{q};
  q.bind(1, row.id);
  q.bind(2, row.package);
  q.bind(3, row.drone);
  q.bind(4, row.created);
  q.bind(5, row.expires);
  q.bind(6, std::string(to_string(row.state)));
  q.bind(7, row.build);
  q.exec();
}

std::optional<LeaseRow> Store::get_lease(const std::string& id)
{
  auto& q = statement("SELECT id, package, drone, created, expires, state, build FROM leases WHERE id = ?");
  const ResetOnExit reset_q{q};
  q.bind(1, id);
  if (!q.executeStep()) {
    return std::nullopt;
  }
  LeaseRow row;
  row.id = q.getColumn(0).getString();
  row.package = q.getColumn(1).getInt64();
  row.drone = q.getColumn(2).getInt64();
  row.created = q.getColumn(3).getDouble();
  row.expires = q.getColumn(4).getDouble();
  row.state = parse_lease_state(q.getColumn(5).getString()).value_or(LeaseState::expired);
  row.build = q.getColumn(6).getInt64();
  return row;
}

void Store::save_build(BuildRow& row)
{
  before_write("save_build");
  const bool insert = row.id == 0;
  auto& q = insert ? statement("INSERT INTO builds (package, drone, lease, started, ended, result, duration, reason, "
                               "log_tail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
                   : statement("UPDATE builds SET package = ?, drone = ?, lease = ?, started = ?, ended = ?, "
                               "result = ?, duration = ?, reason = ?, log_tail = ? WHERE id = ?");
  int c = 1;
  q.bind(c++, row.package);
  q.bind(c++, row.drone);
  q.bind(c++, row.lease);
  q.bind(c++, row.started);
  q.bind(c++, row.ended);
  q.bind(c++, row.result);
  q.bind(c++, row.duration);
  q.bind(c++, row.reason);
  q.bind(c++, row.log_tail);
  if (!insert) {
    q.bind(c++, row.id);
  }
  q.exec();
  if (insert) {
    row.id = m_db.getLastInsertRowid();
  }
}

void Store::finish_build(int64_t id, double ended, const std::string& result, double duration,
                         const std::string& reason, const std::string& log_tail)
{
  before_write("finish_build");
  auto& q = statement("UPDATE builds SET ended = ?, result = ?, duration = ?, reason = ?, log_tail = ? WHERE id = ?");
  const ResetOnExit reset_q{q};
  q.bind(1, ended);
  q.bind(2, result);
  q.bind(3, duration);
  q.bind(4, reason);
  q.bind(5, log_tail);
  q.bind(6, id);
  q.exec();
}

std::vector<std::pair<int64_t, double>> Store::load_success_durations()
{
  std::vector<std::pair<int64_t, double>> out;
  auto& q = statement("SELECT package, duration FROM builds WHERE result = 'success' AND duration > 0 ORDER BY id");
  const ResetOnExit reset_q{q};
  while (q.executeStep()) {
    out.emplace_back(q.getColumn(0).getInt64(), q.getColumn(1).getDouble());
  }
  return out;
}

namespace {

BuildRow read_build_row(SQLite::Statement& q)
{
  BuildRow row;
  int c = 0;
  row.id = q.getColumn(c++).getInt64();
  row.package = q.getColumn(c++).getInt64();
  row.drone = q.getColumn(c++).getInt64();
  row.lease = q.getColumn(c++).getString();
  row.started = q.getColumn(c++).getDouble();
  row.ended = q.getColumn(c++).getDouble();
  row.result = q.getColumn(c++).getString();
  row.duration = q.getColumn(c++).getDouble();
  row.reason = q.getColumn(c++).getString();
  row.log_tail = q.getColumn(c++).getString();
  return row;
}

} // namespace

std::optional<BuildRow> Store::get_build(int64_t id)
{
  auto& q = statement(
    "SELECT id, package, drone, lease, started, ended, result, duration, reason, log_tail FROM builds WHERE id = ?1");
  const ResetOnExit reset_q{q};
  q.bind(1, id);
  if (q.executeStep()) {
    return read_build_row(q);
  }
  return std::nullopt;
}

std::vector<BuildRow> Store::list_builds(int64_t package, int64_t drone, size_t limit)
{
  std::vector<BuildRow> out;
  auto& q =
    statement("SELECT id, package, drone, lease, started, ended, result, duration, reason, log_tail FROM builds "
              "WHERE (?1 = 0 OR package = ?1) AND (?2 = 0 OR drone = ?2) ORDER BY id DESC LIMIT ?3");
  const ResetOnExit reset_q{q};
  q.bind(1, package);
  q.bind(2, drone);
  q.bind(3, static_cast<int64_t>(limit));
  while (q.executeStep()) {
    out.push_back(read_build_row(q));
  }
  return out;
}

int64_t Store::add_event(EventRow& row)
{
  before_write("add_event");
  auto& q = statement("INSERT INTO events (time, kind, drone, package, detail) VALUES (?, ?, ?, ?, ?)");
  const ResetOnExit reset_q{q};
  q.bind(1, row.time);
  q.bind(2, row.kind);
  q.bind(3, row.drone);
  q.bind(4, row.package);
  q.bind(5, row.detail);
  q.exec();
  row.id = m_db.getLastInsertRowid();
  return row.id;
}

std::vector<EventRow> Store::list_events(int64_t since, size_t limit)
{
  std::vector<EventRow> out;
  auto& q = statement("SELECT id, time, kind, drone, package, detail FROM events WHERE id > ? ORDER BY id LIMIT ?");
  const ResetOnExit reset_q{q};
  q.bind(1, since);
  q.bind(2, static_cast<int64_t>(limit));
  while (q.executeStep()) {
    out.push_back({q.getColumn(0).getInt64(), q.getColumn(1).getDouble(), q.getColumn(2).getString(),
                   q.getColumn(3).getString(), q.getColumn(4).getString(), q.getColumn(5).getString()});
  }
  return out;
}

int64_t Store::last_event_id()
{
  auto& q = statement("SELECT COALESCE(MAX(id), 0) FROM events");
  const ResetOnExit reset_q{q};
  q.executeStep();
  return q.getColumn(0).getInt64();
}

} // namespace swarm::roles::orch
