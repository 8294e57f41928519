#pragma once
// Signing a GPKG as Portage's FEATURES=binpkg-signing does (portage gpkg.py, FORMATS.md §1.1 and
// §3.3): an ASCII-armoured detached signature `X.sig` right after each member X but gpkg-1
// (metadata.tar*, image.tar*), the .sig members listed in the Manifest, and the Manifest itself
// clear-signed. The OpenPGP part is a callback, so the format is testable without a keyring.

#include <filesystem>
#include <functional>
#include <string>

#include "core/byte_stream.hpp"
#include "core/error.hpp"

namespace swarm::portage {

// Returns the armoured signature of what `data` yields: detached (clear = false) or the
// clear-signed message (clear = true).
using SignFunction = std::function<Result<std::string>(stream::ByteSource& data, bool clear)>;

// Rewrites the GPKG at `path` signed, atomically (a temporary file renamed over it). The package
// must be a valid GPKG; signatures it already carries are replaced. Member data is streamed,
// never held whole.
Result<> sign_gpkg(const std::filesystem::path& path, const SignFunction& sign);

} // namespace swarm::portage
