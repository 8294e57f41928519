#include "roles/verbs.hpp"

namespace swarm::roles {

void add_release_verbs(std::vector<Verb>& /*verbs*/)
{
}

} // namespace swarm::roles
