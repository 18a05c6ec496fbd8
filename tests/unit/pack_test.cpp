#include "bundle/extract.hpp"
#include "bundle/reader.hpp"
#include "tests/unit/test_util.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

namespace kubexm {
namespace {

namespace fs = std::filesystem;

class PackTest : public ::testing::Test {
protected:
  void SetUp() override { test::make_tree(dir / "tree"); }

  PackResult pack(const fs::path& out, unsigned threads = 0) {
    auto result = test::pack_tree(dir / "tree", out, threads);
    EXPECT_TRUE(result) << (result ? "" : result.error().message());
    return result.value_or(PackResult{});
  }

  test::TempDir dir;
};

TEST_F(PackTest, PackingTwiceIsByteIdentical) {
  auto first = pack(dir / "a", 1);
  // Different worker counts and a touched tree (same content, new mtimes) change nothing.
  ::utimensat(AT_FDCWD, (dir / "tree/README").c_str(), nullptr, 0);
  auto second = pack(dir / "b", 4);
  EXPECT_EQ(test::read_file(first.archive), test::read_file(second.archive));
  EXPECT_EQ(test::read_file(first.installer), test::read_file(second.installer));
  EXPECT_EQ(first.bundle_digest, second.bundle_digest);
}

// The builder may run under `umask 077`: what it writes into a tree must pack into the same
// bundle as under the usual umask, so written files and directories get exactly their modes.
TEST_F(PackTest, APrivateUmaskChangesNeitherWrittenModesNorTheBundle) {
  auto write_generated = [&](const fs::path& root) {
    ASSERT_TRUE(make_directories(root / "prepare/etc/containerd"));
    ASSERT_TRUE(write_file_atomic(root / "prepare/etc/containerd/config.toml", "version = 3\n", 0644));
  };
  write_generated(dir / "tree");
  auto first = pack(dir / "a");
  ASSERT_TRUE(remove_tree(dir / "tree/prepare"));
  auto old = ::umask(077);
  write_generated(dir / "tree");
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat((dir / "tree/prepare/etc").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(::stat((dir / "tree/prepare/etc/containerd/config.toml").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  auto second = pack(dir / "b");
  EXPECT_EQ(first.bundle_digest, second.bundle_digest);
}

TEST_F(PackTest, ContentChangesChangeTheDigest) {
  auto first = pack(dir / "a");
  test::write_file(dir / "tree/README", "hello!\n");
  auto second = pack(dir / "b");
  EXPECT_NE(first.bundle_digest, second.bundle_digest);
}

TEST_F(PackTest, HeaderListsEveryFileWithNormalizedModes) {
  auto packed = pack(dir / "out");
  auto header = read_bundle_header(packed.archive);
  ASSERT_TRUE(header) << header.error().message();
  EXPECT_EQ(header->info.name, "unit");
  EXPECT_EQ(header->info.created_by, "kubexm-builder test");
  EXPECT_EQ(header->info.source_date_epoch, 1700000000);
  EXPECT_EQ(header->file_count, 3u);
  EXPECT_EQ(header->digest, sha256_of(header->sums_text));
  EXPECT_EQ(header->digest, packed.bundle_digest);
  auto find = [&](std::string_view path) { return std::ranges::find(header->index, path, &IndexEntry::path); };
  ASSERT_NE(find("bin/amd64/kubelet"), header->index.end());
  EXPECT_EQ(find("bin/amd64/kubelet")->mode, 0755u);
  EXPECT_EQ(find("bin/amd64/kubelet")->size, 100000u);
  EXPECT_EQ(find("site/nodes/n1/etc/kubernetes/pki/ca.key")->mode, 0600u);
  EXPECT_EQ(find("images/empty")->kind, EntryKind::directory);
}

TEST_F(PackTest, ExtractRecreatesTheTreeAndIsIdempotent) {
  auto packed = pack(dir / "out");
  auto report = extract_bundle(packed.installer, dir / "target", nullptr);
  ASSERT_TRUE(report) << report.error().message();
  EXPECT_EQ(report->outcome, ExtractOutcome::extracted);
  EXPECT_EQ(test::read_file(dir / "target/bin/amd64/kubelet"), std::string(100000, 'k'));
  EXPECT_TRUE(fs::is_directory(dir / "target/images/empty"));
  struct stat st {};
  ASSERT_EQ(::stat((dir / "target/site/nodes/n1/etc/kubernetes/pki/ca.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_mtime, 1700000000);
  EXPECT_EQ(sha256_of(test::read_file(dir / "target/SHA256SUMS")), packed.bundle_digest);

  auto again = extract_bundle(packed.archive, dir / "target", nullptr);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(again->outcome, ExtractOutcome::already_present);
}

TEST_F(PackTest, ASecondExtractNoticesADamagedTarget) {
  auto packed = pack(dir / "out");
  ASSERT_TRUE(extract_bundle(packed.archive, dir / "target", nullptr));
  fs::resize_file(dir / "target/bin/amd64/kubelet", 10);
  fs::remove(dir / "target/README");
  auto again = extract_bundle(packed.archive, dir / "target", nullptr);
  ASSERT_FALSE(again);
  const auto& message = again.error().message();
  EXPECT_NE(message.find("2 members changed"), std::string::npos) << message;
  EXPECT_NE(message.find("bin/amd64/kubelet (10 bytes, expected 100000)"), std::string::npos) << message;
  EXPECT_NE(message.find("README (missing)"), std::string::npos) << message;
}

TEST_F(PackTest, ExtractRefusesAForeignNonEmptyTargetAndLeavesIt) {
  auto packed = pack(dir / "out");
  test::write_file(dir / "target/mine", "keep me");
  auto report = extract_bundle(packed.archive, dir / "target", nullptr);
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().message().find("holds other files"), std::string::npos);
  EXPECT_EQ(test::read_file(dir / "target/mine"), "keep me");
  EXPECT_FALSE(fs::exists(dir / ".target.kubexm-staging"));
}

TEST_F(PackTest, ExtractReplacesAStagingDirectoryLeftByAKilledRun) {
  auto packed = pack(dir / "out");
  test::write_file(dir / ".target.kubexm-staging/.kubexm-staging", "");
  test::write_file(dir / ".target.kubexm-staging/bin/half", "half-written");
  auto report = extract_bundle(packed.archive, dir / "target", nullptr);
  ASSERT_TRUE(report) << report.error().message();
  EXPECT_FALSE(fs::exists(dir / "target/bin/half"));
  EXPECT_FALSE(fs::exists(dir / ".target.kubexm-staging"));
}

TEST_F(PackTest, ExtractWillNotDeleteADirectoryThatIsNotStaging) {
  auto packed = pack(dir / "out");
  test::write_file(dir / ".target.kubexm-staging/important", "data");
  auto report = extract_bundle(packed.archive, dir / "target", nullptr);
  ASSERT_FALSE(report);
  EXPECT_EQ(test::read_file(dir / ".target.kubexm-staging/important"), "data");
}

TEST_F(PackTest, TreesWithLinksOrReservedNamesAreRefusedWithEveryProblem) {
  fs::create_symlink("/etc/passwd", dir / "tree/link");
  test::write_file(dir / "tree/.kubexm-staging", "");
  auto result = test::pack_tree(dir / "tree", dir / "out");
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message().find("link: is a symlink"), std::string::npos) << result.error().message();
  EXPECT_NE(result.error().message().find(".kubexm-staging: the name is reserved"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "out/install"));
}

TEST_F(PackTest, ATreeWithoutBundleYamlIsExplained) {
  fs::remove(dir / "tree/bundle.yaml");
  auto result = test::pack_tree(dir / "tree", dir / "out");
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message().find("needs bundle.yaml"), std::string::npos);
}

TEST_F(PackTest, TamperedPayloadFailsVerificationNamingTheMember) {
  auto packed = pack(dir / "out");
  // A flipped byte near the end of the self-extracting file's payload.
  auto bytes = test::read_file(packed.installer);
  bytes[bytes.size() - k_trailer_size - 10] ^= 0x20;
  test::write_file(dir / "tampered", bytes, 0755);
  auto verified = verify_bundle(dir / "tampered", nullptr);
  ASSERT_FALSE(verified);
  EXPECT_EQ(verified.error().kind(), ErrorKind::verification);
}

} // namespace
} // namespace kubexm
