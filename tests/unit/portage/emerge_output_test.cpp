#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "portage/emerge_output.hpp"

using namespace swarm::portage;

namespace {

std::string read_data(const std::string& name)
{
  std::ifstream in(std::filesystem::path(SWARM_TEST_DATA_DIR) / "portage" / "emlop" / name);
  REQUIRE(in.good());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

MergeEntry only_entry(std::string_view text)
{
  const auto list = parse_emerge_output(text);
  REQUIRE_MESSAGE(list.has_value(), list.error().message);
  REQUIRE(list->entries.size() == 1);
  return list->entries.front();
}

using Strings = std::vector<std::string>;

} // namespace

TEST_CASE("emerge_output: real emerge -p output")
{
  const auto list = parse_emerge_output(read_data("emerge-p.basic.out"));
  REQUIRE(list.has_value());
  REQUIRE(list->entries.size() == 5);
  CHECK_FALSE(list->reverse_display);
  const auto& gcc = list->entries[0];
  CHECK(gcc.type == MergeType::ebuild);
  CHECK(gcc.attributes == "R");
  CHECK(gcc.cpv == "sys-devel/gcc-6.4.0-r1");
  CHECK(gcc.slot.empty());
  CHECK(gcc.depth == 0);
  CHECK(list->entries[2].cpv == "app-portage/emlop-0.1.0_p20180221");
  CHECK(list->entries[2].attributes == "R~");
  CHECK(list->entries[4].cpv == "dev-db/postgresql-10.3");
}

TEST_CASE("emerge_output: real emerge -pv output with USE and USE_EXPAND")
{
  const auto list = parse_emerge_output(read_data("emerge-pv.basic.out"));
  REQUIRE(list.has_value());
  REQUIRE(list->entries.size() == 5);
  const auto& gcc = list->entries[0];
  CHECK(gcc.cpv == "sys-devel/gcc-6.4.0-r1");
  CHECK(gcc.slot == "6.4.0");
  CHECK(gcc.subslot.empty());
  CHECK(gcc.repo == "gentoo");
  CHECK(gcc.old_versions.empty());
  CHECK(gcc.use.enabled ==
        Strings{"cxx", "debug", "go", "hardened", "multilib", "nls", "nptl", "openmp", "pgo", "pie", "ssp", "vtv"});
  CHECK(gcc.use.disabled.front() == "altivec");
  CHECK(gcc.use.disabled.back() == "vanilla");
  CHECK(gcc.size == "0 KiB");

  const auto& readline = list->entries[1];
  CHECK(readline.slot == "0");
  CHECK(readline.subslot == "7");
  REQUIRE(readline.use_expand.contains("ABI_X86"));
  CHECK(readline.use_expand.at("ABI_X86").enabled == Strings{"64"});
  CHECK(readline.use_expand.at("ABI_X86").disabled == Strings{"32", "x32"});
  CHECK(readline.enabled_flags() == Strings{"abi_x86_64"});

  CHECK(list->entries[2].repo == "moltonel");
  CHECK(list->entries[2].slot.empty());

  const auto& postgresql = list->entries[4];
  CHECK(postgresql.slot == "10");
  const auto flags = postgresql.enabled_flags();
  CHECK(std::find(flags.begin(), flags.end(), "python_targets_python3_5") != flags.end());
  CHECK(std::find(flags.begin(), flags.end(), "python_single_target_python3_5") != flags.end());
  CHECK(std::find(flags.begin(), flags.end(), "server") != flags.end());
  CHECK(std::find(flags.begin(), flags.end(), "python_targets_python2_7") == flags.end());
}

TEST_CASE("emerge_output: a binary package's build id is glued to its version")
{
  const auto list = parse_emerge_output(read_data("emerge-p.bin.out"));
  REQUIRE(list.has_value());
  REQUIRE(list->entries.size() == 2);
  const auto& glib = list->entries[0];
  CHECK(glib.type == MergeType::binary);
  CHECK(glib.attributes == "U");
  CHECK(glib.cpv == "dev-libs/glib-2.80.5-r1");
  CHECK(glib.build_id == 4u);
  CHECK(glib.slot == "2");
  CHECK(glib.repo == "gentoo");
  CHECK(glib.old_versions == Strings{"2.78.6:2::gentoo"});
  CHECK(glib.use.enabled == Strings{"dbus", "elf", "introspection", "mime", "xattr"});
  CHECK(glib.use.disabled ==
        Strings{"debug", "doc", "selinux", "static-libs", "sysprof", "systemtap", "test", "utils", "gtk-doc"});
  CHECK(list->entries[1].type == MergeType::ebuild);
}

TEST_CASE("emerge_output: blockers, uninstalls and forced rebuilds")
{
  const auto list = parse_emerge_output(read_data("emerge-p.blocker.out"));
  REQUIRE(list.has_value());
  REQUIRE(list->entries.size() == 4);
  CHECK(list->entries[0].cpv == "app-admin/syslog-ng-3.13.2");
  CHECK(list->entries[0].old_versions == Strings{"3.7.3"});
  CHECK(list->entries[0].use.disabled == Strings{"http"});
  CHECK(list->entries[1].type == MergeType::uninstall);
  CHECK(list->entries[1].cpv == "dev-libs/eventlog-0.2.12");
  CHECK(list->entries[1].attributes.empty());
  const auto& blocker = list->entries[2];
  CHECK(blocker.type == MergeType::blocks);
  CHECK(blocker.attributes == "b");
  CHECK(blocker.blocker == "dev-libs/eventlog");
  CHECK(blocker.blocker_text == "\"dev-libs/eventlog\" is blocking app-admin/syslog-ng-3.13.2");
  CHECK(blocker.cpv.empty());
  CHECK(list->entries[3].attributes == "rU");
  CHECK(list->entries[3].old_versions == Strings{"7.1.11"});
}

TEST_CASE("emerge_output: verbose line forms of FORMATS.md")
{
  auto entry = only_entry("[ebuild     U  ] sys-devel/llvm-19.1.7:19::gentoo [19.1.5:19::gentoo] "
                          "USE=\"-debug\" LLVM_TARGETS=\"AMDGPU X86 -ARM\" 39,565 KiB\n");
  CHECK(entry.cpv == "sys-devel/llvm-19.1.7");
  CHECK(entry.slot == "19");
  CHECK(entry.old_versions == Strings{"19.1.5:19::gentoo"});
  CHECK(entry.enabled_flags() == Strings{"llvm_targets_AMDGPU", "llvm_targets_X86"});
  CHECK(entry.size == "39,565 KiB");

  entry = only_entry("[binary   R    ] dev-libs/foo-1.2-3:0/1.2::gentoo  USE=\"a -b\" 1,234 KiB");
  CHECK(entry.type == MergeType::binary);
  CHECK(entry.cpv == "dev-libs/foo-1.2");
  CHECK(entry.build_id == 3u);
  CHECK(entry.slot == "0");
  CHECK(entry.subslot == "1.2");
  CHECK(entry.use.enabled == Strings{"a"});
  CHECK(entry.use.disabled == Strings{"b"});

  // Old Portage: --tree depth 1, kB sizes, {…} flags.
  entry = only_entry("[ebuild  N     ]  dev-libs/eventlog-0.2.12  USE=\"-static-libs {-test}\" 297 kB");
  CHECK(entry.depth == 1);
  CHECK(entry.attributes == "N");
  CHECK(entry.use.disabled == Strings{"static-libs", "test"});
  CHECK(entry.size == "297 kB");

  entry = only_entry("[nomerge       ]    mail-mta/nullmailer-1.13-r4  USE=\"ssl\"");
  CHECK(entry.type == MergeType::nomerge);
  CHECK(entry.depth == 3);
  CHECK(entry.cpv == "mail-mta/nullmailer-1.13-r4");

  entry = only_entry("[blocks B      ] <sys-apps/openrc-0.54 "
                     "(\"<sys-apps/openrc-0.54\" is soft blocking sys-apps/foo-1)");
  CHECK(entry.type == MergeType::blocks);
  CHECK(entry.attributes == "B");
  CHECK(entry.blocker == "<sys-apps/openrc-0.54");
  CHECK(entry.blocker_text == "\"<sys-apps/openrc-0.54\" is soft blocking sys-apps/foo-1");

  entry = only_entry("[ebuild  NS    ] dev-lang/python-3.13.1:3.13::gentoo [3.12.8:3.12::gentoo, 3.11.11:3.11::gentoo] "
                     "USE=\"(mime) ssl%* -tk%\" PYTHON_TARGETS=\"(python3_13)\"");
  CHECK(entry.attributes == "NS");
  CHECK(entry.old_versions == Strings{"3.12.8:3.12::gentoo", "3.11.11:3.11::gentoo"});
  CHECK(entry.use.enabled == Strings{"mime", "ssl"});
  CHECK(entry.use.disabled == Strings{"tk"});
  CHECK(entry.enabled_flags() == Strings{"mime", "python_targets_python3_13", "ssl"});

  entry = only_entry("[ebuild  N    #] app-misc/hard-1.0::local  USE=\"(-x%)\" 0 KiB [1]");
  CHECK(entry.attributes == "N#");
  CHECK(entry.use.disabled == Strings{"x"});
  CHECK(entry.old_versions.empty());

  entry = only_entry("[ebuild  N     ] sys-apps/foo-1.0 to /mnt/gentoo/");
  CHECK(entry.root == "/mnt/gentoo/");

  entry = only_entry("[ebuild IrSFUD*] games-fps/doom-1.0-r0::gentoo");
  CHECK(entry.attributes == "IrSFUD*");
  CHECK(entry.cpv == "games-fps/doom-1.0-r0");
}

TEST_CASE("emerge_output: --quiet and --columns layouts")
{
  auto entry = only_entry("[ebuild  N    ] dev-libs/foo-1.0\n");
  CHECK(entry.attributes == "N");
  CHECK(entry.cpv == "dev-libs/foo-1.0");

  entry = only_entry("[ebuild     U  ] sys-devel/llvm                             [19.1.7:19::gentoo] "
                     "                            [19.1.5:19::gentoo] USE=\"-debug\" 0 KiB");
  CHECK(entry.cpv == "sys-devel/llvm-19.1.7");
  CHECK(entry.slot == "19");
  CHECK(entry.repo == "gentoo");
  CHECK(entry.old_versions == Strings{"19.1.5:19::gentoo"});

  entry = only_entry("[binary   R    ]  dev-libs/glib            [2.80.5-r1-4:2::gentoo] ");
  CHECK(entry.type == MergeType::binary);
  CHECK(entry.depth == 1);
  CHECK(entry.cpv == "dev-libs/glib-2.80.5-r1");
  CHECK(entry.build_id == 4u);

  // --quiet --columns: no brackets around the type.
  entry = only_entry("    U  sys-devel/llvm 19.1.7 [19.1.5]\n");
  CHECK(entry.type == MergeType::merge);
  CHECK(entry.attributes == "U");
  CHECK(entry.cpv == "sys-devel/llvm-19.1.7");
  CHECK(entry.old_versions == Strings{"19.1.5"});
  entry = only_entry(" N      dev-libs/bar 2.0 ");
  CHECK(entry.depth == 1);
  CHECK(entry.cpv == "dev-libs/bar-2.0");
  entry = only_entry("B       dev-libs/eventlog (\"dev-libs/eventlog\" is blocking app-admin/syslog-ng-3.13.2)");
  CHECK(entry.type == MergeType::blocks);
  CHECK(entry.blocker == "dev-libs/eventlog");
}

TEST_CASE("emerge_output: --tree output is shown in reverse order")
{
  const auto list = parse_emerge_output("These are the packages that would be merged, in reverse order:\n\n"
                                        "Calculating dependencies... done!\n"
                                        "[ebuild  N     ] app-misc/top-1\n"
                                        "[ebuild  N     ]  dev-libs/dep-2\n"
                                        "[ebuild  N     ]   dev-libs/leaf-3\n");
  REQUIRE(list.has_value());
  CHECK(list->reverse_display);
  REQUIRE(list->entries.size() == 3);
  CHECK(list->entries[0].cpv == "dev-libs/leaf-3");
  CHECK(list->entries[0].depth == 2);
  CHECK(list->entries[2].cpv == "app-misc/top-1");
}

TEST_CASE("emerge_output: colours, spinners, headers and footers are skipped")
{
  const std::string text =
    "\x1b]0;emerge\x07\nCalculating dependencies  ... \r\x1b[32;01m.\x1b[0m done!\n"
    "\x1b[32m[\x1b[0m\x1b[32;01mebuild\x1b[0m  \x1b[32;01mN\x1b[0m     \x1b[32m]\x1b[0m "
    "\x1b[32;01mdev-libs/foo-1.0\x1b[0m"
    "::\x1b[36mgentoo\x1b[0m  \x1b[31;01mUSE=\"\x1b[0m\x1b[31;01mssl\x1b[0m\x1b[31;01m\"\x1b[0m 12 KiB\r\n"
    "\nTotal: 1 package (1 new), Size of downloads: 12 KiB\n"
    " * IMPORTANT: 2 news items need reading for repository 'gentoo'.\n"
    "Dependency resolution took 2.51 s (backtrack: 0/20).\n"
    "[1] /var/db/repos/gentoo\n";
  const auto entry = only_entry(text);
  CHECK(entry.cpv == "dev-libs/foo-1.0");
  CHECK(entry.repo == "gentoo");
  CHECK(entry.use.enabled == Strings{"ssl"});
  CHECK(entry.size == "12 KiB");
  CHECK(parse_emerge_output("")->entries.empty());
}

TEST_CASE("emerge_output: an unreadable package is an error naming the line")
{
  const auto list = parse_emerge_output("\n[ebuild  N     ] not-a-package\n");
  REQUIRE_FALSE(list.has_value());
  CHECK(list.error().message == "emerge output line 2: cannot read package 'not-a-package'");
  CHECK_FALSE(parse_emerge_output("[ebuild  N     ] dev-libs/foo-1.0:\n").has_value());
  CHECK_FALSE(parse_emerge_output("[ebuild  N     ]\n").has_value());
}

TEST_CASE("emerge_output: JSON form")
{
  const auto list =
    parse_emerge_output("[binary   R    ] dev-libs/foo-1.2-3:0/1.2::gentoo  USE=\"a -b\" ABI_X86=\"(64)\"");
  REQUIRE(list.has_value());
  const auto out = merge_list_to_json(*list);
  CHECK(out["reverse_display"] == false);
  const auto& entry = out["entries"][0];
  CHECK(entry["type"] == "binary");
  CHECK(entry["cpv"] == "dev-libs/foo-1.2");
  CHECK(entry["build_id"] == 3);
  CHECK(entry["subslot"] == "1.2");
  CHECK(entry["use"]["enabled"] == nlohmann::json{"a"});
  CHECK(entry["use_expand"]["ABI_X86"]["enabled"] == nlohmann::json{"64"});
}
