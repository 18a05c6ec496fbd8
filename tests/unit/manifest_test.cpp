// The manifest files: the shipped ones load and pin every default, and every kind of
// mistake in a user's manifest is reported with its file and line, all in one run.
#include "builder/manifest.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>
#include <regex>
#include <set>

namespace kubexm {
namespace {

using test::TempDir;
using test::write_file;

const std::filesystem::path k_manifests = KUBEXM_SOURCE_MANIFESTS;

std::string load_error(const std::string& manifest_text) {
  TempDir dir;
  write_file(dir / "site.yaml", manifest_text);
  auto plan = load_plan(dir / "site.yaml", k_manifests);
  EXPECT_FALSE(plan) << "expected an error for:\n" << manifest_text;
  if (plan) {
    return {};
  }
  EXPECT_EQ(plan.error().kind(), ErrorKind::usage);
  return plan.error().message();
}

constexpr const char* k_good = "name: site-a\nversion: 1.0.0\nkubernetes: 1.32.10\narches: [amd64, arm64]\n"
                               "os_profiles: [debian-12]\n";

TEST(ShippedManifests, EveryMinorLoadsAndPinsEveryDefaultArtifact) {
  std::vector<std::string> minors;
  for (const auto& entry : std::filesystem::directory_iterator(k_manifests)) {
    auto name = entry.path().filename().string();
    if (name.starts_with("kubernetes-")) {
      minors.push_back(name.substr(11, name.size() - 16));
    }
  }
  std::ranges::sort(minors);
  ASSERT_EQ(minors, (std::vector<std::string>{"1.30", "1.31", "1.32", "1.33", "1.34"}));
  for (const auto& minor : minors) {
    auto release = test::read_file(k_manifests / fmt::format("kubernetes-{}.yaml", minor));
    std::smatch match;
    ASSERT_TRUE(std::regex_search(release, match, std::regex("kubernetes: (\\S+)")));
    TempDir dir;
    write_file(dir / "site.yaml", fmt::format("name: s\nversion: '1'\nkubernetes: {}\narches: [amd64, arm64]\n"
                                              "os_profiles: [debian-12]\n",
                                              match[1].str()));
    auto plan = load_plan(dir / "site.yaml", k_manifests);
    ASSERT_TRUE(plan) << minor << ": " << plan.error().message();
    EXPECT_EQ(plan->artifacts.size(), 20u) << minor;
    for (const auto& artifact : plan->artifacts) {
      EXPECT_TRUE(artifact.pin) << minor << ": " << artifact.label() << " has no pinned SHA-256";
      EXPECT_EQ(artifact.pin_source, PinSource::catalogue);
      EXPECT_TRUE(artifact.url.starts_with("https://")) << artifact.url;
      EXPECT_EQ(artifact.url.find('{'), std::string::npos) << artifact.url;
    }
  }
}

TEST(ShippedManifests, ExpandsUpstreamNamesPerArch) {
  TempDir dir;
  write_file(dir / "site.yaml", std::string(k_good) +
                                    "components: [kubelet, etcd, docker, cri-dockerd, runc, registry, cri-o]\n"
                                    "versions: {docker: 24.0.9}\n");
  auto plan = load_plan(dir / "site.yaml", k_manifests);
  ASSERT_TRUE(plan) << plan.error().message();
  std::map<std::string, std::string> urls;
  for (const auto& a : plan->artifacts) {
    urls[a.component + " " + a.arch] = a.url;
  }
  EXPECT_EQ(urls["kubelet arm64"], "https://dl.k8s.io/release/v1.32.10/bin/linux/arm64/kubelet");
  EXPECT_EQ(urls["docker amd64"], "https://download.docker.com/linux/static/stable/x86_64/docker-24.0.9.tgz");
  EXPECT_EQ(urls["docker arm64"], "https://download.docker.com/linux/static/stable/aarch64/docker-24.0.9.tgz");
  EXPECT_EQ(urls["cri-dockerd arm64"],
            "https://github.com/Mirantis/cri-dockerd/releases/download/v0.3.21/cri-dockerd-0.3.21.arm64.tgz");
  EXPECT_EQ(urls["runc amd64"], "https://github.com/opencontainers/runc/releases/download/v1.3.4/runc.amd64");
  EXPECT_EQ(urls["registry amd64"], "https://github.com/distribution/distribution/releases/download/v3.1.1/"
                                    "registry_3.1.1_linux_amd64.tar.gz");
  EXPECT_EQ(urls["cri-o arm64"], "https://storage.googleapis.com/cri-o/artifacts/cri-o.arm64.v1.32.11.tar.gz");
  for (const auto& a : plan->artifacts) {
    if (a.component == "etcd" && a.arch == "arm64") {
      EXPECT_EQ(a.checksum_url, "https://github.com/etcd-io/etcd/releases/download/v3.5.25/SHA256SUMS");
      ASSERT_EQ(a.members.size(), 3u);
      EXPECT_EQ(a.members[0].path, "etcd-v3.5.25-linux-arm64/etcd");
    }
    if (a.component == "kubelet") {
      EXPECT_EQ(a.checksum_url, a.url + ".sha256");
      EXPECT_EQ(a.checksum_format, ChecksumFormat::bare);
    }
    if (a.component == "docker" || a.component == "cri-dockerd") {
      EXPECT_TRUE(a.checksum_url.empty()) << "no upstream checksum file exists for " << a.component;
    }
  }
}

TEST(UserManifest, ReportsEveryProblemWithItsLine) {
  auto message = load_error("name: Site A\nversion: 1.0.0\nkubernetes: v1.32.10\narches: [x86_64, arm64]\n"
                            "os_profiles: [debian-12]\nroles: [master, boss]\ncolour: blue\n");
  EXPECT_NE(message.find("line 1: name: 'Site A' is not a name"), std::string::npos) << message;
  EXPECT_NE(message.find("line 3: kubernetes: 'v1.32.10' is not a Kubernetes version like 1.32.4 (write "
                         "'1.32.10', without the v)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("line 4: arches: 'x86_64' is not one of amd64, arm64 (kubexm calls it amd64)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("line 6: roles: 'boss' is not one of master, worker, etcd, lb"), std::string::npos) << message;
  EXPECT_NE(message.find("line 7: unknown key 'colour'"), std::string::npos) << message;
  EXPECT_NE(message.find("site.yaml"), std::string::npos) << message;
}

TEST(UserManifest, UnknownComponentAndVersionProblemsAreReportedTogether) {
  auto message = load_error(std::string(k_good) + "components: [kubelet, containerd2, etcd]\n"
                                                  "versions: {etcd: 3.5, cri-o: 1.32.1, kubelet: 1.32.1}\n");
  EXPECT_NE(message.find("line 7: versions: etcd: '3.5' is not a version like 1.7.24"), std::string::npos) << message;
  EXPECT_NE(message.find("line 6: unknown component 'containerd2' (the catalogue has: "), std::string::npos) << message;
  EXPECT_NE(message.find("versions: 'cri-o' is not one of the components"), std::string::npos) << message;
  EXPECT_NE(message.find("versions: 'kubelet' follows the 'kubernetes' version"), std::string::npos) << message;
}

// A kubexm cluster runs its control plane from the bundle's binaries: by default they come
// along; a manifest that lists its components and leaves them out is told which to add.
TEST(UserManifest, AKubexmClusterCarriesItsControlPlaneBinaries) {
  TempDir dir;
  write_file(dir / "site.yaml", std::string(k_good) + "cluster: {type: kubexm, etcd: kubexm, cni: calico}\n");
  auto plan = load_plan(dir / "site.yaml", k_manifests);
  ASSERT_TRUE(plan) << plan.error().message();
  std::set<std::string> components;
  for (const auto& artifact : plan->artifacts) {
    components.insert(artifact.component);
  }
  for (const char* name : {"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubelet"}) {
    EXPECT_TRUE(components.contains(name)) << name;
  }
  write_file(dir / "cluster.yaml", "name: c\nkubernetes: {type: kubexm, version: 1.32.10}\netcd: {type: kubexm}\n"
                                    "hosts:\n  - {name: m1, address: 10.0.0.1, roles: [master, etcd, worker]}\n");
  write_file(dir / "site.yaml", std::string(k_good) + "site: cluster.yaml\ncomponents: [kubelet, kube-apiserver, etcd]\n");
  plan = load_plan(dir / "site.yaml", k_manifests);
  ASSERT_FALSE(plan);
  auto message = plan.error().message();
  EXPECT_NE(message.find("line 7: a kubexm cluster runs kube-controller-manager, kube-scheduler, kube-proxy from the "
                         "bundle; add them to components"),
            std::string::npos)
      << message;
}

TEST(UserManifest, UnsupportedMinorListsTheSupportedOnes) {
  auto message = load_error("name: s\nversion: '1'\nkubernetes: 1.29.3\narches: [amd64]\nos_profiles: [x]\n");
  EXPECT_NE(message.find("line 3: kubernetes: 1.29.3 is not supported"), std::string::npos) << message;
  EXPECT_NE(message.find("supported minors: 1.30, 1.31, 1.32, 1.33, 1.34"), std::string::npos) << message;
  // A pre-release belongs to its minor.
  message = load_error("name: s\nversion: '1'\nkubernetes: 1.29.0-rc.1\narches: [amd64]\nos_profiles: [x]\n");
  EXPECT_NE(message.find("kubernetes-1.29.yaml"), std::string::npos) << message;
}

TEST(UserManifest, YamlSyntaxErrorNamesTheLine) {
  auto message = load_error("name: s\nversion: '1'\narches: [amd64\nos_profiles: [x]\n");
  EXPECT_TRUE(std::regex_search(message, std::regex("site.yaml: line [0-9]+: .*"))) << message;
}

TEST(UserManifest, BadPinsAreReported) {
  auto message = load_error(std::string(k_good) +
                            "checksums:\n  kubelet:\n    1.32.10:\n      amd64: abc\n"
                            "      aarch64: " +
                            std::string(64, 'a') + "\n  kubelett:\n    1.0.0: {amd64: x}\n");
  EXPECT_NE(message.find("line 9: checksums: kubelet 1.32.10 amd64: expected 64 lower-case hex digits"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("'aarch64' is not one of amd64, arm64 (kubexm calls it arm64)"), std::string::npos) << message;
  EXPECT_NE(message.find("checksums: unknown component 'kubelett'"), std::string::npos) << message;
}

TEST(UserManifest, ManifestPinsReplaceCatalogueOnesAndVersionsOverride) {
  TempDir dir;
  write_file(dir / "site.yaml", std::string(k_good) +
                                    "components: [containerd]\nversions: {containerd: 2.2.1}\n"
                                    "checksums: {containerd: {2.2.1: {amd64: " +
                                    std::string(64, 'b') + "}}}\n");
  auto plan = load_plan(dir / "site.yaml", k_manifests);
  ASSERT_TRUE(plan) << plan.error().message();
  ASSERT_EQ(plan->artifacts.size(), 2u);
  EXPECT_EQ(plan->artifacts[0].version, "2.2.1");
  EXPECT_EQ(plan->artifacts[0].pin, std::string(64, 'b'));
  EXPECT_EQ(plan->artifacts[0].pin_source, PinSource::manifest);
  // arm64 keeps the catalogue's pin for 2.2.1.
  EXPECT_EQ(plan->artifacts[1].pin_source, PinSource::catalogue);
  EXPECT_EQ(plan->artifacts[1].pin, "dac15a0d412a24be8bfe6a40cec8f51829062725169f1e72ac7d120a891ef5b6");
}

TEST(UserManifest, PackagesBestAndPinsApplyToTheProfiles) {
  TempDir dir;
  write_file(dir / "site.yaml", std::string(k_good) + "components: [kubectl]\n"
                                                      "packages: {best: false, pins: {debian-12: {conntrack: '< 1:1.4.8'}}}\n");
  auto plan = load_plan(dir / "site.yaml", k_manifests);
  ASSERT_TRUE(plan) << plan.error().message();
  ASSERT_EQ(plan->profiles.size(), 1u);
  EXPECT_FALSE(plan->profiles[0].best);
  EXPECT_EQ(plan->profiles[0].pins.at("conntrack").text, "< 1:1.4.8");
  auto message = load_error(std::string(k_good) + "packages: {best: sometimes, pins: {rocky-9: {x: '< 1'}, "
                                                  "debian-12: {y: 'newest'}}}\n");
  EXPECT_NE(message.find("packages: best: expected true or false"), std::string::npos) << message;
  EXPECT_NE(message.find("packages: pins: 'rocky-9' is not one of the bundle's os_profiles"), std::string::npos)
      << message;
  EXPECT_NE(message.find("packages: pins: debian-12: y: 'newest' is not a version range"), std::string::npos)
      << message;
}

TEST(Catalogue, ProblemsInTheCatalogueAreReportedWithItsName) {
  TempDir dir;
  std::filesystem::copy(k_manifests, dir / "manifests");
  write_file(dir / "manifests/catalogue.yaml",
             "format: 1\ncomponents:\n  kubelet:\n    url: https://x/{vresion}/kubelet\n"
             "    checksum: {url: '{url}.sha256', format: md5}\n    install: kubelet\n"
             "  etcd:\n    url: https://x/e.tgz\n    checksum: none\n    archive: tar.gz\n"
             "    members: {a/etcd: etcd, b/etcd: etcd}\n");
  write_file(dir / "site.yaml", k_good);
  auto plan = load_plan(dir / "site.yaml", dir / "manifests");
  ASSERT_FALSE(plan);
  const auto& message = plan.error().message();
  EXPECT_NE(message.find("catalogue.yaml: line 4: unknown placeholder {vresion}"), std::string::npos) << message;
  EXPECT_NE(message.find("catalogue.yaml: line 5: kubelet: checksum: format must be 'bare'"), std::string::npos)
      << message;
  EXPECT_NE(message.find("etcd: members: two members are installed as 'etcd'"), std::string::npos) << message;
}

} // namespace
} // namespace kubexm
