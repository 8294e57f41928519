// GET /api/v1/key: the public OpenPGP key(s) the binhost's packages are signed with, armoured,
// for `swarm client setup` (and anyone) to import. 404 when the binhost does not sign.
#include "roles/orch/api_context.hpp"

#include "roles/orch/signing.hpp"

namespace swarm::roles::orch::handlers {

void binhost_key(Api& api, const Call& call)
{
  if (!api.options.signer) {
    return call.fail({ErrorKind::not_found, "this binhost does not sign its packages"});
  }
  auto keys = api.options.signer->public_keys();
  if (!keys) {
    return call.fail(keys.error());
  }
  call.response.set_header("Cache-Control", "no-cache");
  call.response.set_content(*keys, "application/pgp-keys");
}

} // namespace swarm::roles::orch::handlers
