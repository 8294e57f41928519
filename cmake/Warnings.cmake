# Warnings for our own targets (ccache's StandardWarnings, mold's CI). Shadowing is checked
# between locals only: a parameter named like a namespace-scope name (`json`) is fine, and unity
# batches must not turn one file's `using` into another file's error.
function(swarm_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow=local -Wnon-virtual-dtor)
  if(SWARM_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# Unity build: sources compiled in batches, so the heavy headers (nlohmann/json, fmt, httplib,
# CLI11) and their template instantiations are compiled once per batch, not once per file.
function(swarm_unity target)
  if(SWARM_UNITY)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 10)
  endif()
endfunction()
