#pragma once
// Metrics in the Prometheus text exposition format (version 0.0.4): counters, gauges and
// histograms, each a family of series told apart by label values. Thread-safe and cheap to update
// (one mutex per family, held for a map lookup and an addition). Gauges that describe the state at
// the time of a scrape are filled by collectors, which render() runs first.

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace swarm::metrics {

using LabelValues = std::vector<std::string>;

enum class Type { counter, gauge, histogram };

class Family {
public:
  Family(std::string name, std::string help, Type type, std::vector<std::string> label_names,
         std::vector<double> buckets = {});
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  const std::string& name() const { return m_name; }
  Type type() const { return m_type; }

  // Counters: adds `amount` (negative amounts are ignored). Gauges: adds (may be negative).
  void add(const LabelValues& labels, double amount = 1);
  void add(double amount = 1) { add(LabelValues{}, amount); }
  // Gauges: sets the value.
  void set(const LabelValues& labels, double value);
  void set(double value) { set(LabelValues{}, value); }
  // Histograms: one observation.
  void observe(const LabelValues& labels, double value);
  void observe(double value) { observe(LabelValues{}, value); }
  // Forgets every series (a gauge refilled at each scrape).
  void clear();
  // The value of a counter or gauge series (0 when absent); a histogram's count.
  double value(const LabelValues& labels = {}) const;

  void render(std::string& out) const;

private:
  struct Series {
    double value = 0;
    std::vector<uint64_t> bucket_counts; // histograms: per bucket, not cumulative
    double sum = 0;
    uint64_t count = 0;
  };
  Series& series(const LabelValues& labels); // under m_mutex

  std::string m_name;
  std::string m_help;
  Type m_type;
  std::vector<std::string> m_label_names;
  std::vector<double> m_buckets; // upper bounds, ascending, +Inf implied
  mutable std::mutex m_mutex;
  std::map<LabelValues, Series> m_series;
};

// Default histogram buckets for durations in seconds.
std::vector<double> latency_buckets();        // 1 ms … 60 s
std::vector<double> build_duration_buckets(); // 1 s … 24 h

class Registry {
public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Registers a family (or returns the one of that name). Names must match
  // [a-zA-Z_:][a-zA-Z0-9_:]*; counters should end in _total.
  Family& counter(const std::string& name, const std::string& help, std::vector<std::string> label_names = {});
  Family& gauge(const std::string& name, const std::string& help, std::vector<std::string> label_names = {});
  Family& histogram(const std::string& name, const std::string& help, std::vector<double> buckets,
                    std::vector<std::string> label_names = {});

  // Runs before every render (under one lock, so two scrapes never interleave their refills).
  void on_collect(std::function<void()> collector);

  // Every family in registration order.
  std::string render() const;

private:
  Family& add(const std::string& name, const std::string& help, Type type, std::vector<std::string> label_names,
              std::vector<double> buckets);

  mutable std::mutex m_mutex; // the families list
  mutable std::mutex m_collect_mutex;
  std::vector<std::unique_ptr<Family>> m_families;
  std::vector<std::function<void()>> m_collectors;
};

// The Content-Type of render()'s output.
inline constexpr std::string_view k_content_type = "text/plain; version=0.0.4; charset=utf-8";

// A number as the text format writes it (+Inf, -Inf, NaN, integers without a fraction).
std::string format_value(double value);
// A label value with \, " and newline escaped.
std::string escape_label_value(std::string_view value);

} // namespace swarm::metrics
