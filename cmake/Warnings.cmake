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
# CLI11) and their template instantiations are compiled once per batch, not once per file. The
# batches are cut from the sources ordered by the heaviest header they use (CLI11, then
# cpp-httplib, then the rest): a batch of CLI11 users instantiates CLI11 once, where batches cut
# in directory order would each pay for it.
function(swarm_unity target)
  if(NOT SWARM_UNITY)
    return()
  endif()
  get_target_property(sources ${target} SOURCES)
  set(cli_users "")
  set(http_users "")
  set(others "")
  foreach(source ${sources})
    get_filename_component(path ${source} ABSOLUTE ${CMAKE_CURRENT_SOURCE_DIR})
    file(READ ${path} text)
    if(text MATCHES "#include <CLI/CLI.hpp>")
      list(APPEND cli_users ${source})
    elseif(text MATCHES "#include (<httplib.h>|\"(net/http_server|net/file_serving|net/http_connections|roles/orch/api_context|roles/gateway/gateway|roles/gateway/proxy|net/test_server)\\.hpp\")")
      list(APPEND http_users ${source})
    else()
      list(APPEND others ${source})
    endif()
  endforeach()
  set_target_properties(${target} PROPERTIES SOURCES "${cli_users};${http_users};${others}"
    UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE ${SWARM_UNITY_BATCH_SIZE})
endfunction()
