#include <doctest/doctest.h>

#include "roles/operator/failure_class.hpp"

using namespace swarm::roles::operator_cli;

namespace {

FailureClass kind_of(std::string_view log, std::string_view cpv = "dev-libs/foo-1.0")
{
  return classify_failure(log, cpv).kind;
}

} // namespace

TEST_CASE("failure class: fetch failure")
{
  const auto log = R"log(>>> Downloading 'https://distfiles.gentoo.org/distfiles/foo-1.0.tar.xz'
--2026-12-01 10:00:00--  https://distfiles.gentoo.org/distfiles/foo-1.0.tar.xz
ERROR 404: Not Found.
!!! Couldn't download 'foo-1.0.tar.xz'. Aborting.
!!! Fetch failed for dev-libs/foo-1.0, continuing...
!!! Some fetch errors were encountered.  Please see above for details.
)log";
  const auto diagnosis = classify_failure(log, "dev-libs/foo-1.0");
  CHECK(diagnosis.kind == FailureClass::fetch_failure);
  CHECK(diagnosis.evidence.find("fetch errors") != std::string::npos);
  CHECK(kind_of(" * Fetch failed: the SRC_URI 'foo.zip' has fetch restriction turned on.") ==
        FailureClass::fetch_failure);
}

TEST_CASE("failure class: compile error")
{
  const auto log = R"log(x86_64-pc-linux-gnu-gcc -O2 -pipe -c foo.c -o foo.o
foo.c: In function 'main':
foo.c:12:5: error: implicit declaration of function 'bar' [-Werror=implicit-function-declaration]
make[1]: *** [Makefile:412: foo.o] Error 1
make: *** [Makefile:300: all] Error 2
 * ERROR: dev-libs/foo-1.0::gentoo failed (compile phase):
 *   emake failed
)log";
  const auto diagnosis = classify_failure(log, "dev-libs/foo-1.0");
  CHECK(diagnosis.kind == FailureClass::compile_error);
  CHECK(diagnosis.evidence == "* ERROR: dev-libs/foo-1.0::gentoo failed (compile phase):");
  CHECK(kind_of("FAILED: src/libfoo.so.p/a.c.o\nninja: build stopped: subcommand failed.\n") ==
        FailureClass::compile_error);
}

TEST_CASE("failure class: missing dependency")
{
  CHECK(kind_of(R"log(checking for GLIB... no
configure: error: Package requirements (glib-2.0 >= 2.76) were not met:

No package 'glib-2.0' found
 * ERROR: x11-libs/bar-2::gentoo failed (configure phase):
)log") == FailureClass::missing_dependency);
  CHECK(kind_of("!!! --buildpkgonly requires all dependencies to be merged.\n!!! Cannot merge requested packages. "
                "Merge deps and try again.\n") == FailureClass::missing_dependency);
  CHECK(kind_of("CMake Error at CMakeLists.txt:40 (find_package):\n  Could NOT find ZLIB (missing: ZLIB_LIBRARY)\n") ==
        FailureClass::missing_dependency);
  CHECK(kind_of("missing build dependency app-test/pkg001-1.1 (needed by app-test/pkg007-1.2)") ==
        FailureClass::missing_dependency);
}

TEST_CASE("failure class: USE / REQUIRED_USE conflict")
{
  CHECK(kind_of(R"log(!!! The ebuild selected to satisfy "media-video/ffmpeg" has unmet requirements.
- media-video/ffmpeg-6.1.1-r5::gentoo USE="X encode -vaapi" ABI_X86="(64)"

  The following REQUIRED_USE flag constraints are unsatisfied:
    vaapi? ( X )
)log") == FailureClass::use_conflict);
}

TEST_CASE("failure class: slot conflict")
{
  CHECK(kind_of(R"log(!!! Multiple package instances within a single package slot have been pulled
!!! into the dependency graph, resulting in a slot conflict:

dev-lang/python:3.12
)log") == FailureClass::slot_conflict);
}

TEST_CASE("failure class: disk full wins over the compile error it causes")
{
  CHECK(
    kind_of(
      R"log(/usr/lib/gcc/x86_64-pc-linux-gnu/13/../../../../x86_64-pc-linux-gnu/bin/ld: final link failed: No space left on device
collect2: error: ld returned 1 exit status
 * ERROR: www-client/firefox-128.0::gentoo failed (compile phase):
)log") == FailureClass::disk_full);
}

TEST_CASE("failure class: tree mismatch")
{
  CHECK(kind_of("emerge: there are no ebuilds to satisfy \"=dev-libs/foo-1.0\".") == FailureClass::tree_mismatch);
  CHECK(kind_of("tree timestamp Mon, 30 Nov 2026 00:00:00 +0000 differs from the plan's Tue, 01 Dec 2026 00:00:00 "
                "+0000") == FailureClass::tree_mismatch);
}

TEST_CASE("failure class: kernel-specific")
{
  CHECK(kind_of(R"log( * Checking for suitable kernel configuration options ...
 * Could not find a usable .config in the kernel source directory.
 * Please ensure that /usr/src/linux points to a configured set of Linux sources.
 * ERROR: x11-drivers/nvidia-drivers-550.127.05::gentoo failed (setup phase):
)log",
                "x11-drivers/nvidia-drivers-550.127.05") == FailureClass::kernel_specific);
  // A kernel module whose build broke: it builds against the drone's kernel, not the client's.
  CHECK(kind_of("make: *** [Makefile:1922: modules] Error 2\n", "x11-drivers/nvidia-drivers-550.127.05") ==
        FailureClass::kernel_specific);
  CHECK(kind_of("make: *** [Makefile:1922: modules] Error 2\n", "dev-libs/foo-1") == FailureClass::compile_error);
}

TEST_CASE("failure class: unknown, and the next command for each class")
{
  CHECK(kind_of("") == FailureClass::unknown);
  CHECK(kind_of("something odd happened") == FailureClass::unknown);
  CHECK(next_step(FailureClass::compile_error, "dev-libs/foo-1.0").command == "swarm unblock dev-libs/foo-1.0");
  CHECK(next_step(FailureClass::kernel_specific, "x11-drivers/nvidia-drivers-550.127.05").command ==
        "swarm build-local =x11-drivers/nvidia-drivers-550.127.05");
  CHECK(next_step(FailureClass::use_conflict, "a/b-1").command == "swarm fresh");
  CHECK(next_step(FailureClass::tree_mismatch, "a/b-1").advice.find("sync-verify") != std::string::npos);
  CHECK(failure_class_name(FailureClass::use_conflict) == "use_conflict");
  CHECK(failure_class_label(FailureClass::use_conflict) == "USE/REQUIRED_USE conflict");
}
