#pragma once
// The @world build plan computed on this machine, shared by `swarm fresh` and `swarm release`:
// emerge's merge list — from running `emerge --pretend --verbose --update --deep --newuse @world`
// (argv, no shell) or from a saved copy of its output — plus the repository's md5-cache; or a
// plan saved as JSON (`swarm submit`, `swarm release --plan`).

#include <string>

#include "core/error.hpp"
#include "portage/plan.hpp"

namespace swarm::roles::operator_cli {

struct WorldPlanSource {
  std::string emerge;    // Portage's emerge (client.emerge)
  std::string repo_dir;  // the ebuild repository (client.repo_dir)
  std::string from_file; // saved emerge output; empty: run emerge
};

// The plan from emerge's merge list and the md5-cache; an Error when emerge fails or its output
// cannot be read.
Result<portage::Plan> compute_world_plan(const WorldPlanSource& source);

// A plan file: the JSON of `swarm portage plan`, or a saved POST /api/v1/plan body (its "plan").
// Not JSON or not a plan: an invalid Error naming the file.
Result<portage::Plan> read_plan_file(const std::string& path);

} // namespace swarm::roles::operator_cli
