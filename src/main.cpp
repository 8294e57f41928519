// swarm: one binary, many roles. Everything lives in swarm_lib; this only dispatches.
#include "roles/entry.hpp"

int main(int argc, char** argv)
{
  return swarm::roles::main(argc, argv);
}
