// The libFuzzer entry of one target: fuzz/CMakeLists.txt compiles this file once per target with
// SWARM_FUZZ_FUNCTION naming its function in tests/fuzz/targets.cpp.
#include <cstddef>
#include <cstdint>

#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
  return swarm::fuzz::SWARM_FUZZ_FUNCTION(data, size);
}
