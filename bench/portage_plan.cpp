// Benchmark: Portage dependency knowledge on the real kde-desktop binhost index (948 packages).
// Throughput of vercmp, atom parsing, dependency reduction and plan building, the whole
// file → index → plan time (target < 0.5 s), and ratios against a bare parse of the index
// measured in the same run. Run from a Release-like build (RelWithDebInfo is the default).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "portage/atom.hpp"
#include "portage/dep_string.hpp"
#include "portage/packages_index.hpp"
#include "portage/plan.hpp"
#include "portage/version.hpp"

namespace {

using Clock = std::chrono::steady_clock;

const char* const k_packages = SWARM_TEST_DATA_DIR "/../../data/workloads/kde-desktop/Packages";
constexpr const char* k_dep_keys[] = {"DEPEND", "BDEPEND", "IDEPEND", "RDEPEND", "PDEPEND"};

// The best of `repeats` runs of `body`, in seconds (the least disturbed by other load).
double best_seconds(int repeats, const std::function<void()>& body)
{
  double best = 1e100;
  for (int i = 0; i < repeats; ++i) {
    const auto start = Clock::now();
    body();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return best;
}

void report(const char* what, size_t items, const char* unit, double seconds)
{
  fmt::print("{:<34} {:>9} {:<9} {:>10.3f} ms {:>14.0f} {}/s\n", what, items, unit, seconds * 1e3,
             static_cast<double>(items) / seconds, unit);
}

int fail(const std::string& message)
{
  fmt::print(stderr, "bench_portage_plan: {}\n", message);
  return 1;
}

} // namespace

int main()
{
  using namespace swarm::portage;

  std::ifstream in(k_packages, std::ios::binary);
  if (!in) {
    return fail(fmt::format("cannot read {}", k_packages));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();

  auto index = read_packages_index(text);
  if (!index) {
    return fail(index.error().message);
  }
  const size_t packages = index->packages.size();

  // Inputs for the micro benchmarks, taken from the index itself.
  std::vector<std::string> versions;
  std::vector<std::string> dep_strings;
  std::vector<std::string> atoms;
  for (const auto& block : index->packages) {
    if (const auto cpv = parse_cpv(block.at("CPV"))) {
      versions.push_back(cpv->full_version());
    }
    for (const auto* key : k_dep_keys) {
      const auto it = block.find(key);
      if (it == block.end() || it->second.empty()) {
        continue;
      }
      dep_strings.push_back(it->second);
      std::istringstream tokens(it->second);
      for (std::string token; tokens >> token;) {
        if (token != "||" && token != "(" && token != ")" && token.back() != '?') {
          atoms.push_back(token);
        }
      }
    }
  }

  const int repeats = 7;
  fmt::print("kde-desktop Packages: {} bytes, {} packages, {} dependency strings, {} atoms\n\n", text.size(), packages,
             dep_strings.size(), atoms.size());
  fmt::print("{:<34} {:>9} {:<9} {:>13} {:>16}\n", "operation (best of 7)", "items", "", "time", "throughput");

  const double parse_index = best_seconds(repeats, [&] {
    if (!read_packages_index(text)) {
      std::abort();
    }
  });
  report("read_packages_index (baseline)", packages, "packages", parse_index);

  size_t vercmp_pairs = 0;
  const double vercmp_time = best_seconds(repeats, [&] {
    vercmp_pairs = 0;
    int sum = 0;
    for (int round = 0; round < 20; ++round) {
      for (size_t i = 1; i < versions.size(); ++i) {
        sum += vercmp(versions[i - 1], versions[i]).value_or(0);
        ++vercmp_pairs;
      }
    }
    if (sum == 123456789) {
      std::puts("");
    }
  });
  report("vercmp", vercmp_pairs, "pairs", vercmp_time);

  const double atom_time = best_seconds(repeats, [&] {
    for (const auto& atom : atoms) {
      if (!parse_atom(atom)) {
        std::abort();
      }
    }
  });
  report("parse_atom", atoms.size(), "atoms", atom_time);

  const double reduce_time = best_seconds(repeats, [&] {
    for (const auto& depstr : dep_strings) {
      if (!reduce_dependencies(depstr, {})) {
        std::abort();
      }
    }
  });
  report("reduce_dependencies (typed tree)", dep_strings.size(), "strings", reduce_time);

  size_t edges = 0;
  const double plan_time = best_seconds(repeats, [&] {
    const auto plan = plan_from_index(*index);
    if (!plan) {
      std::abort();
    }
    edges = plan->edges.size();
  });
  report("plan_from_index", packages, "packages", plan_time);

  const double whole_time = best_seconds(repeats, [&] {
    std::ifstream file(k_packages, std::ios::binary);
    std::ostringstream contents;
    contents << file.rdbuf();
    const auto parsed = read_packages_index(contents.str());
    if (!parsed || !plan_from_index(*parsed)) {
      std::abort();
    }
  });
  report("file -> index -> plan", packages, "packages", whole_time);

  fmt::print("\nplan: {} edges\n", edges);
  fmt::print("whole index -> plan: {:.1f} ms (target < 500 ms): {}\n", whole_time * 1e3,
             whole_time < 0.5 ? "ok" : "TOO SLOW");
  fmt::print("ratios against the bare index parse ({:.2f} ms):\n", parse_index * 1e3);
  fmt::print("  plan_from_index        x{:.2f}\n", plan_time / parse_index);
  fmt::print("  file -> index -> plan  x{:.2f}\n", whole_time / parse_index);
  fmt::print("  all atoms parsed once  x{:.2f}\n", atom_time / parse_index);
  fmt::print("  per atom parse = {:.1f} vercmp\n",
             (atom_time / static_cast<double>(atoms.size())) / (vercmp_time / static_cast<double>(vercmp_pairs)));
  return whole_time < 0.5 ? 0 : 2;
}
