// The installer's view of a host: os-release and arch read inside a root (symlinks never
// leave it), the bundle's package target chosen by ID, VERSION_ID and ID_LIKE, and dpkg's
// database read for what is installed and provided.
#include "installer/host.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>

namespace kubexm {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using test::write_file;

// A root with an os-release and a real x86-64 or aarch64 program (this test binary).
void make_root(const fs::path& root, std::string_view os_release) {
  write_file(root / "usr/lib/os-release", os_release);
  fs::create_directories(root / "etc");
  fs::create_symlink("../usr/lib/os-release", root / "etc/os-release");
  fs::create_directories(root / "usr/bin");
  fs::copy_file(fs::read_symlink("/proc/self/exe"), root / "usr/bin/dpkg");
}

std::string this_arch() {
#if defined(__x86_64__)
  return "amd64";
#else
  return "arm64";
#endif
}

TEST(Host, ReadsOsReleaseAndArchInsideTheRoot) {
  TempDir dir;
  make_root(dir.path(), "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n");
  auto host = detect_host(dir.path());
  ASSERT_TRUE(host) << host.error().message();
  EXPECT_EQ(host->os.id, "debian");
  EXPECT_EQ(host->os.version_id, "12");
  EXPECT_EQ(host->arch, this_arch());
  EXPECT_EQ(host->describe(), "Debian GNU/Linux 12 (bookworm) (ID=debian VERSION_ID=12), " + this_arch());
}

TEST(Host, AnAbsoluteSymlinkIsResolvedInsideTheRootNotOnTheBuildHost) {
  TempDir dir;
  make_root(dir.path(), "ID=rocky\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.5\"\n");
  fs::remove(dir / "etc/os-release");
  fs::create_symlink("/usr/lib/os-release", dir / "etc/os-release");
  auto host = detect_host(dir.path());
  ASSERT_TRUE(host) << host.error().message();
  EXPECT_EQ(host->os.id, "rocky"); // this machine's own /usr/lib/os-release says debian
}

TEST(Host, ARootWithoutOsReleaseOrProgramsIsExplained) {
  TempDir dir;
  auto host = detect_host(dir.path());
  ASSERT_FALSE(host);
  EXPECT_NE(host.error().message().find("no /etc/os-release or /usr/lib/os-release"), std::string::npos);
  write_file(dir / "etc/os-release", "ID=debian\nVERSION_ID=12\n");
  host = detect_host(dir.path());
  ASSERT_FALSE(host);
  EXPECT_NE(host.error().message().find("no ELF program"), std::string::npos) << host.error().message();
}

std::vector<PackageTargetRecord> targets() {
  return {{"debian-12", "packages/debian/12", "deb", {"amd64", "arm64"}, {"debian"}, {}, "12*"},
          {"rocky-9", "packages/rocky/9", "rpm", {"amd64"}, {"rocky"}, {}, "9*"},
          {"almalinux-9", "packages/almalinux/9", "rpm", {"amd64"}, {"almalinux"}, {"rhel"}, "9*"}};
}

Host host_of(std::string id, std::vector<std::string> like, std::string version) {
  return Host{"/", OsRelease{std::move(id), std::move(like), version, "A Linux " + version}, "amd64"};
}

TEST(Host, TheTargetIsChosenByIdVersionAndThenIdLike) {
  auto all = targets();
  auto rocky = choose_target(all, host_of("rocky", {"rhel", "centos", "fedora"}, "9.5"));
  ASSERT_TRUE(rocky);
  EXPECT_EQ((*rocky)->profile, "rocky-9");
  // CentOS Stream 9 has no profile of its own: ID_LIKE=rhel takes almalinux-9.
  auto centos = choose_target(all, host_of("centos", {"rhel", "fedora"}, "9"));
  ASSERT_TRUE(centos);
  EXPECT_EQ((*centos)->profile, "almalinux-9");
  auto old = choose_target(all, host_of("rocky", {"rhel"}, "8.9"));
  ASSERT_FALSE(old);
  EXPECT_NE(old.error().message().find("the bundle carries OS packages for debian-12 (amd64, arm64), rocky-9 (amd64), "
                                       "almalinux-9 (amd64): build a bundle whose manifest lists os_profiles: "
                                       "[rocky-8]"),
            std::string::npos)
      << old.error().message();
}

TEST(Host, DpkgStatusGivesInstalledAndProvidedAndHalfInstalled) {
  TempDir dir;
  make_root(dir.path(), "ID=debian\nVERSION_ID=12\n");
  write_file(dir / "var/lib/dpkg/status",
             "Package: libelogind0\nStatus: install ok installed\nArchitecture: amd64\nVersion: 252.9-1\n"
             "Provides: libsystemd0 (= 252.9-1), logind\nDescription: x\n more\n\n"
             "Package: tzdata\nStatus: install ok unpacked\nArchitecture: all\nVersion: 2025b-0\n\n"
             "Package: old\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1\n\n"
             "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n\n"
             "Package: held\nStatus: hold ok installed\nArchitecture: amd64\nVersion: 3\n\n"
             "Package: libelf1\nStatus: install reinstreq half-installed\nArchitecture: amd64\nVersion: 0.188-2.1\n");
  auto host = detect_host(dir.path());
  ASSERT_TRUE(host);
  auto db = installed_packages(*host, "deb");
  ASSERT_TRUE(db) << db.error().message();
  EXPECT_EQ(db->packages.size(), 5u);                   // "old" left only its config files
  EXPECT_TRUE(db->satisfies(*host, "held"));            // held at its version is installed
  EXPECT_TRUE(db->satisfies(*host, "no-such | libc6")); // alternatives: any one
  EXPECT_FALSE(db->satisfies(*host, "no-such | tzdata"));
  EXPECT_TRUE(db->satisfies(*host, "libc6"));
  EXPECT_TRUE(db->satisfies(*host, "libsystemd0")); // a provide
  EXPECT_TRUE(db->satisfies(*host, "logind"));
  EXPECT_FALSE(db->satisfies(*host, "tzdata")); // unpacked, not configured
  EXPECT_FALSE(db->packages.find("tzdata")->second.complete);
  EXPECT_FALSE(db->packages.find("tzdata")->second.unpack_again); // dpkg --configure finishes it
  EXPECT_FALSE(db->packages.find("libelf1")->second.complete);
  EXPECT_TRUE(db->packages.find("libelf1")->second.unpack_again); // killed while unpacking
  EXPECT_FALSE(db->packages.find("libc6")->second.unpack_again);
  EXPECT_FALSE(db->satisfies(*host, "old"));
  EXPECT_TRUE(db->satisfies(*host, "/usr/bin/dpkg")); // a file requirement, inside the root
  EXPECT_FALSE(db->satisfies(*host, "/usr/bin/no-such-file"));
}

TEST(Host, DpkgsJournalOverridesItsStatusFile) {
  // dpkg killed mid-unpack: status still says installed, the journal says otherwise.
  TempDir dir;
  make_root(dir.path(), "ID=debian\nVERSION_ID=12\n");
  write_file(dir / "var/lib/dpkg/status",
             "Package: libelf1\nStatus: install ok installed\nArchitecture: amd64\nVersion: 0.188-2.1\n\n"
             "Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2025b-0\n");
  write_file(dir / "var/lib/dpkg/updates/0000",
             "Package: libelf1\nStatus: install reinstreq half-installed\nArchitecture: amd64\nVersion: 0.188-2.1\n");
  write_file(dir / "var/lib/dpkg/updates/tmp.i", "Package: tzdata\nStatus: purge ok not-installed\n");
  auto host = detect_host(dir.path());
  ASSERT_TRUE(host);
  auto db = installed_packages(*host, "deb");
  ASSERT_TRUE(db) << db.error().message();
  ASSERT_EQ(db->packages.count("libelf1"), 1u);
  EXPECT_TRUE(db->packages.find("libelf1")->second.unpack_again);
  EXPECT_TRUE(db->satisfies(*host, "tzdata")); // tmp.i is dpkg's scratch file, not the journal
  EXPECT_FALSE(db->satisfies(*host, "libelf1"));
}

TEST(Host, GlobsMatchVersionIds) {
  EXPECT_TRUE(glob_match("9*", "9.5"));
  EXPECT_TRUE(glob_match("22.04", "22.04"));
  EXPECT_FALSE(glob_match("22.04", "22.10"));
  EXPECT_FALSE(glob_match("9*", "10"));
  EXPECT_TRUE(glob_match("V10", "V10"));
}

} // namespace
} // namespace kubexm
