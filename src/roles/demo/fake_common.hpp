#pragma once
// What the fake builder's two halves share (roles/demo/fake_builder.cpp builds and pretends,
// roles/demo/fake_install.cpp installs binaries): output helpers and small lookups.

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string_view>

#include <fmt/format.h>

#include "portage/version.hpp"
#include "roles/demo/fake_builder.hpp"

namespace swarm::roles::demo::fake {

// Progress goes to stdout and errors to stderr, each line flushed at once: the drone streams
// the output live and tests read it after a kill.
template <class... Args>
inline void say(fmt::format_string<Args...> format, Args&&... args)
{
  fmt::print(stdout, "{}\n", fmt::format(format, std::forward<Args>(args)...));
  std::fflush(stdout);
}

template <class... Args>
inline void complain(fmt::format_string<Args...> format, Args&&... args)
{
  fmt::print(stderr, "{}\n", fmt::format(format, std::forward<Args>(args)...));
  std::fflush(stderr);
}

// A cpv as the fake accepts it: "cat/pkg-ver" with a valid category (parse_cpv alone gives a
// text without '/' the category "null", as Portage's catpkgsplit does).
std::optional<portage::Cpv> split_cpv(std::string_view text);

// The path in environment variable `name`, or `fallback` when it is unset or empty.
std::filesystem::path env_path(std::string_view name, std::string_view fallback);

// Whether `cpv` has an entry in the fake vdb under `root`.
bool is_installed(const std::filesystem::path& root, std::string_view cpv);

// `--usepkgonly --getbinpkgonly =CPV…`: downloads each package from the binhosts of
// ${PORTAGE_CONFIGROOT}/etc/portage/binrepos.conf and installs it into the fake vdb.
int install_binaries(const FakeEmergeArgs& args);

} // namespace swarm::roles::demo::fake
