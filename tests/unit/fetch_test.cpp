// Checksum files, mirrors, the lock and the unpacking of downloads, without a network.
#include "builder/fetch/fetch.hpp"
#include "builder/lock.hpp"
#include "builder/binaries/unpack.hpp"
#include "bundle/sha256.hpp"
#include "test_util.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

namespace kubexm {
namespace {

using test::TempDir;
using test::write_file;

const std::string k_a(64, 'a');
const std::string k_b(64, 'b');

TEST(ChecksumFile, BareDigest) {
  EXPECT_EQ(digest_from_checksum_file(k_a + "\n", ChecksumFormat::bare, "kubelet").value(), k_a);
  // Upper case is accepted and normalized.
  EXPECT_EQ(digest_from_checksum_file(std::string(64, 'A'), ChecksumFormat::bare, "kubelet").value(), k_a);
  // "HEX  NAME" is accepted when NAME is this file.
  EXPECT_EQ(digest_from_checksum_file(k_a + "  kubelet\n", ChecksumFormat::bare, "kubelet").value(), k_a);
  auto other = digest_from_checksum_file(k_a + "  kubectl\n", ChecksumFormat::bare, "kubelet");
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().message().find("expected only the SHA-256 of kubelet"), std::string::npos);
  EXPECT_FALSE(digest_from_checksum_file("<html>404</html>", ChecksumFormat::bare, "kubelet"));
  EXPECT_FALSE(digest_from_checksum_file(k_a.substr(1), ChecksumFormat::bare, "kubelet"));
}

TEST(ChecksumFile, SumsFindTheLineByFileName) {
  auto sums = k_a + "  etcd-v3.5.25-linux-amd64.tar.gz\n" + k_b + " *etcd-v3.5.25-linux-arm64.tar.gz\n";
  EXPECT_EQ(digest_from_checksum_file(sums, ChecksumFormat::sums, "etcd-v3.5.25-linux-arm64.tar.gz").value(), k_b);
  // A path before the name (checksums made outside the release directory) is tolerated.
  EXPECT_EQ(digest_from_checksum_file(k_a + "  _dist/helm.tar.gz\n", ChecksumFormat::sums, "helm.tar.gz").value(), k_a);
  auto missing = digest_from_checksum_file(sums, ChecksumFormat::sums, "etcd-v3.5.25-linux-s390x.tar.gz");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("it does not list etcd-v3.5.25-linux-s390x.tar.gz (it lists "
                                           "etcd-v3.5.25-linux-amd64.tar.gz, etcd-v3.5.25-linux-arm64.tar.gz)"),
            std::string::npos)
      << missing.error().message();
}

TEST(ChecksumFile, PgpClearSignedSums) {
  auto text = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n" + k_a + "  runc.amd64\n" + k_b +
              "  runc.arm64\n-----BEGIN PGP SIGNATURE-----\n\niQIzBAEB\n-----END PGP SIGNATURE-----\n";
  EXPECT_EQ(digest_from_checksum_file(text, ChecksumFormat::sums, "runc.arm64").value(), k_b);
}

TEST(Mirror, LongestPrefixWins) {
  std::vector<Mirror> mirrors{parse_mirror("https://github.com=http://m/gh").value(),
                              parse_mirror("https://github.com/etcd-io=http://m/etcd").value()};
  EXPECT_EQ(apply_mirrors(mirrors, "https://github.com/etcd-io/etcd/x"), "http://m/etcd/etcd/x");
  EXPECT_EQ(apply_mirrors(mirrors, "https://github.com/containerd/y"), "http://m/gh/containerd/y");
  EXPECT_EQ(apply_mirrors(mirrors, "https://dl.k8s.io/z"), "https://dl.k8s.io/z");
  // Prefixes match on a path boundary only.
  EXPECT_EQ(apply_mirrors(mirrors, "https://github.com.example/x"), "https://github.com.example/x");
  EXPECT_EQ(apply_mirrors(mirrors, "https://github.com/etcd-iox/y"), "http://m/gh/etcd-iox/y");
}

TEST(Mirror, BadSpecsAreUsageErrors) {
  for (const char* text : {"https://a", "https://a=ftp://b", "a=https://b", "https://a="}) {
    auto mirror = parse_mirror(text);
    ASSERT_FALSE(mirror) << text;
    EXPECT_EQ(mirror.error().kind(), ErrorKind::usage);
  }
}

Lock sample_lock() {
  Lock lock{
      {"site", "1.0.0", "1.32.10", {"amd64", "arm64"}, {"debian-12"}, {"master"}, {{"pause", "3.10"}}, "none", {}},
      {},
      {},
      {}};
  lock.artifacts.push_back({"etcd",
                            "3.5.25",
                            "amd64",
                            "https://github.com/etcd-io/etcd/e.tar.gz",
                            1234,
                            k_a,
                            ArtifactKind::tar_gz,
                            "https://github.com/etcd-io/etcd/SHA256SUMS",
                            PinSource::catalogue,
                            {{"etcd-v3.5.25-linux-amd64/etcd", "etcd", 10, k_b}}});
  return lock;
}

TEST(LockFile, RoundTripsAndSortsKeys) {
  auto text = format_lock(sample_lock());
  auto parsed = parse_lock(text, "kubexm.lock");
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(format_lock(*parsed), text);
  // Keys are sorted and one value is on each line, so a diff shows exactly what changed.
  EXPECT_LT(text.find("\"arch\""), text.find("\"url\""));
  EXPECT_NE(text.find("\n      \"sha256\": \"" + k_a + "\",\n"), std::string::npos) << text;
}

TEST(LockFile, DamagedLocksAreRefusedWithWhatIsWrong) {
  EXPECT_FALSE(parse_lock("{", "l"));
  EXPECT_FALSE(parse_lock("{\"kind\": \"other\"}", "l"));
  auto text = format_lock(sample_lock());
  auto bad = text;
  bad.replace(bad.find(k_a), 64, "zz");
  auto parsed = parse_lock(bad, "kubexm.lock");
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().message().find("kubexm.lock: artifact 1: 'sha256' is missing or malformed"),
            std::string::npos)
      << parsed.error().message();
}

TEST(LockFile, ARePinnedArtifactMakesTheLockStale) {
  auto lock = sample_lock();
  Plan plan{"site.yaml", lock.bundle, {}, {}, {}, {}, {}, {}, {}};
  Artifact etcd;
  etcd.component = "etcd";
  etcd.version = "3.5.25";
  etcd.arch = "amd64";
  etcd.url = lock.artifacts[0].url;
  etcd.kind = ArtifactKind::tar_gz;
  etcd.checksum_url = lock.artifacts[0].checksum_url;
  etcd.members = {{"etcd-v3.5.25-linux-amd64/etcd", "etcd"}};
  etcd.pin = k_a;
  etcd.pin_source = PinSource::manifest;
  plan.artifacts.push_back(etcd);
  EXPECT_TRUE(check_lock_matches(lock, plan, "kubexm.lock"));
  plan.artifacts[0].pin = k_b;
  auto repinned = check_lock_matches(lock, plan, "kubexm.lock");
  ASSERT_FALSE(repinned);
  EXPECT_NE(repinned.error().message().find("etcd 3.5.25 amd64: the manifest pins " + k_b + ", the lock has " + k_a),
            std::string::npos)
      << repinned.error().message();
  plan.artifacts[0].pin = k_a;
  plan.artifacts[0].members.push_back({"etcd-v3.5.25-linux-amd64/etcdutl", "etcdutl"});
  auto more_binaries = check_lock_matches(lock, plan, "kubexm.lock");
  ASSERT_FALSE(more_binaries);
  EXPECT_NE(more_binaries.error().message().find("the catalogue's list of binaries changed"), std::string::npos);
}

TEST(LockFile, StaleLockListsTheDifferences) {
  auto lock = sample_lock();
  Plan plan{"site.yaml", lock.bundle, {}, {}, {}, {}, {}, {}, {}};
  plan.bundle.roles = {"master", "worker"};
  Artifact etcd;
  etcd.component = "etcd";
  etcd.version = "3.5.27";
  etcd.arch = "amd64";
  etcd.url = "https://github.com/etcd-io/etcd/e2.tar.gz";
  plan.artifacts.push_back(etcd);
  auto status = check_lock_matches(lock, plan, "kubexm.lock");
  ASSERT_FALSE(status);
  const auto& message = status.error().message();
  EXPECT_NE(message.find("not in the lock: etcd 3.5.27 amd64"), std::string::npos) << message;
  EXPECT_NE(message.find("no longer in the manifest: etcd 3.5.25 amd64"), std::string::npos) << message;
  EXPECT_NE(message.find("roles: the lock has [\"master\"], the manifest [\"master\", \"worker\"]"), std::string::npos)
      << message;
  EXPECT_NE(message.find("kubexm-builder resolve -f site.yaml -o kubexm.lock"), std::string::npos) << message;
}

// A .tar.gz with the given members, written with libarchive.
void write_tarball(const std::filesystem::path& path, const std::vector<std::pair<std::string, std::string>>& files) {
  auto* archive = archive_write_new();
  archive_write_add_filter_gzip(archive);
  archive_write_set_format_pax_restricted(archive);
  ASSERT_EQ(archive_write_open_filename(archive, path.c_str()), ARCHIVE_OK);
  for (const auto& [name, data] : files) {
    auto* entry = archive_entry_new();
    archive_entry_set_pathname(entry, name.c_str());
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_perm(entry, 0755);
    archive_entry_set_size(entry, static_cast<la_int64_t>(data.size()));
    archive_write_header(archive, entry);
    archive_write_data(archive, data.data(), data.size());
    archive_entry_free(entry);
  }
  archive_write_close(archive);
  archive_write_free(archive);
}

// This test program: a real ELF executable for the arch it was built for.
std::string self_binary() {
  return test::read_file(std::filesystem::read_symlink("/proc/self/exe"));
}

std::string host_arch() {
#if defined(__x86_64__)
  return "amd64";
#else
  return "arm64";
#endif
}

std::string other_arch() {
  return host_arch() == "amd64" ? "arm64" : "amd64";
}

TEST(Unpack, TakesMembersChecksElfAndWrites) {
  TempDir dir;
  auto elf = self_binary();
  write_tarball(dir / "a.tar.gz", {{"./bin/tool", elf}, {"./README", "text"}});
  UnpackRequest request{dir / "a.tar.gz",     ArtifactKind::tar_gz, {{"bin/tool", "tool"}}, host_arch(), "tool 1 x",
                        "https://x/a.tar.gz", dir / "out"};
  auto members = unpack_artifact(request);
  ASSERT_TRUE(members) << members.error().message();
  ASSERT_EQ(members->size(), 1u);
  EXPECT_EQ((*members)[0].sha256, to_hex(sha256_of(elf)));
  EXPECT_EQ((*members)[0].size, elf.size());
  EXPECT_EQ(test::read_file(dir / "out/tool"), elf);
}

TEST(Unpack, BinaryOfAnotherArchIsRefused) {
  TempDir dir;
  write_file(dir / "kubelet", self_binary());
  UnpackRequest request{dir / "kubelet",     ArtifactKind::file,          {{"", "kubelet"}}, other_arch(),
                        "kubelet 1.32.10 x", "https://dl.k8s.io/kubelet", std::nullopt};
  auto members = unpack_artifact(request);
  ASSERT_FALSE(members);
  EXPECT_EQ(members.error().kind(), ErrorKind::verification);
  auto expected = fmt::format("kubelet is an {} binary, but it is filed under {}",
                              host_arch() == "amd64" ? "x86-64 (amd64)" : "AArch64 (arm64)", other_arch());
  EXPECT_NE(members.error().message().find(expected), std::string::npos) << members.error().message();
}

TEST(Unpack, MissingAndNonElfMembersAreAllReported) {
  TempDir dir;
  write_tarball(dir / "a.tar.gz", {{"bin/script", "#!/bin/sh\n"}});
  UnpackRequest request{dir / "a.tar.gz", ArtifactKind::tar_gz, {{"bin/script", "script"}, {"bin/ctr", "ctr"}},
                        host_arch(),      "containerd 2 x",     "https://x/a.tar.gz",
                        std::nullopt};
  auto members = unpack_artifact(request);
  ASSERT_FALSE(members);
  EXPECT_NE(members.error().message().find("bin/script is not an ELF executable"), std::string::npos);
  EXPECT_NE(members.error().message().find("bin/ctr is not in the archive"), std::string::npos);
}

TEST(Unpack, NotATarballIsAnError) {
  TempDir dir;
  write_file(dir / "a.tar.gz", "<html>not found</html>");
  UnpackRequest request{dir / "a.tar.gz", ArtifactKind::tar_gz, {{"x", "x"}}, "amd64",
                        "x 1 amd64",      "https://x",          std::nullopt};
  auto members = unpack_artifact(request);
  ASSERT_FALSE(members);
  EXPECT_NE(members.error().message().find("x 1 amd64"), std::string::npos) << members.error().message();
}

TEST(Cache, ObjectsAreKeyedByDigest) {
  TempDir dir;
  Cache cache(dir / "cache");
  ASSERT_TRUE(cache.prepare());
  EXPECT_EQ(cache.object(k_a), dir / "cache/sha256/aa" / k_a);
  EXPECT_FALSE(cache.has(k_a));
  write_file(cache.partial("x"), "12345");
  ASSERT_TRUE(cache.adopt(cache.partial("x"), k_a));
  EXPECT_TRUE(cache.has(k_a));
  EXPECT_TRUE(cache.has(k_a, 5));
  EXPECT_FALSE(cache.has(k_a, 6));
  EXPECT_FALSE(std::filesystem::exists(cache.partial("x")));
}

} // namespace
} // namespace kubexm
