#pragma once
// The program's entry point, kept apart from the verb registry so that main.cpp compiles
// without CLI11.

namespace swarm::roles {

// Parses argv, loads the configuration, runs one verb and returns its exit code.
int main(int argc, char** argv);

} // namespace swarm::roles
