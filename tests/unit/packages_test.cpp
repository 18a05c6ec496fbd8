// OS profiles, repository metadata and the libsolv closures: the shipped profiles load and
// map every package of every role; the metadata readers take real repository files apart;
// the solver, on the real CentOS Stream 9 metadata, gives closures with the properties a
// closure must have (the comparison with dnf itself is tests/packages/closure_vs_dnf.sh).
#include "builder/packages/os_profile.hpp"
#include "builder/packages/repo_metadata.hpp"
#include "builder/packages/solver.hpp"
#include "test_util.hpp"

#include <algorithm>
#include <gtest/gtest.h>
#include <set>

namespace kubexm {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using test::write_file;

const fs::path k_profiles = KUBEXM_SOURCE_OS_PROFILES;
const fs::path k_cs9 = KUBEXM_SOURCE_FIXTURES "/centos-stream-9-x86_64";

// A file of the test data the repository carries; when it is missing, one line saying which
// and how to get it back (instead of a dereferenced error value, which crashed the tests).
Result<std::string> fixture_text(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return fail("missing fixture {}: it is part of the repository; restore it with 'git checkout -- tests/fixtures'",
                path.string());
  }
  return read_maybe_compressed(path, path.filename().string());
}

TEST(ShippedProfiles, EveryProfileLoadsAndMapsEveryRolePackage) {
  auto names = available_profiles(k_profiles);
  ASSERT_GE(names.size(), 10u);
  auto profiles = load_os_profiles(k_profiles, names);
  ASSERT_TRUE(profiles) << profiles.error().message();
  auto sets = load_package_sets(k_profiles);
  ASSERT_TRUE(sets) << sets.error().message();
  for (const auto& profile : *profiles) {
    EXPECT_FALSE(profile.repositories.empty()) << profile.name;
    for (const auto& [arch, distro] : profile.arches) {
      for (const auto& repo : profile.repositories) {
        auto url = profile.repository_url(repo, arch);
        EXPECT_EQ(url.find('{'), std::string::npos) << profile.name << ": " << url;
        EXPECT_TRUE(url.starts_with("https://")) << profile.name << ": " << url;
      }
    }
    for (const char* role : {"master", "worker", "etcd", "lb"}) {
      auto packages = role_packages(*sets, profile, role, {});
      EXPECT_FALSE(packages.empty()) << profile.name << " " << role;
      EXPECT_EQ(std::set(packages.begin(), packages.end()).size(), packages.size()) << profile.name;
    }
  }
}

TEST(ShippedProfiles, NamesAreMappedPerDistribution) {
  auto profiles = load_os_profiles(k_profiles, {"debian-12", "rocky-9"});
  ASSERT_TRUE(profiles) << profiles.error().message();
  auto sets = load_package_sets(k_profiles);
  ASSERT_TRUE(sets);
  auto debian = role_packages(*sets, (*profiles)[0], "worker", {"jq"});
  auto rocky = role_packages(*sets, (*profiles)[1], "worker", {});
  EXPECT_NE(std::ranges::find(debian, "nfs-common"), debian.end());
  EXPECT_NE(std::ranges::find(debian, "jq"), debian.end());
  EXPECT_EQ(std::ranges::find(debian, "container-selinux"), debian.end()); // ~ on Debian
  EXPECT_NE(std::ranges::find(rocky, "conntrack-tools"), rocky.end());
  EXPECT_NE(std::ranges::find(rocky, "container-selinux"), rocky.end());
  EXPECT_EQ((*profiles)[1].repository_url((*profiles)[1].repositories[0], "arm64"),
            "https://mirrors.aliyun.com/rockylinux/9/BaseOS/aarch64/os");
}

TEST(Profiles, EveryMistakeIsReportedWithItsLine) {
  TempDir dir;
  write_file(dir / "packages.yaml", "format: 1\nsets: {a: [x]}\nroles: {master: [a], worker: [b]}\n");
  write_file(dir / "bad-1.yaml", "format: 1\nname: bad-1\nos: bad\nversion: '1'\nmatch: {id: [bad], version_id: '1*'}\n"
                                 "package_format: msi\ninstaller: apt\narches: {x86_64: amd64}\n"
                                 "mirror: https://m\nrepositories: []\nbase: {from: comps-core}\ncolour: red\n");
  auto profiles = load_os_profiles(dir.path(), {"bad-1", "missing"});
  ASSERT_FALSE(profiles);
  const auto& message = profiles.error().message();
  EXPECT_NE(message.find("line 12: unknown key 'colour'"), std::string::npos) << message;
  EXPECT_NE(message.find("line 6: package_format: 'msi' is not deb or rpm"), std::string::npos) << message;
  EXPECT_NE(message.find("'x86_64' is not amd64 or arm64 (kubexm calls it amd64)"), std::string::npos) << message;
  EXPECT_NE(message.find("'repositories' must be a non-empty list"), std::string::npos) << message;
  EXPECT_NE(message.find("no profile 'missing'"), std::string::npos) << message;
  auto sets = load_package_sets(dir.path());
  ASSERT_FALSE(sets);
  EXPECT_NE(sets.error().message().find("roles: worker: no set 'b'"), std::string::npos);
  EXPECT_NE(sets.error().message().find("roles: 'etcd' is missing"), std::string::npos);
}

TEST(Profiles, BaseChoicesBestAndPinsAreReadAndChecked) {
  TempDir dir;
  auto head = std::string("format: 1\nos: t\nversion: '1'\nmatch: {id: [t], version_id: '1*'}\n"
                          "package_format: deb\ninstaller: apt\narches: {amd64: amd64}\nmirror: https://m\n"
                          "repositories: [{name: rel, url: '{mirror}/d', suite: s, components: [main]},\n"
                          "  {name: upd, url: '{mirror}/d', suite: s-updates, components: [main]}]\n");
  write_file(dir / "good.yaml", "name: good\n" + head +
                                    "base: {from: list, packages: [], repositories: [rel], add: [a], remove: [b]}\n"
                                    "best: false\npins: {conntrack: '>= 1:1.4.5, < 1:1.4.7'}\n");
  auto good = load_os_profiles(dir.path(), {"good"});
  ASSERT_TRUE(good) << good.error().message();
  const auto& profile = good->front();
  EXPECT_TRUE(profile.base_packages.empty()); // an empty system
  EXPECT_EQ(profile.base_repositories, std::vector<std::string>{"rel"});
  EXPECT_FALSE(profile.best);
  ASSERT_EQ(profile.pins.at("conntrack").bounds.size(), 2u);
  EXPECT_EQ(profile.pins.at("conntrack").bounds[1].op, "<");
  EXPECT_EQ(profile.pins.at("conntrack").bounds[1].evr, "1:1.4.7");
  write_file(dir / "bad.yaml", "name: bad\n" + head +
                                   "base: {from: priority-required, repositories: [nowhere]}\nbest: maybe\n"
                                   "pins: {conntrack: 'about 1.4'}\n");
  auto bad = load_os_profiles(dir.path(), {"bad"});
  ASSERT_FALSE(bad);
  const auto& message = bad.error().message();
  EXPECT_NE(message.find("base: repositories: 'nowhere' is not one of the profile's repositories"), std::string::npos)
      << message;
  EXPECT_NE(message.find("best: expected true"), std::string::npos) << message;
  EXPECT_NE(message.find("pins: conntrack: 'about 1.4' is not a version range"), std::string::npos) << message;
}

TEST(RepoMetadata, ReleaseFilesGiveTheirSha256Section) {
  std::string release = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\nMD5Sum:\n"
                        " 0123 10 main/binary-amd64/Packages\nSHA256:\n " +
                        std::string(64, 'a') + " 50060337 main/binary-amd64/Packages\n " + std::string(64, 'b') +
                        "  8790396 main/binary-amd64/Packages.xz\n-----BEGIN PGP SIGNATURE-----\n\n" +
                        std::string(64, 'c') + " 1 fake\n-----END PGP SIGNATURE-----\n";
  auto files = parse_release(release, "InRelease");
  ASSERT_TRUE(files) << files.error().message();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ(files->at("main/binary-amd64/Packages").size, 50060337u);
  EXPECT_EQ(files->at("main/binary-amd64/Packages.xz").sha256, std::string(64, 'b'));
  EXPECT_FALSE(parse_release("Origin: x\n", "Release"));
  auto bad = parse_release("SHA256:\n nothex 12 main/x\n", "Release");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("malformed SHA256 lines: nothex 12 main/x"), std::string::npos);
}

TEST(RepoMetadata, RealRepomdAndPrimaryAreTakenApart) {
  auto repomd_text = fixture_text(k_cs9 / "baseos/repodata/repomd.xml");
  ASSERT_TRUE(repomd_text) << repomd_text.error().message();
  auto repomd = parse_repomd(*repomd_text, "repomd.xml");
  ASSERT_TRUE(repomd) << repomd.error().message();
  auto primary = std::ranges::find(*repomd, "primary", &RepomdEntry::type);
  ASSERT_NE(primary, repomd->end());
  ASSERT_TRUE(primary->file.path.ends_with("-primary.xml.gz"));
  auto path = k_cs9 / "baseos" / primary->file.path;
  EXPECT_EQ(fs::file_size(path), primary->file.size);
  auto text = read_maybe_compressed(path, "primary");
  ASSERT_TRUE(text) << text.error().message();
  auto elements = parse_primary(*text);
  EXPECT_GT(elements.size(), 1000u);
  auto bash = std::ranges::find(elements, "bash", &RpmElement::name);
  ASSERT_NE(bash, elements.end());
  EXPECT_TRUE(bash->location.starts_with("Packages/bash-"));
  EXPECT_EQ(bash->pkgid.size(), 64u);
  auto moved = rewrite_location(*bash, "bash.rpm");
  EXPECT_NE(moved.find("<location href=\"bash.rpm\"/>"), std::string::npos);
  EXPECT_EQ(moved.find("Packages/bash-"), std::string::npos);
  EXPECT_EQ(parse_primary(primary_document({moved})).size(), 1u);
  auto sha1 = std::string(*repomd_text);
  sha1.replace(sha1.find("type=\"sha256\""), 13, "type=\"sha1\"");
  EXPECT_FALSE(parse_repomd(sha1, "repomd.xml"));
}

TEST(RepoMetadata, LocationsAreUnescapedWhenReadAndEscapedWhenWritten) {
  auto elements = parse_primary("<package type=\"rpm\"><name>a&amp;b</name><arch>noarch</arch>"
                                "<location href=\"Packages/a&amp;b-1.rpm\"/></package>");
  ASSERT_EQ(elements.size(), 1u);
  EXPECT_EQ(elements[0].location, "Packages/a&b-1.rpm");
  auto moved = rewrite_location(elements[0], "a&b-1.rpm");
  EXPECT_NE(moved.find("<location href=\"a&amp;b-1.rpm\"/>"), std::string::npos) << moved;
  EXPECT_EQ(parse_primary(moved)[0].location, "a&b-1.rpm");
}

TEST(RepoMetadata, AnEmptyIndexIsEmptyNotAnError) {
  TempDir dir;
  write_file(dir / "Packages", "");
  auto text = read_maybe_compressed(dir / "Packages", "Packages");
  ASSERT_TRUE(text) << text.error().message();
  EXPECT_TRUE(text->empty());
  EXPECT_TRUE(parse_packages_index(*text).empty());
}

TEST(RepoMetadata, StanzasKeepEverythingButTheirFilename) {
  std::string index = "Package: a\nVersion: 1\nArchitecture: amd64\nEssential: yes\nPriority: required\n"
                      "Filename: pool/main/a/a_1_amd64.deb\nDescription: one\n more\n\n"
                      "Package: b\nVersion: 2\nArchitecture: all\nPriority: optional\nFilename: pool/b.deb\n";
  auto stanzas = parse_packages_index(index);
  ASSERT_EQ(stanzas.size(), 2u);
  EXPECT_TRUE(stanzas[0].essential && stanzas[0].required);
  EXPECT_FALSE(stanzas[1].essential || stanzas[1].required);
  EXPECT_EQ(stanzas[1].arch, "all");
  EXPECT_EQ(rewrite_stanza(stanzas[0], "a_1_amd64.deb"), "Package: a\nVersion: 1\nArchitecture: amd64\nEssential: "
                                                         "yes\nPriority: required\nFilename: a_1_amd64.deb\n"
                                                         "Description: one\n more\n");
}

// A small Debian-like repository: init-system-helpers needs "usrmerge | usr-is-merged", and
// usrmerge (which provides usr-is-merged) needs perl, as in bookworm.
const char* k_merged = "Package: init-system-helpers\nVersion: 1.65.2\nArchitecture: all\nPriority: required\n"
                       "Depends: usrmerge | usr-is-merged\nFilename: pool/i.deb\nSize: 10\nSHA256: " 
                       "1111111111111111111111111111111111111111111111111111111111111111\n\n"
                       "Package: usrmerge\nVersion: 35\nArchitecture: all\nProvides: usr-is-merged\nDepends: perl\n"
                       "Filename: pool/u.deb\nSize: 20\nSHA256: "
                       "2222222222222222222222222222222222222222222222222222222222222222\n\n"
                       "Package: usr-is-merged\nVersion: 35\nArchitecture: all\nFilename: pool/m.deb\nSize: 30\n"
                       "SHA256: 3333333333333333333333333333333333333333333333333333333333333333\n\n"
                       "Package: perl\nVersion: 5.36\nArchitecture: amd64\nFilename: pool/p.deb\nSize: 40\nSHA256: "
                       "4444444444444444444444444444444444444444444444444444444444444444\n\n";
// The same repository's update: a newer perl.
const char* k_update = "Package: perl\nVersion: 5.36-u1\nArchitecture: amd64\nFilename: pool/p2.deb\nSize: 41\n"
                       "SHA256: 5555555555555555555555555555555555555555555555555555555555555555\n\n";

std::vector<std::string> names_of(const Solution& solution) {
  std::vector<std::string> names;
  for (const auto& p : solution.install) {
    names.push_back(p.name + " " + p.evr);
  }
  return names;
}

TEST(Solver, ABaseSetIsPackagesByNameWithTheMinimalInstallersChoices) {
  PackagePool pool(PackageFormat::deb, "amd64");
  ASSERT_TRUE(pool.add_repository("rel", k_merged, ""));
  ASSERT_TRUE(pool.add_repository("upd", k_update, ""));
  // As names alone, usr-is-merged is that package; as a provide, usrmerge (the first
  // alternative apt favours) would do, and bring perl.
  auto as_provides = pool.solve({"init-system-helpers", "usr-is-merged"}, "base");
  ASSERT_TRUE(as_provides) << as_provides.error().message();
  auto taken = names_of(*as_provides);
  EXPECT_NE(std::ranges::find(taken, "perl 5.36-u1"), taken.end());
  SolveOptions options{Select::names, Best::newest, {"usrmerge"}, {0}, {}};
  auto base = pool.solve({"init-system-helpers", "usr-is-merged"}, "base", options);
  ASSERT_TRUE(base) << base.error().message();
  EXPECT_EQ(names_of(*base), (std::vector<std::string>{"init-system-helpers 1.65.2", "usr-is-merged 35"}));
  // A name that only a provide gives is no base package.
  auto provided = pool.solve({"usr-is-merged-too"}, "base", options);
  ASSERT_FALSE(provided);
  EXPECT_NE(provided.error().message().find("base: no package is called 'usr-is-merged-too'"), std::string::npos);
  // Held to the release repository, the release's perl; the sizes are the stanzas'.
  auto release = pool.solve({"perl"}, "base", SolveOptions{Select::names, Best::newest, {}, {0}, {}});
  ASSERT_TRUE(release) << release.error().message();
  EXPECT_EQ(names_of(*release), std::vector<std::string>{"perl 5.36"});
}

TEST(Solver, PinsHoldAVersionAndOlderChoicesSayWhy) {
  PackagePool pool(PackageFormat::deb, "amd64");
  ASSERT_TRUE(pool.add_repository("rel", k_merged, ""));
  ASSERT_TRUE(pool.add_repository("upd", k_update, ""));
  auto pin = parse_version_pin("< 5.36-u1");
  ASSERT_TRUE(pin) << pin.error().message();
  auto pinned = pool.solve({"perl"}, "t", SolveOptions{Select::provides, Best::newest, {}, {}, {{"perl", *pin}}});
  ASSERT_TRUE(pinned) << pinned.error().message();
  EXPECT_EQ(names_of(*pinned), std::vector<std::string>{"perl 5.36"});
  EXPECT_TRUE(pinned->older.empty()); // a pin is a choice, not a fallback
  auto none = parse_version_pin("> 6");
  auto refused = pool.solve({"perl"}, "t", SolveOptions{Select::provides, Best::newest, {}, {}, {{"perl", *none}}});
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("t: pins: perl '> 6' leaves none of its versions (the repositories have "
                                           "5.36, 5.36-u1)"),
            std::string::npos)
      << refused.error().message();
  EXPECT_FALSE(parse_version_pin("~> 1.2"));
  EXPECT_FALSE(parse_version_pin("< 1.2,"));
  // A newest perl that cannot be installed: refused under best, taken older otherwise.
  ASSERT_TRUE(pool.add_repository("broken", "Package: perl\nVersion: 5.38\nArchitecture: amd64\nDepends: libmissing\n"
                                            "Filename: pool/p3.deb\nSize: 42\nSHA256: "
                                            "6666666666666666666666666666666666666666666666666666666666666666\n\n",
                                  ""));
  auto newest = pool.solve({"perl"}, "t");
  ASSERT_FALSE(newest);
  EXPECT_NE(newest.error().message().find("nothing provides libmissing needed by perl-5.38.amd64"), std::string::npos)
      << newest.error().message();
  auto older = pool.solve({"perl"}, "t", SolveOptions{Select::provides, Best::allow_older, {}, {}, {}});
  ASSERT_TRUE(older) << older.error().message();
  EXPECT_EQ(names_of(*older), std::vector<std::string>{"perl 5.36-u1"});
  ASSERT_EQ(older->older.size(), 1u);
  EXPECT_EQ(older->older[0].newest, "5.38");
  EXPECT_EQ(older->older[0].why, "nothing provides libmissing needed by perl-5.38.amd64");
}

// A pool of the real CentOS Stream 9 BaseOS and AppStream metadata.
struct Cs9 {
  PackagePool pool{PackageFormat::rpm, "x86_64"};
  std::vector<std::string> primaries;
  std::vector<std::string> filelists;
  std::string comps;
};

// Loads one repository of `root` (repomd.xml and the files it names) into `cs9`.
Status load_cs9_repository(const fs::path& root, const char* repo, Cs9& cs9) {
  auto repomd_text = fixture_text(root / repo / "repodata/repomd.xml");
  if (!repomd_text) {
    return std::unexpected(repomd_text.error());
  }
  auto repomd = parse_repomd(*repomd_text, repo);
  if (!repomd) {
    return std::unexpected(repomd.error());
  }
  std::string primary;
  std::string files;
  for (const auto& entry : *repomd) {
    std::string* into = entry.type == "primary" ? &primary
                        : entry.type == "filelists" ? &files
                        : entry.type == "group_gz" && cs9.comps.empty() ? &cs9.comps
                                                                         : nullptr;
    if (into == nullptr) {
      continue;
    }
    auto text = fixture_text(root / repo / entry.file.path);
    if (!text) {
      return std::unexpected(text.error());
    }
    *into = std::move(*text);
  }
  if (auto status = cs9.pool.add_repository(repo, primary, files); !status) {
    return status;
  }
  cs9.primaries.push_back(std::move(primary));
  cs9.filelists.push_back(std::move(files));
  return {};
}

Result<std::unique_ptr<Cs9>> load_cs9(const fs::path& root = k_cs9) {
  auto cs9 = std::make_unique<Cs9>();
  for (const char* repo : {"baseos", "appstream"}) {
    if (auto status = load_cs9_repository(root, repo, *cs9); !status) {
      return std::unexpected(status.error());
    }
  }
  return cs9;
}

// The three solver tests crashed when the metadata was not there: the fixture loader
// dereferenced the error value of a failed read. Now that is an error naming the file.
TEST(Fixtures, AMissingFixtureIsAnErrorNamingItNotACrash) {
  TempDir dir;
  auto cs9 = load_cs9(dir.path());
  ASSERT_FALSE(cs9);
  EXPECT_NE(cs9.error().message().find("missing fixture " + (dir / "baseos/repodata/repomd.xml").string()),
            std::string::npos)
      << cs9.error().message();
  // A repomd.xml naming a primary that is not there: the same, for that file.
  auto repomd = fixture_text(k_cs9 / "baseos/repodata/repomd.xml");
  ASSERT_TRUE(repomd) << repomd.error().message();
  write_file(dir / "baseos/repodata/repomd.xml", *repomd);
  cs9 = load_cs9(dir.path());
  ASSERT_FALSE(cs9);
  EXPECT_NE(cs9.error().message().find("-primary.xml.gz: it is part of the repository"), std::string::npos)
      << cs9.error().message();
}

// A pool with nothing loaded (no repository, or only empty ones) answers with errors.
TEST(Solver, AnEmptyPoolSaysNothingProvidesTheNames) {
  for (auto format : {PackageFormat::rpm, PackageFormat::deb}) {
    PackagePool empty(format, format == PackageFormat::rpm ? "x86_64" : "amd64");
    auto solution = empty.solve({"ipset"}, "empty");
    ASSERT_FALSE(solution);
    EXPECT_NE(solution.error().message().find("empty: no package is called or provides 'ipset'"), std::string::npos);
    PackagePool blank(format, format == PackageFormat::rpm ? "x86_64" : "amd64");
    ASSERT_TRUE(blank.add_repository("blank", "", ""));
    ASSERT_TRUE(blank.set_installed("", ""));
    EXPECT_FALSE(blank.solve({"ipset"}, "blank"));
    EXPECT_EQ(blank.size(), 0u);
  }
}

TEST(Solver, FullClosureOnRealEl9MetadataIsCompleteAndNewest) {
  auto loaded = load_cs9();
  ASSERT_TRUE(loaded) << loaded.error().message();
  auto& cs9 = **loaded;
  EXPECT_GT(cs9.pool.size(), 15000u);
  auto solution = cs9.pool.solve({"ipset", "socat", "ebtables", "ipvsadm", "iproute"}, "cs9");
  ASSERT_TRUE(solution) << solution.error().message();
  std::set<std::string> names;
  for (const auto& p : solution->install) {
    EXPECT_TRUE(names.insert(p.name).second) << p.name << " twice";
    EXPECT_EQ(p.sha256.size(), 64u) << p.name;
    EXPECT_GT(p.size, 0u) << p.name;
    EXPECT_TRUE(p.location.starts_with("Packages/")) << p.location;
  }
  // ebtables is a provide of iptables-nft on EL9; file and soname requirements pull in the
  // C library, bash (for /bin/sh) and the filesystem layout.
  for (const char* name : {"ipset", "socat", "iptables-nft", "ipvsadm", "iproute", "glibc", "bash", "filesystem"}) {
    EXPECT_TRUE(names.contains(name)) << name;
  }
  EXPECT_TRUE(solution->relies_on.empty()); // nothing is installed
}

TEST(Solver, MinimalClosureLeavesOutTheCoreGroupAndSaysWhatItReliesOn) {
  auto loaded = load_cs9();
  ASSERT_TRUE(loaded) << loaded.error().message();
  auto& cs9 = **loaded;
  auto core = comps_mandatory(cs9.comps, "core");
  ASSERT_GT(core.size(), 10u);
  EXPECT_NE(std::ranges::find(core, "bash"), core.end());
  auto base = cs9.pool.solve(core, "cs9 core");
  ASSERT_TRUE(base) << base.error().message();
  std::set<std::string> base_names;
  std::vector<std::string> installed_primary;
  std::set<std::string> pkgids;
  for (const auto& p : base->install) {
    base_names.insert(p.name);
    pkgids.insert(p.sha256);
  }
  std::vector<std::string> installed_files;
  for (std::size_t r = 0; r < cs9.primaries.size(); ++r) {
    for (const auto& element : parse_primary(cs9.primaries[r])) {
      if (pkgids.contains(std::string(element.pkgid))) {
        installed_primary.emplace_back(element.text);
      }
    }
    for (const auto& element : parse_filelists(cs9.filelists[r])) {
      if (pkgids.contains(std::string(element.pkgid))) {
        installed_files.emplace_back(element.text);
      }
    }
  }
  ASSERT_TRUE(cs9.pool.set_installed(primary_document(installed_primary), filelists_document(installed_files)));
  auto solution = cs9.pool.solve({"ipset", "socat", "ebtables", "ipvsadm"}, "cs9");
  ASSERT_TRUE(solution) << solution.error().message();
  for (const auto& p : solution->install) {
    EXPECT_FALSE(base_names.contains(p.name)) << p.name << " is in the core group already";
  }
  EXPECT_LT(solution->install.size(), 40u);
  auto glibc = std::ranges::find(solution->relies_on, "glibc", &BaseReliance::name);
  ASSERT_NE(glibc, solution->relies_on.end());
  EXPECT_NE(glibc->needed_by.find(" requires "), std::string::npos) << glibc->needed_by;
}

TEST(Solver, EveryProblemIsReportedWithTheTarget) {
  auto loaded = load_cs9();
  ASSERT_TRUE(loaded) << loaded.error().message();
  auto& cs9 = **loaded;
  auto solution = cs9.pool.solve({"no-such-package", "conntrack-tools", "ipset"}, "centos-9 amd64 role worker");
  ASSERT_FALSE(solution);
  const auto& message = solution.error().message();
  EXPECT_NE(message.find("centos-9 amd64 role worker: no package is called or provides 'no-such-package'"),
            std::string::npos)
      << message;
  // The test metadata's conntrack-tools needs a libnetfilter_conntrack newer than it carries.
  EXPECT_NE(message.find("nothing provides libnetfilter_conntrack >= 1.0.9 needed by conntrack-tools"),
            std::string::npos)
      << message;
}

} // namespace
} // namespace kubexm
