// Which images a manifest's cluster needs, from the shipped manifests/images.yaml and
// release files, with the upstreams' real repositories and tag conventions; references in
// their full form; registry mirrors.
#include "builder/manifest.hpp"
#include "builder/images/registry.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>

namespace kubexm {
namespace {

using test::TempDir;
using test::write_file;

const std::filesystem::path k_manifests = KUBEXM_SOURCE_MANIFESTS;

// The references a 1.32 manifest with this cluster: section gets.
std::vector<std::string> images_of(const std::string& cluster, const std::string& extra = {}) {
  TempDir dir;
  write_file(
      dir / "site.yaml",
      "name: s\nversion: 1.0.0\nkubernetes: 1.32.10\narches: [amd64]\nos_profiles: [debian-12]\ncomponents: [kubectl]\n"
      "packages: {closure: none}\n" +
          cluster + extra);
  auto plan = load_plan(dir / "site.yaml", k_manifests);
  EXPECT_TRUE(plan) << plan.error().message();
  std::vector<std::string> refs;
  if (plan) {
    for (const auto& image : plan->images) {
      refs.push_back(image.ref);
    }
  }
  return refs;
}

bool has(const std::vector<std::string>& refs, std::string_view ref) {
  return std::ranges::find(refs, ref) != refs.end();
}

TEST(Images, KubeadmStackedEtcdCalicoInternalHaproxy) {
  auto refs = images_of("cluster:\n  loadbalancer: {enabled: true, mode: internal, type: haproxy}\n");
  std::vector<std::string> expected{"docker.io/library/haproxy:3.0.5-alpine",
                                    "quay.io/calico/cni:v3.30.5",
                                    "quay.io/calico/kube-controllers:v3.30.5",
                                    "quay.io/calico/node:v3.30.5",
                                    "registry.k8s.io/coredns/coredns:v1.11.3",
                                    "registry.k8s.io/dns/k8s-dns-node-cache:1.24.0",
                                    "registry.k8s.io/etcd:3.5.16-0",
                                    "registry.k8s.io/kube-apiserver:v1.32.10",
                                    "registry.k8s.io/kube-controller-manager:v1.32.10",
                                    "registry.k8s.io/kube-proxy:v1.32.10",
                                    "registry.k8s.io/kube-scheduler:v1.32.10",
                                    "registry.k8s.io/pause:3.10"};
  EXPECT_EQ(refs, expected);
}

TEST(Images, AKubexmClusterRunsTheControlPlaneAndEtcdAsBinaries) {
  auto refs = images_of("cluster:\n  type: kubexm\n  loadbalancer: {enabled: true, mode: internal, type: nginx}\n");
  EXPECT_FALSE(has(refs, "registry.k8s.io/kube-apiserver:v1.32.10"));
  EXPECT_FALSE(has(refs, "registry.k8s.io/etcd:3.5.16-0"));
  EXPECT_FALSE(has(refs, "docker.io/library/nginx:1.27.3-alpine")); // nginx runs from an OS package
  EXPECT_TRUE(has(refs, "registry.k8s.io/pause:3.10"));
  EXPECT_TRUE(has(refs, "registry.k8s.io/coredns/coredns:v1.11.3"));
}

TEST(Images, EachCniBringsItsOwnImagesUnderItsUpstreamsNames) {
  auto flannel = images_of("cluster:\n  cni: flannel\n  nodelocaldns: false\n");
  EXPECT_TRUE(has(flannel, "ghcr.io/flannel-io/flannel:v0.26.7"));
  EXPECT_TRUE(has(flannel, "ghcr.io/flannel-io/flannel-cni-plugin:v1.6.2-flannel1"));
  EXPECT_FALSE(has(flannel, "quay.io/calico/node:v3.30.5"));
  EXPECT_FALSE(has(flannel, "registry.k8s.io/dns/k8s-dns-node-cache:1.24.0"));
  auto cilium = images_of("cluster:\n  cni: cilium\n");
  EXPECT_TRUE(has(cilium, "quay.io/cilium/cilium:v1.17.9"));
  EXPECT_TRUE(has(cilium, "quay.io/cilium/operator-generic:v1.17.9"));
  auto router = images_of("cluster:\n  cni: kube-router\n");
  EXPECT_TRUE(has(router, "docker.io/cloudnativelabs/kube-router:v2.4.1"));
  auto none = images_of("cluster:\n  cni: none\n  nodelocaldns: false\n");
  EXPECT_EQ(none.size(), 7u); // pause, coredns, four control plane images, etcd
}

TEST(Images, KubeVipAndExtrasAndNoClusterNoImages) {
  auto vip = images_of("cluster:\n  loadbalancer: {enabled: true, mode: kube-vip}\n", "images: [busybox:1.36]\n");
  EXPECT_TRUE(has(vip, "ghcr.io/kube-vip/kube-vip:v0.8.9"));
  EXPECT_TRUE(has(vip, "docker.io/library/busybox:1.36"));
  EXPECT_TRUE(images_of("").empty());
  // Two spellings of one image: carried once.
  EXPECT_EQ(images_of("", "images: [busybox:1.36, docker.io/library/busybox:1.36]\n"),
            std::vector<std::string>{"docker.io/library/busybox:1.36"});
}

TEST(Images, EveryShippedReleaseTagsEveryCatalogueImage) {
  for (const char* version : {"1.30.0", "1.31.0", "1.32.0", "1.33.0", "1.34.0"}) {
    TempDir dir;
    write_file(dir / "site.yaml", fmt::format("name: s\nversion: 1.0.0\nkubernetes: {}\narches: [amd64]\nos_profiles: "
                                              "[debian-12]\ncomponents: [kubectl]\n"
                                              "packages: {{closure: none}}\ncluster:\n  cni: flannel\n",
                                              version));
    auto plan = load_plan(dir / "site.yaml", k_manifests);
    EXPECT_TRUE(plan) << version << ": " << plan.error().message();
  }
}

TEST(References, AreWrittenOutInFull) {
  EXPECT_EQ(*normalize_reference("busybox:1.36"), "docker.io/library/busybox:1.36");
  EXPECT_EQ(*normalize_reference("calico/node:v3.30.5"), "docker.io/calico/node:v3.30.5");
  EXPECT_EQ(*normalize_reference("localhost:5000/a/b:1"), "localhost:5000/a/b:1");
  EXPECT_EQ(*normalize_reference("registry.k8s.io/pause:3.10"), "registry.k8s.io/pause:3.10");
  auto pinned = "quay.io/a/b@sha256:" + std::string(64, 'a');
  EXPECT_EQ(*normalize_reference(pinned), pinned);
  EXPECT_EQ(*normalize_reference("quay.io/a/b:1.0@sha256:" + std::string(64, 'a')), pinned); // the digest wins
  EXPECT_FALSE(normalize_reference("busybox"));                                              // no tag
  EXPECT_FALSE(normalize_reference("Busybox:1"));                                            // upper case
  EXPECT_FALSE(normalize_reference("quay.io/a/b@sha256:abc"));                               // short digest
  EXPECT_FALSE(normalize_reference("quay.io/a/b:" + std::string(129, 'x')));                 // tag too long
  auto parts = split_reference("127.0.0.1:5000/registry.k8s.io/pause:3.10");
  EXPECT_EQ(parts.registry, "127.0.0.1:5000");
  EXPECT_EQ(parts.repository, "127.0.0.1:5000/registry.k8s.io/pause");
  EXPECT_EQ(parts.tag, "3.10");
}

TEST(References, MirrorsRewriteOnPathBoundariesAndTheLongestWins) {
  RegistryOptions options;
  options.mirrors = {{"docker.io", "mirror.site:5000/hub"}, {"docker.io/library", "mirror.site:5000/official"}};
  EXPECT_EQ(image_source("docker.io/library/busybox:1.36", options), "mirror.site:5000/official/busybox:1.36");
  EXPECT_EQ(image_source("docker.io/calico/node:v1", options), "mirror.site:5000/hub/calico/node:v1");
  EXPECT_EQ(image_source("docker.iox/a:1", options), "docker.iox/a:1");
  EXPECT_EQ(image_source("quay.io/a:1", options), "quay.io/a:1");
}

} // namespace
} // namespace kubexm
