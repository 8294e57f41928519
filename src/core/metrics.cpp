#include "core/metrics.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/error.hpp"

namespace swarm::metrics {

namespace {

bool valid_metric_name(std::string_view name)
{
  if (name.empty()) {
    return false;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) {
      return false;
    }
  }
  return true;
}

std::string escape_help(std::string_view text)
{
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// `{a="x",b="y"}` (with an extra label when `extra_name` is set), or "" without labels.
std::string label_text(const std::vector<std::string>& names, const LabelValues& values,
                       std::string_view extra_name = {}, std::string_view extra_value = {})
{
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    out += out.empty() ? "{" : ",";
    out += fmt::format("{}=\"{}\"", names[i], escape_label_value(i < values.size() ? values[i] : std::string()));
  }
  if (!extra_name.empty()) {
    out += out.empty() ? "{" : ",";
    out += fmt::format("{}=\"{}\"", extra_name, extra_value);
  }
  if (!out.empty()) {
    out += "}";
  }
  return out;
}

std::string_view metric_type_name(Type type)
{
  switch (type) {
  case Type::counter:
    return "counter";
  case Type::gauge:
    return "gauge";
  case Type::histogram:
    return "histogram";
  }
  return "untyped";
}

} // namespace

std::string format_value(double value)
{
  if (std::isnan(value)) {
    return "NaN";
  }
  if (std::isinf(value)) {
    return value > 0 ? "+Inf" : "-Inf";
  }
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return fmt::format("{}", static_cast<int64_t>(value));
  }
  return fmt::format("{}", value);
}

std::string escape_label_value(std::string_view value)
{
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<double> latency_buckets()
{
  return {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

std::vector<double> build_duration_buckets()
{
  return {1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400};
}

// ---------------------------------------------------------------------------------------------
// Family

Family::Family(std::string name, std::string help, Type type, std::vector<std::string> label_names,
               std::vector<double> buckets)
    : m_name(std::move(name)), m_help(std::move(help)), m_type(type), m_label_names(std::move(label_names)),
      m_buckets(std::move(buckets))
{
  std::sort(m_buckets.begin(), m_buckets.end());
  m_buckets.erase(std::unique(m_buckets.begin(), m_buckets.end()), m_buckets.end());
  std::erase_if(m_buckets, [](double bound) { return std::isinf(bound) || std::isnan(bound); });
  if (m_label_names.empty()) {
    series({}); // an unlabelled metric is exposed (as 0) before its first update
  }
}

Family::Series& Family::series(const LabelValues& labels)
{
  auto it = m_series.find(labels);
  if (it == m_series.end()) {
    it = m_series.emplace(labels, Series{}).first;
    if (m_type == Type::histogram) {
      it->second.bucket_counts.assign(m_buckets.size(), 0);
    }
  }
  return it->second;
}

void Family::add(const LabelValues& labels, double amount)
{
  if (m_type == Type::counter && !(amount >= 0)) {
    return;
  }
  std::lock_guard lock(m_mutex);
  series(labels).value += amount;
}

void Family::set(const LabelValues& labels, double value)
{
  std::lock_guard lock(m_mutex);
  series(labels).value = value;
}

void Family::observe(const LabelValues& labels, double value)
{
  std::lock_guard lock(m_mutex);
  auto& entry = series(labels);
  const auto bucket = std::lower_bound(m_buckets.begin(), m_buckets.end(), value) - m_buckets.begin();
  if (static_cast<size_t>(bucket) < entry.bucket_counts.size()) {
    ++entry.bucket_counts[static_cast<size_t>(bucket)];
  }
  entry.sum += value;
  ++entry.count;
}

void Family::clear()
{
  std::lock_guard lock(m_mutex);
  m_series.clear();
}

double Family::value(const LabelValues& labels) const
{
  std::lock_guard lock(m_mutex);
  auto it = m_series.find(labels);
  if (it == m_series.end()) {
    return 0;
  }
  return m_type == Type::histogram ? static_cast<double>(it->second.count) : it->second.value;
}

void Family::render(std::string& out) const
{
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", m_name, escape_help(m_help), m_name, metric_type_name(m_type));
  std::lock_guard lock(m_mutex);
  for (const auto& [labels, entry] : m_series) {
    if (m_type != Type::histogram) {
      out += fmt::format("{}{} {}\n", m_name, label_text(m_label_names, labels), format_value(entry.value));
      continue;
    }
    uint64_t cumulative = 0;
    for (size_t i = 0; i < m_buckets.size(); ++i) {
      cumulative += entry.bucket_counts[i];
      out += fmt::format("{}_bucket{} {}\n", m_name,
                         label_text(m_label_names, labels, "le", format_value(m_buckets[i])), cumulative);
    }
    out += fmt::format("{}_bucket{} {}\n", m_name, label_text(m_label_names, labels, "le", "+Inf"), entry.count);
    out += fmt::format("{}_sum{} {}\n", m_name, label_text(m_label_names, labels), format_value(entry.sum));
    out += fmt::format("{}_count{} {}\n", m_name, label_text(m_label_names, labels), entry.count);
  }
}

// ---------------------------------------------------------------------------------------------
// Registry

Family& Registry::add(const std::string& name, const std::string& help, Type type, std::vector<std::string> label_names,
                      std::vector<double> buckets)
{
  if (!valid_metric_name(name)) {
    throw Fatal{Error{ErrorKind::internal, fmt::format("'{}' is not a metric name", name)}};
  }
  std::lock_guard lock(m_mutex);
  for (const auto& family : m_families) {
    if (family->name() == name) {
      if (family->type() != type) {
        throw Fatal{Error{ErrorKind::internal, fmt::format("metric {} registered twice with two types", name)}};
      }
      return *family;
    }
  }
  m_families.push_back(std::make_unique<Family>(name, help, type, std::move(label_names), std::move(buckets)));
  return *m_families.back();
}

Family& Registry::counter(const std::string& name, const std::string& help, std::vector<std::string> label_names)
{
  return add(name, help, Type::counter, std::move(label_names), {});
}

Family& Registry::gauge(const std::string& name, const std::string& help, std::vector<std::string> label_names)
{
  return add(name, help, Type::gauge, std::move(label_names), {});
}

Family& Registry::histogram(const std::string& name, const std::string& help, std::vector<double> buckets,
                            std::vector<std::string> label_names)
{
  return add(name, help, Type::histogram, std::move(label_names), std::move(buckets));
}

void Registry::on_collect(std::function<void()> collector)
{
  std::lock_guard lock(m_collect_mutex);
  m_collectors.push_back(std::move(collector));
}

std::string Registry::render() const
{
  std::lock_guard collect(m_collect_mutex);
  for (const auto& collector : m_collectors) {
    collector();
  }
  std::string out;
  std::lock_guard lock(m_mutex);
  for (const auto& family : m_families) {
    family->render(out);
  }
  return out;
}

} // namespace swarm::metrics
