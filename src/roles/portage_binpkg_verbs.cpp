#include "roles/verbs.hpp"

namespace swarm::roles {

void add_portage_binpkg_verbs(std::vector<Verb>& /*verbs*/)
{
}

} // namespace swarm::roles
