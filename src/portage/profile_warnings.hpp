#pragma once
// Settings of a build profile that a drone cannot reproduce as the machine that captured them
// means them. `-march=native` (and `-mtune=native`, `-mcpu=native`) names the CPU of whoever
// compiles: on a drone it means the drone's CPU, so the binaries would fit the drone, not the
// client.

#include <string>
#include <vector>

#include "portage/build_profile.hpp"

namespace swarm::portage {

// One line per compiler-flag variable (CFLAGS, CXXFLAGS, FCFLAGS, FFLAGS, LDFLAGS, RUSTFLAGS; global or set by an
// env/ file of package.env) holding a `=native` CPU flag, saying what to use instead. Empty when
// there is none.
std::vector<std::string> native_flag_warnings(const BuildProfile& profile);

} // namespace swarm::portage
