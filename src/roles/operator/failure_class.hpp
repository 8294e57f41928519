#pragma once
// Why a package is blocked, read from its build log the way an operator would: the failure
// class, the line that shows it, and the exact command to run next (`swarm fix-blocked`).

#include <string>
#include <string_view>

namespace swarm::roles::operator_cli {

enum class FailureClass {
  fetch_failure,
  compile_error,
  missing_dependency,
  use_conflict,
  slot_conflict,
  disk_full,
  tree_mismatch,
  kernel_specific,
  unknown,
};

// "fetch failure", "compile error", … (for people).
std::string_view failure_class_label(FailureClass kind);
// "fetch_failure", … (for --json).
std::string_view failure_class_name(FailureClass kind);

struct Diagnosis {
  FailureClass kind = FailureClass::unknown;
  std::string evidence; // the log line that decided it ("" when none did)
};

// Classifies a Portage build log (or the tail a drone reported, plus its reason line). Pure.
// `cpv` lets kernel-module packages (nvidia-drivers, *-kmod, …) whose build broke count as
// kernel-specific: they build against the drone's running kernel, not the client's.
Diagnosis classify_failure(std::string_view log_text, std::string_view cpv = {});

// True for packages that build against the running kernel.
bool is_kernel_package(std::string_view cpv);

struct NextStep {
  std::string advice;  // what to fix first, one sentence
  std::string command; // the exact command to run after that
};

// What to do about a package blocked for `kind`.
NextStep next_step(FailureClass kind, std::string_view cpv);

} // namespace swarm::roles::operator_cli
