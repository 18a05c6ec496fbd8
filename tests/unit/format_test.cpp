#include "bundle/bundle_info.hpp"
#include "bundle/fs.hpp"
#include "bundle/index.hpp"
#include "bundle/path_safety.hpp"
#include "bundle/sums.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

namespace kubexm {
namespace {

const std::string k_hash_a(64, 'a');

TEST(PathSafety, AcceptsPlainRelativePaths) {
  EXPECT_EQ(check_member_path("bin/amd64/kubelet").value(), "bin/amd64/kubelet");
  EXPECT_EQ(check_member_path("images/").value(), "images");
  EXPECT_EQ(check_member_path(".hidden/file").value(), ".hidden/file");
}

TEST(PathSafety, RejectsEscapesAndOddNames) {
  for (const char* bad : {"/etc/passwd", "../x", "a/../../x", "a/..", "./a", "a/./b", "a//b", "", "a\\b", "a\nb"}) {
    EXPECT_FALSE(check_member_path(bad)) << bad;
  }
  EXPECT_FALSE(check_member_path(std::string(300, 'x')));
  EXPECT_FALSE(check_member_path(std::string(5000, 'x')));
}

TEST(Sums, RoundTripsCoreutilsFormat) {
  std::vector<SumEntry> entries{{"a", *digest_from_hex(k_hash_a)}, {"dir/b c", sha256_of("b")}};
  auto text = format_sums(entries);
  EXPECT_EQ(text.substr(0, 67), k_hash_a + "  a");
  auto parsed = parse_sums(text, "SHA256SUMS");
  ASSERT_TRUE(parsed) << parsed.error().message();
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[1].path, "dir/b c");
  EXPECT_EQ((*parsed)[1].digest, sha256_of("b"));
}

TEST(Sums, AcceptsBinaryMarker) {
  auto parsed = parse_sums(k_hash_a + " *file\n", "S");
  ASSERT_TRUE(parsed);
  EXPECT_EQ((*parsed)[0].path, "file");
}

TEST(Sums, RejectsMalformedLinesWithTheLineNumber) {
  struct Case {
    std::string text;
    std::string expected;
  };
  for (const auto& c : std::vector<Case>{
           {k_hash_a + "  a\n" + "zz  b\n", "line 2"},
           {k_hash_a + "  a", "missing final newline"},
           {k_hash_a + "  ../a\n", "unsafe path"},
           {k_hash_a + "  a\n" + k_hash_a + "  a\n", "listed twice"},
           {"\\" + k_hash_a + "  a\\nb\n", "escaped"},
           {std::string(63, 'a') + "g  a\n", "not a SHA-256"},
       }) {
    auto parsed = parse_sums(c.text, "SHA256SUMS");
    ASSERT_FALSE(parsed) << c.text;
    EXPECT_NE(parsed.error().message().find(c.expected), std::string::npos) << parsed.error().message();
    EXPECT_EQ(parsed.error().kind(), ErrorKind::verification);
  }
}

TEST(Index, RoundTripsAndKeepsOrder) {
  std::vector<IndexEntry> entries{{EntryKind::directory, 0755, 0, "bin"},
                                  {EntryKind::file, 0755, 12, "bin/kubelet"},
                                  {EntryKind::file, 0600, 3, "key"}};
  auto text = format_index(entries);
  EXPECT_EQ(text, "kubexm-index 1\nd 0755 0 bin\nf 0755 12 bin/kubelet\nf 0600 3 key\n");
  auto parsed = parse_index(text);
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed->size(), 3u);
  EXPECT_EQ((*parsed)[1].size, 12u);
}

TEST(Index, RejectsWhatTheGrammarForbids) {
  struct Case {
    std::string body;
    std::string expected;
  };
  for (const auto& c : std::vector<Case>{
           {"f 4755 1 a\n", "mode '4755'"},
           {"f 0666 1 a\n", "mode '0666'"},
           {"l 0644 1 a\n", "kind 'l'"},
           {"d 0755 5 a\n", "directory with size"},
           {"f 0644 01 a\n", "not a number"},
           {"f 0644 -1 a\n", "not a number"},
           {"f 0644 1 /a\n", "unsafe path"},
           {"f 0644 1 b\nf 0644 1 a\n", "out of order"},
           {"f 0644 1 a\nf 0644 1 a\n", "out of order or listed twice"},
           {"f 0644 1 dir/a\n", "before its directory"},
           {"f 0644 1 a", "missing final newline"},
       }) {
    auto parsed = parse_index("kubexm-index 1\n" + c.body);
    ASSERT_FALSE(parsed) << c.body;
    EXPECT_NE(parsed.error().message().find(c.expected), std::string::npos) << parsed.error().message();
  }
}

TEST(Index, RejectsOtherVersions) {
  auto parsed = parse_index("kubexm-index 2\n");
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().message().find("not supported"), std::string::npos);
  EXPECT_FALSE(parse_index("something else\n"));
}

TEST(Index, NormalizesModesPerKind) {
  EXPECT_EQ(normalized_mode(EntryKind::file, 0664), 0644u);
  EXPECT_EQ(normalized_mode(EntryKind::file, 04775), 0755u);
  EXPECT_EQ(normalized_mode(EntryKind::file, 0600), 0600u);
  EXPECT_EQ(normalized_mode(EntryKind::file, 0740), 0700u);
  EXPECT_EQ(normalized_mode(EntryKind::directory, 01777), 0755u);
  EXPECT_EQ(normalized_mode(EntryKind::directory, 0700), 0700u);
}

const char* k_good_info = "name: site-a\nversion: \"1.2.3\"\narches: [amd64, arm64]\n"
                          "os_profiles: [rocky-9]\nroles: [master]\n";

TEST(BundleInfo, ParsesATreeFileAndFormatsCanonically) {
  auto info = parse_bundle_info(k_good_info, "bundle.yaml", InfoSource::tree);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->name, "site-a");
  EXPECT_EQ(info->arches, (std::vector<std::string>{"amd64", "arm64"}));
  info->created_by = "kubexm-builder 0.1.0";
  info->source_date_epoch = 42;
  auto text = format_bundle_info(*info);
  auto again = parse_bundle_info(text, "bundle.yaml", InfoSource::bundle);
  ASSERT_TRUE(again) << again.error().message() << "\n" << text;
  EXPECT_EQ(format_bundle_info(*again), text);
  EXPECT_EQ(archive_file_name(*again), "kubexm-dist-site-a-1.2.3.tar.zst");
}

TEST(BundleInfo, ReportsEveryProblemWithItsLine) {
  auto info = parse_bundle_info("name: Bad Name\nversion: \"1\"\narches: [x86_64, amd64]\n"
                                "os_profiles: [rocky-9]\nroles: [mastr]\ncolour: blue\n",
                                "site.yaml", InfoSource::tree);
  ASSERT_FALSE(info);
  const auto& message = info.error().message();
  EXPECT_NE(message.find("site.yaml: line 1: name"), std::string::npos) << message;
  EXPECT_NE(message.find("line 3: arches: 'x86_64' is not one of amd64, arm64 (kubexm calls it amd64)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("line 5: roles: 'mastr'"), std::string::npos) << message;
  EXPECT_NE(message.find("line 6: unknown key 'colour'"), std::string::npos) << message;
}

TEST(BundleInfo, BundleSourceRequiresWhatPackWrites) {
  auto info = parse_bundle_info(k_good_info, "bundle.yaml", InfoSource::bundle);
  ASSERT_FALSE(info);
  EXPECT_NE(info.error().message().find("'format' is missing"), std::string::npos);
  EXPECT_NE(info.error().message().find("'created_by' is missing"), std::string::npos);
}

TEST(BundleInfo, RejectsNewerFormatsAndBadYaml) {
  auto newer = parse_bundle_info(std::string(k_good_info) + "format: 9\n", "b", InfoSource::tree);
  ASSERT_FALSE(newer);
  EXPECT_NE(newer.error().message().find("newer than this program reads"), std::string::npos);
  auto broken = parse_bundle_info("name: [unclosed\n", "b", InfoSource::tree);
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().message().find("line"), std::string::npos);
}

// A killed writer's pid can name a live, unrelated process by the time the file is written
// again: pid 1 stands for it here.
TEST(AtomicFile, StaleTemporariesOfALiveLookingPidGoOnlyWhenTheCallerExcludesOtherWriters) {
  namespace fs = std::filesystem;
  auto dir = fs::temp_directory_path() / fmt::format("kubexm-stale-{}", ::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto target = dir / "kubectl";
  auto touch = [](const fs::path& path) { std::ofstream(path) << "x"; };
  auto reused = fs::path(target.string() + ".tmp-1");
  auto dead = fs::path(target.string() + ".tmp-999999999");
  auto ours = fs::path(target.string() + fmt::format(".tmp-{}", ::getpid()));
  auto other = dir / "runc.tmp-999999999";
  for (const auto& path : {reused, dead, ours, other}) {
    touch(path);
  }
  remove_stale_temporaries(target);
  EXPECT_TRUE(fs::exists(reused));
  EXPECT_FALSE(fs::exists(dead));
  remove_stale_temporaries(target, Writers::all_but_us);
  EXPECT_FALSE(fs::exists(reused));
  EXPECT_TRUE(fs::exists(ours));
  EXPECT_TRUE(fs::exists(other)); // another path's temporaries are its writer's business
  fs::remove_all(dir);
}

} // namespace
} // namespace kubexm
