# Warnings for our own targets (ccache's StandardWarnings, mold's CI).
function(swarm_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor)
  if(SWARM_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
