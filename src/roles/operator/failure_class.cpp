#include "roles/operator/failure_class.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

#include <fmt/format.h>

#include "core/strings.hpp"

namespace swarm::roles::operator_cli {

namespace {

bool contains_nocase(std::string_view haystack, std::string_view needle)
{
  const auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  });
  return it != haystack.end();
}

struct Rule {
  FailureClass kind;
  std::vector<std::string_view> markers; // any of them, case-insensitive
};

// Order matters: the first class with a matching line wins. A full disk or a failed download
// breaks the build in ways that look like anything else downstream, so they come first; a
// compile error is what most other failures also end with ("failed (compile phase)"), so it
// comes last.
const std::vector<Rule>& rules()
{
  static const std::vector<Rule> k_rules = {
    {FailureClass::disk_full, {"No space left on device", "Disk quota exceeded", "ENOSPC"}},
    {FailureClass::fetch_failure,
     {"Couldn't download", "Fetch failed for", "!!! Fetch failed", "Failed to fetch", "Unable to fetch",
      "has fetch restriction turned on", "Digest verification failed", "size not correct", "!!! Some fetch errors"}},
    {FailureClass::tree_mismatch,
     {"there are no ebuilds to satisfy", "there are no ebuilds built with", "differs from the plan", "tree timestamp",
      "!!! All ebuilds that could satisfy", "ebuild not found", "Manifest not found"}},
    {FailureClass::kernel_specific,
     {"Could not find a usable .config in the kernel source", "kernel sources", "linux-mod", "linux-info",
      "Kernel version", "CONFIG_CHECK", "modules_prepare", "/lib/modules/", "KERNEL_DIR", "kernel config"}},
    {FailureClass::slot_conflict, {"Multiple package instances within a single package slot", "slot conflict"}},
    {FailureClass::use_conflict,
     {"REQUIRED_USE flag constraints are unsatisfied", "The following USE changes are necessary",
      "has unmet requirements", "USE flag constraints", "built with USE flags to satisfy"}},
    {FailureClass::missing_dependency,
     {"--buildpkgonly requires all dependencies to be merged", "missing build dependency",
      "there are no binary packages to satisfy", "were not met:", "No package '", "Could NOT find",
      "Package requirements (", "Dependency \"", "not found, tried pkgconfig", "command not found"}},
    {FailureClass::compile_error,
     {"failed (compile phase)", "failed (configure phase)", "failed (install phase)", "failed (prepare phase)",
      "failed (test phase)", "make: *** [", "ninja: build stopped", "error: ld returned", "compilation terminated",
      ": error:", "Error 1", "undefined reference to"}},
  };
  return k_rules;
}

} // namespace

std::string_view failure_class_label(FailureClass kind)
{
  switch (kind) {
  case FailureClass::fetch_failure:
    return "fetch failure";
  case FailureClass::compile_error:
    return "compile error";
  case FailureClass::missing_dependency:
    return "missing dependency";
  case FailureClass::use_conflict:
    return "USE/REQUIRED_USE conflict";
  case FailureClass::slot_conflict:
    return "slot conflict";
  case FailureClass::disk_full:
    return "disk full";
  case FailureClass::tree_mismatch:
    return "tree mismatch";
  case FailureClass::kernel_specific:
    return "kernel-specific";
  case FailureClass::unknown:
    return "unknown";
  }
  return "unknown";
}

std::string_view failure_class_name(FailureClass kind)
{
  switch (kind) {
  case FailureClass::fetch_failure:
    return "fetch_failure";
  case FailureClass::compile_error:
    return "compile_error";
  case FailureClass::missing_dependency:
    return "missing_dependency";
  case FailureClass::use_conflict:
    return "use_conflict";
  case FailureClass::slot_conflict:
    return "slot_conflict";
  case FailureClass::disk_full:
    return "disk_full";
  case FailureClass::tree_mismatch:
    return "tree_mismatch";
  case FailureClass::kernel_specific:
    return "kernel_specific";
  case FailureClass::unknown:
    return "unknown";
  }
  return "unknown";
}

bool is_kernel_package(std::string_view cpv)
{
  static constexpr std::string_view k_names[] = {
    "x11-drivers/nvidia-drivers",
    "sys-kernel/",
    "app-emulation/virtualbox-modules",
    "net-wireless/broadcom-sta",
    "sys-fs/zfs-kmod",
    "app-laptop/tp_smapi",
    "sys-power/acpi_call",
    "net-vpn/wireguard-modules",
    "media-video/v4l2loopback",
    "app-emulation/vmware-modules",
    "sys-firmware/sof-firmware-kmod",
  };
  for (auto name : k_names) {
    if (cpv.starts_with(name)) {
      return true;
    }
  }
  return cpv.find("-kmod-") != std::string_view::npos || cpv.find("-modules-") != std::string_view::npos;
}

Diagnosis classify_failure(std::string_view log_text, std::string_view cpv)
{
  const auto raw_lines = strings::split(log_text, '\n');
  std::vector<std::string_view> lines;
  for (const auto& line : raw_lines) {
    const auto trimmed = strings::trim(line);
    if (!trimmed.empty()) {
      lines.push_back(trimmed);
    }
  }
  Diagnosis out;
  for (const auto& rule : rules()) {
    // The last matching line: the one nearest the end is the one that stopped the build.
    for (auto it = lines.rbegin(); it != lines.rend() && out.evidence.empty(); ++it) {
      for (auto marker : rule.markers) {
        if (contains_nocase(*it, marker)) {
          out.kind = rule.kind;
          out.evidence = std::string(*it);
          break;
        }
      }
    }
    if (!out.evidence.empty()) {
      break;
    }
  }
  if ((out.kind == FailureClass::compile_error || out.kind == FailureClass::unknown) && is_kernel_package(cpv)) {
    out.kind = FailureClass::kernel_specific;
  }
  if (out.evidence.size() > 300) {
    out.evidence.resize(300);
    out.evidence += "…";
  }
  return out;
}

NextStep next_step(FailureClass kind, std::string_view cpv_view)
{
  const std::string cpv(cpv_view);
  const auto unblock = fmt::format("swarm unblock {}", cpv);
  switch (kind) {
  case FailureClass::fetch_failure:
    return {"make the distfile fetchable (a mirror, GENTOO_MIRRORS, or put a fetch-restricted file into DISTDIR "
            "on the drones)",
            unblock};
  case FailureClass::compile_error:
    return {fmt::format("read the log (`swarm logs {}`), then fix the build: a patch in /etc/portage/patches, "
                        "package.env, or another version",
                        cpv),
            unblock};
  case FailureClass::missing_dependency:
    return {"install the missing dependency on the drones (outside the plan), or add it to the plan with "
            "`swarm queue add =CAT/PKG-VER`",
            unblock};
  case FailureClass::use_conflict:
    return {"adjust package.use until `emerge -pv @world` resolves on this machine, then recompute the plan",
            "swarm fresh"};
  case FailureClass::slot_conflict:
    return {"resolve the slot conflict with `emerge -pv --update --deep --newuse @world` on this machine, then "
            "recompute the plan",
            "swarm fresh"};
  case FailureClass::disk_full:
    return {"free disk space on the drones it failed on (PORTAGE_TMPDIR, the spool)", unblock};
  case FailureClass::tree_mismatch:
    return {"sync the Portage tree on the drones (`emerge --sync`) so it matches the plan's, check with "
            "`swarm sync-verify`",
            unblock};
  case FailureClass::kernel_specific:
    return {"it builds against the running kernel: build it on the machine that runs that kernel",
            fmt::format("swarm build-local ={}", cpv)};
  case FailureClass::unknown:
    return {fmt::format("read the log (`swarm logs {}`)", cpv), unblock};
  }
  return {"", unblock};
}

} // namespace swarm::roles::operator_cli
