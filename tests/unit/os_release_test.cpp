// os-release(5) parsing: the host's own file, and the quoting rules of the spec.
#include "bundle/os_release.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>

namespace kubexm {
namespace {

TEST(OsRelease, ReadsThisHostsFile) {
  auto text = read_text_file("/etc/os-release", 1 << 16);
  ASSERT_TRUE(text) << text.error().message();
  auto release = parse_os_release(*text, "/etc/os-release");
  ASSERT_TRUE(release) << release.error().message();
  // Whatever this host is, its ID is a lower-case word and PRETTY_NAME is set.
  EXPECT_FALSE(release->id.empty());
  EXPECT_EQ(release->id.find_first_of(" \"'"), std::string::npos);
  EXPECT_FALSE(release->pretty_name.empty());
}

TEST(OsRelease, QuotingAndEscapes) {
  auto release = parse_os_release("# comment\n\nNAME=\"Rocky Linux\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n"
                                  "VERSION_ID='9.3'\nPRETTY_NAME=\"Rocky \\\"Blue\\\" \\$9\"\n",
                                  "os-release");
  ASSERT_TRUE(release) << release.error().message();
  EXPECT_EQ(release->id, "rocky");
  EXPECT_EQ(release->id_like, (std::vector<std::string>{"rhel", "centos", "fedora"}));
  EXPECT_EQ(release->version_id, "9.3");
  EXPECT_EQ(release->pretty_name, "Rocky \"Blue\" $9");
}

TEST(OsRelease, BareValuesAndDefaults) {
  auto release = parse_os_release("VERSION_ID=V10\n", "os-release");
  ASSERT_TRUE(release);
  EXPECT_EQ(release->id, "linux"); // os-release(5): ID defaults to "linux"
  EXPECT_EQ(release->version_id, "V10");
  EXPECT_EQ(release->pretty_name, "linux V10");
}

TEST(OsRelease, MalformedLinesAreNamed) {
  auto release = parse_os_release("ID=debian\nthis is not a pair\n", "/mnt/etc/os-release");
  ASSERT_FALSE(release);
  EXPECT_NE(release.error().message().find("/mnt/etc/os-release: line 2: expected KEY=VALUE"), std::string::npos);
  EXPECT_FALSE(parse_os_release("ID=\"debian\n", "x"));
}

} // namespace
} // namespace kubexm
