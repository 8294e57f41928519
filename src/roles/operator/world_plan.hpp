#pragma once
// The @world build plan computed on this machine, shared by `swarm fresh` and `swarm release`:
// emerge's merge list — from running `emerge --pretend --verbose --update --deep --newuse @world`
// (argv, no shell) or from a saved copy of its output — plus the repository's md5-cache.

#include <string>

#include "core/error.hpp"
#include "portage/plan.hpp"

namespace swarm::roles::operator_cli {

struct WorldPlanSource {
  std::string emerge;    // Portage's emerge (client.emerge)
  std::string repo_dir;  // the ebuild repository (client.repo_dir)
  std::string from_file; // saved emerge output; empty: run emerge
};

Result<portage::Plan> compute_world_plan(const WorldPlanSource& source);

} // namespace swarm::roles::operator_cli
