// The site file: exactly the 21 deployments of docs/site.md are accepted, each recognised by
// its shape; every other combination, and every mistake of names, addresses
// and networks, is refused with its reason and line.
#include "builder/site/pki.hpp"
#include "builder/site/site.hpp"
#include "test_util.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <set>

namespace kubexm {
namespace {

using test::TempDir;
using test::write_file;

const std::filesystem::path k_examples = std::filesystem::path(KUBEXM_SOURCE_MANIFESTS) / "examples";

struct Shape {
  std::string kubernetes = "kubeadm";
  std::string etcd = "kubeadm";
  int masters = 3;
  std::string lb = "enabled: false";
  std::string hosts_extra;
};

std::string site_text(const Shape& shape) {
  auto text =
      fmt::format("name: s\nkubernetes: {{type: {}, version: 1.32.10}}\netcd: {{type: {}}}\nloadbalancer: {{{}}}\n"
                  "hosts:\n",
                  shape.kubernetes, shape.etcd, shape.lb);
  for (int i = 1; i <= shape.masters; ++i) {
    text += fmt::format("  - {{name: m{}, address: 10.0.0.{}/24, roles: [master{}]}}\n", i, 10 + i,
                        shape.etcd == "kubexm" ? "" : ", etcd");
  }
  if (shape.etcd == "kubexm") {
    for (int i = 1; i <= 3; ++i) {
      text += fmt::format("  - {{name: e{}, address: 10.0.0.{}/24, roles: [etcd]}}\n", i, 30 + i);
    }
  }
  text += "  - {name: w1, address: 10.0.0.21/24, roles: [worker]}\n" + shape.hosts_extra;
  return text;
}

struct Loaded {
  std::optional<Site> site;
  std::string error;
  std::vector<std::string> warnings;
};

Loaded load(const std::string& text) {
  TempDir dir;
  write_file(dir / "site.yaml", text);
  Loaded out;
  auto site = load_site(dir / "site.yaml", out.warnings);
  if (site) {
    out.site = std::move(*site);
  } else {
    out.error = site.error().message();
    EXPECT_EQ(site.error().kind(), ErrorKind::usage);
  }
  return out;
}

std::string deployment_of(const Shape& shape) {
  auto loaded = load(site_text(shape));
  EXPECT_TRUE(loaded.site) << site_text(shape) << loaded.error;
  return loaded.site ? topology_of(*loaded.site).id : std::string();
}

const std::string k_lb_hosts = "  - {name: lb1, address: 10.0.0.5/24, roles: [lb]}\n"
                               "  - {name: lb2, address: 10.0.0.6/24, roles: [lb]}\n";

TEST(Site, TheTwentyOneDeploymentsAreEachNamedByTheirShape) {
  struct Case {
    std::string kubernetes, etcd, prefix;
  };
  std::vector<Case> cases = {
      {"kubeadm", "kubeadm", "kubeadm/stacked-etcd/"},
      {"kubexm", "kubexm", "kubexm/kubexm-etcd/"},
      {"kubeadm", "kubexm", "kubeadm/kubexm-etcd/"},
  };
  const std::vector<std::string> suffixes = {"single-master/no-lb",
                                             "several-masters/no-lb",
                                             "several-masters/internal-haproxy",
                                             "several-masters/internal-nginx",
                                             "several-masters/kube-vip",
                                             "several-masters/external-kubexm-kh",
                                             "several-masters/external-kubexm-kn"};
  std::set<std::string> seen;
  for (const auto& c : cases) {
    std::vector<Shape> shapes = {
        {c.kubernetes, c.etcd, 1, "enabled: false", ""},
        {c.kubernetes, c.etcd, 3, "enabled: false", ""},
        {c.kubernetes, c.etcd, 3, "enabled: true, mode: internal, type: haproxy", ""},
        {c.kubernetes, c.etcd, 3, "enabled: true, mode: internal, type: nginx", ""},
        {c.kubernetes, c.etcd, 3, "enabled: true, mode: kube-vip, vip: 10.0.0.100, interface: eth0", ""},
        {c.kubernetes, c.etcd, 3, "enabled: true, mode: external, type: kubexm-kh, vip: 10.0.0.100, interface: eth0",
         k_lb_hosts},
        {c.kubernetes, c.etcd, 3, "enabled: true, mode: external, type: kubexm-kn, vip: 10.0.0.100, interface: eth0",
         k_lb_hosts},
    };
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      auto id = deployment_of(shapes[i]);
      EXPECT_EQ(id, c.prefix + suffixes[i]) << c.kubernetes << "/" << c.etcd << " shape " << i;
      seen.insert(id);
    }
  }
  EXPECT_EQ(seen.size(), 21u);
}

TEST(Site, TheExamplesAreValidAndSayWhichDeploymentTheyAre) {
  std::map<std::string, std::string> expected = {
      {"site-single-master.yaml", "kubeadm/stacked-etcd/single-master/no-lb"},
      {"site-internal-haproxy.yaml", "kubeadm/kubexm-etcd/several-masters/internal-haproxy"},
      {"site-kube-vip.yaml", "kubexm/kubexm-etcd/several-masters/kube-vip"},
      {"site-external.yaml", "kubeadm/stacked-etcd/several-masters/external-kubexm-kh"}};
  for (const auto& [file, id] : expected) {
    std::vector<std::string> warnings;
    auto site = load_site(k_examples / file, warnings);
    ASSERT_TRUE(site) << file << ": " << site.error().message();
    EXPECT_EQ(topology_of(*site).id, id) << file;
    EXPECT_TRUE(warnings.empty()) << file;
  }
}

void expect_refused(const std::string& text, const std::string& reason) {
  auto loaded = load(text);
  EXPECT_FALSE(loaded.site) << "accepted:\n" << text;
  EXPECT_NE(loaded.error.find(reason), std::string::npos) << "wanted: " << reason << "\ngot: " << loaded.error;
}

TEST(Site, EveryOtherCombinationIsRefusedWithItsReason) {
  expect_refused(site_text({"kubexm", "kubeadm", 3, "enabled: false", ""}),
                 "none of the 21 deployments is a kubexm cluster with kubeadm etcd");
  expect_refused(site_text({"kubeadm", "kubeadm", 1, "enabled: true, mode: internal, type: haproxy", ""}),
                 "enabled with a single master");
  expect_refused(site_text({"kubeadm", "kubeadm", 3,
                            "enabled: true, mode: external, type: kubexm-kh, vip: 10.0.0.100, interface: eth0", ""}),
                 "mode external needs hosts with the lb role");
  expect_refused(site_text({"kubeadm", "kubeadm", 3, "enabled: true, mode: internal, type: kubexm-kh", ""}),
                 "mode internal takes type haproxy or nginx, not 'kubexm-kh'");
  expect_refused(site_text({"kubeadm", "kubeadm", 3,
                            "enabled: true, mode: external, type: haproxy, vip: 10.0.0.100, "
                            "interface: eth0",
                            k_lb_hosts}),
                 "mode external takes type kubexm-kh (keepalived + haproxy) or kubexm-kn");
  expect_refused(site_text({"kubeadm", "kubeadm", 3, "enabled: true, mode: kube-vip, interface: eth0", ""}),
                 "mode kube-vip needs vip: an IPv4 address");
  expect_refused(
      site_text({"kubeadm", "kubeadm", 3, "enabled: true, mode: kube-vip, vip: 10.0.1.100, interface: eth0", ""}),
      "vip 10.0.1.100 is outside m1's network 10.0.0.0/24");
  expect_refused(
      site_text({"kubeadm", "kubeadm", 3, "enabled: true, mode: kube-vip, vip: 10.0.0.11, interface: eth0", ""}),
      "vip 10.0.0.11 is m1's own address");
  expect_refused(site_text({"kubeadm", "kubeadm", 3, "enabled: true, mode: kube-vip, vip: 10.0.0.100", ""}),
                 "needs the interface the VIP is announced on");
  expect_refused(site_text({"kubeadm", "kubeadm", 3, "enabled: false", k_lb_hosts}),
                 "lb1 has the lb role, but loadbalancer is not enabled");
  expect_refused(
      site_text({"kubeadm", "kubeadm", 3, "enabled: false", "  - {name: e9, address: 10.0.0.99/24, roles: [etcd]}\n"}),
      "e9: the etcd role without master: kubeadm's etcd runs on the masters");
  expect_refused(site_text({"kubeadm", "kubeadm", 0, "enabled: false", ""}), "no host has the master role");
  expect_refused(site_text({"kubeadm", "kubeadm", 3,
                            "enabled: true, mode: kube-vip, vip: 10.0.0.100, interface: eth0, port: 8443", ""}),
                 "mode kube-vip serves the apiservers' own port 6443, not 8443");
  expect_refused(site_text({"kubeadm", "kubeadm", 3, "enabled: true, mode: internal, type: nginx, port: 7443", ""}),
                 "mode internal serves the apiservers' own port 6443, not 7443");
}

TEST(Site, ExtraArgsThatWouldSplitACommandLineAreRefused) {
  auto with_args = [](const std::string& args) {
    return "name: s\nkubernetes: {version: 1.32.10, extraArgs: {" + args +
           "}}\nhosts:\n  - {name: m1, address: 10.0.0.11, roles: [master, etcd]}\n";
  };
  auto good = load(with_args("kubelet: {eviction-hard: \"memory.available<5%\", feature-gates: \"A=true,B=false\"}"));
  ASSERT_TRUE(good.site) << good.error;
  EXPECT_EQ(good.site->extra_args.at("kubelet").at("eviction-hard"), "memory.available<5%");
  for (const auto& [args, reason] : std::vector<std::pair<std::string, std::string>>{
           {"apiserver: {--v: \"2\"}", "'--v' is not a flag name"},
           {"apiserver: {v: \"2 --x\"}", "apiserver: v: the value must be one word"},
           {"scheduler: {v: \"a\\\"b\"}", "scheduler: v: the value must be one word"},
           {"kubelet: {v: [1, 2]}", "kubelet: v: the value must be one word"}}) {
    auto loaded = load(with_args(args));
    EXPECT_FALSE(loaded.site) << args;
    EXPECT_NE(loaded.error.find(reason), std::string::npos) << args << "\n" << loaded.error;
  }
}

TEST(Site, TheClusterShapeOfASiteIsWhatItsImagesDependOn) {
  auto loaded = load(site_text({"kubexm", "kubexm", 3,
                                "enabled: true, mode: external, type: kubexm-kn, vip: 10.0.0.100, interface: eth0, "
                                "port: 8443",
                                k_lb_hosts}));
  ASSERT_TRUE(loaded.site) << loaded.error;
  auto spec = cluster_spec_of(*loaded.site);
  EXPECT_EQ(spec.type, "kubexm");
  EXPECT_EQ(spec.etcd, "kubexm");
  EXPECT_EQ(spec.loadbalancer, "external-kubexm-kn");
  auto vip =
      load(site_text({"kubeadm", "kubeadm", 3, "enabled: true, mode: kube-vip, vip: 10.0.0.100, interface: eth0", ""}));
  ASSERT_TRUE(vip.site) << vip.error;
  EXPECT_EQ(cluster_spec_of(*vip.site).loadbalancer, "kube-vip");
  auto none = load(site_text({}));
  ASSERT_TRUE(none.site) << none.error;
  EXPECT_EQ(cluster_spec_of(*none.site).loadbalancer, "none");
}

TEST(Site, NamesAddressesAndNetworksAreChecked) {
  auto base = site_text({});
  expect_refused(base + "  - {name: w1, address: 10.0.0.22/24, roles: [worker]}\n", "w1 is listed twice");
  expect_refused(base + "  - {name: w2, address: 10.0.0.21/24, roles: [worker]}\n", "address 10.0.0.21 is w1's too");
  expect_refused(base + "  - {name: w2, address: 10.0.0.300, roles: [worker]}\n", "'10.0.0.300' is not an IPv4");
  expect_refused(base + "  - {name: w2, address: 10.0.0.22, roles: [cook]}\n", "roles: 'cook' is not one of");
  expect_refused(base + "  - {name: w2, address: 10.0.0.22, arch: x86_64, roles: [worker]}\n",
                 "arch: 'x86_64' is not amd64, arm64");
  auto with_kubernetes = [](const std::string& fields) {
    return fmt::format("name: s\nkubernetes: {{version: 1.32.10, {}}}\nhosts:\n"
                       "  - {{name: m1, address: 10.0.0.11/24, roles: [master, etcd]}}\n",
                       fields);
  };
  expect_refused(with_kubernetes("serviceCIDR: 10.96.0.0/12, podCIDR: 10.100.0.0/16"),
                 "serviceCIDR 10.96.0.0/12 and podCIDR 10.100.0.0/16 overlap");
  expect_refused(with_kubernetes("podCIDR: 10.244.0.0"), "podCIDR: '10.244.0.0' is not a CIDR");
  expect_refused(with_kubernetes("podCIDR: 10.244.1.0/16"), "has host bits set: write 10.244.0.0/16");
  expect_refused(with_kubernetes("podCIDR: 10.0.0.0/16"), "m1: address 10.0.0.11 is inside podCIDR 10.0.0.0/16");
  expect_refused("name: s\nkubernetes: {version: 1.32.10}\nhosts: [\n", "line");
  auto loaded = load(site_text({"kubeadm", "kubeadm", 2, "enabled: false", ""}));
  ASSERT_TRUE(loaded.site) << loaded.error;
  ASSERT_EQ(loaded.warnings.size(), 1u);
  EXPECT_NE(loaded.warnings[0].find("2 etcd members"), std::string::npos);
}

TEST(Site, EveryProblemOfTheFileIsReportedWithItsLine) {
  auto loaded = load("name: S!\nkubernetes: {type: kubeadmx, version: v1.32}\nruntime: rkt\nnetwork: {plugin: weave}\n"
                     "hosts:\n  - {name: m1, address: 10.0.0.11, roles: [master]}\n");
  ASSERT_FALSE(loaded.site);
  for (const char* part : {"line 1:", "line 2: kubernetes: type: 'kubeadmx' is not kubeadm, kubexm",
                           "line 3: runtime: 'rkt' is not containerd, docker, cri-o",
                           "line 4: network: plugin: 'weave' is not calico, flannel, cilium, kube-router"}) {
    EXPECT_NE(loaded.error.find(part), std::string::npos) << part << "\n" << loaded.error;
  }
}

TEST(Pki, TheBootstrapTokenIsWellFormedKeptAndRotated) {
  EXPECT_TRUE(is_bootstrap_token("abcdef.0123456789abcdef"));
  for (const char* bad : {"abcdef0123456789abcdef", "ABCDEF.0123456789abcdef", "abcde.0123456789abcdefg",
                          "abcdef.0123456789abcde", "abcdef.0123456789abcdef0", ""}) {
    EXPECT_FALSE(is_bootstrap_token(bad)) << bad;
  }
  auto loaded = load(site_text({"kubeadm", "kubeadm", 1, "enabled: false", ""}));
  ASSERT_TRUE(loaded.site) << loaded.error;
  TempDir dir;
  PkiOptions fast{KeyAlgorithm::ecdsa_p256, false};
  ASSERT_TRUE(generate_site_pki(*loaded.site, dir.path(), fast));
  auto first = read_bootstrap_token(dir.path());
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_TRUE(is_bootstrap_token(*first));
  ASSERT_TRUE(generate_site_pki(*loaded.site, dir.path(), fast));
  EXPECT_EQ(read_bootstrap_token(dir.path()).value_or(""), *first);
  fast.rotate = true;
  ASSERT_TRUE(generate_site_pki(*loaded.site, dir.path(), fast));
  EXPECT_NE(read_bootstrap_token(dir.path()).value_or(*first), *first);
  write_file(dir / "pki" / "bootstrap-token", "not-a-token\n");
  auto bad = read_bootstrap_token(dir.path());
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("is not a bootstrap token"), std::string::npos);
}

TEST(Ipv4, NetworksContainAndOverlap) {
  auto net = parse_ipv4_net("10.96.0.0/12");
  ASSERT_TRUE(net);
  EXPECT_TRUE(net->contains(parse_ipv4_net("10.111.255.1")->address));
  EXPECT_FALSE(net->contains(parse_ipv4_net("10.112.0.1")->address));
  EXPECT_TRUE(net->overlaps(*parse_ipv4_net("10.100.0.0/16")));
  EXPECT_FALSE(net->overlaps(*parse_ipv4_net("10.244.0.0/16")));
  EXPECT_FALSE(parse_ipv4_net("10.0.0"));
  EXPECT_FALSE(parse_ipv4_net("10.0.0.01"));
  EXPECT_FALSE(parse_ipv4_net("10.0.0.1/33"));
  EXPECT_FALSE(parse_ipv4_net("10.0.0.1/"));
  EXPECT_EQ(parse_ipv4_net("192.168.1.7/24")->text(), "192.168.1.7/24");
}

} // namespace
} // namespace kubexm
