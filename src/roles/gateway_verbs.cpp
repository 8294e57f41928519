#include "roles/verbs.hpp"

namespace swarm::roles {

void add_gateway_verbs(std::vector<Verb>& /*verbs*/)
{
}

} // namespace swarm::roles
