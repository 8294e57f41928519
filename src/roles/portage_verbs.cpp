// `swarm portage …`: Portage inspection tools for operators (like portage-utils' q applets).
#include "roles/verbs.hpp"

namespace swarm::roles {

void add_portage_dep_verbs(std::vector<Verb>& verbs);    // portage_dep_verbs.cpp
void add_portage_binpkg_verbs(std::vector<Verb>& verbs); // portage_binpkg_verbs.cpp

void add_portage_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back({"portage", "Inspect Portage data: versions, atoms, dependencies, emerge output, GPKGs, indexes",
                   nullptr, nullptr});
  add_portage_dep_verbs(verbs);
  add_portage_binpkg_verbs(verbs);
}

} // namespace swarm::roles
