# SWARM_SANITIZE=address → ASan + UBSan; thread → TSan. Applied to every target.
if(SWARM_SANITIZE STREQUAL "address")
  # Every UBSan check but vptr (dynamic types of polymorphic objects, which swarm barely has): it
  # alone made the sanitized build a sixth more expensive.
  add_compile_options(-fsanitize=address,undefined -fno-sanitize=vptr -fno-omit-frame-pointer
    -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined -fno-sanitize=vptr)
  # GCC's flow analysis sees the sanitizers' checks as paths that skip initialisation
  # (std::regex's std::function members): false alarms that -Werror would make fatal.
  add_compile_options(-Wno-maybe-uninitialized)
elseif(SWARM_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(NOT SWARM_SANITIZE STREQUAL "")
  message(FATAL_ERROR "SWARM_SANITIZE must be '', 'address' or 'thread'")
endif()
