// node.yaml as the installer reads it: phases in order, actions with what they wait for and
// the token they join with, and every problem of a bad file named in one message.
#include "installer/role/node.hpp"

#include <gtest/gtest.h>

namespace kubexm {
namespace {

constexpr std::string_view k_worker = R"(node: worker1
address: 10.0.0.21
arch: amd64
roles: [worker]
cluster: plant
deployment: kubexm/kubexm-etcd/several-masters/external-kubexm-kh
hosts:
  - {address: 10.0.0.100, names: [lb.kubexm.local]}
phases:
  - phase: 5
    services: [containerd]
    enable: [kubelet, kube-proxy]
    after:
      - name: kubelet-bootstrap
        run: [systemctl, start, kubelet.service]
        wait_for: lb.kubexm.local:6443
        token_from: /etc/kubernetes/bootstrap-kubelet.conf
  - phase: 1
    before:
      - {name: os-init, run: [sysctl, --system]}
)";

TEST(NodeConfig, ReadsPhasesInOrderAndWhatEachActionWaitsFor) {
  auto config = parse_node_config(k_worker, "node.yaml");
  ASSERT_TRUE(config) << config.error().message();
  ASSERT_EQ(config->phases.size(), 2u);
  EXPECT_EQ(config->phases[0].phase, 1);
  EXPECT_EQ(config->phases[1].phase, 5);
  const auto& action = config->phases[1].after.at(0);
  EXPECT_EQ(action.wait_for, "lb.kubexm.local:6443");
  EXPECT_EQ(action.token_from, "/etc/kubernetes/bootstrap-kubelet.conf");
  EXPECT_EQ(config->address_of("lb.kubexm.local"), "10.0.0.100");
  EXPECT_EQ(config->address_of("10.1.2.3"), "10.1.2.3");
  EXPECT_FALSE(config->address_of("master9"));
  EXPECT_EQ(config->all_services(), (std::vector<std::string>{"containerd", "kubelet", "kube-proxy"}));
}

TEST(NodeConfig, ATokenWithoutAnApiserverToCheckItIsRefused) {
  std::string text(k_worker);
  text.replace(text.find("        wait_for: lb.kubexm.local:6443\n"), std::string_view("        wait_for: lb.kubexm.local:6443\n").size(), "");
  auto config = parse_node_config(text, "site/nodes/worker1/node.yaml");
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().kind(), ErrorKind::verification);
  EXPECT_NE(config.error().message().find("site/nodes/worker1/node.yaml: action kubelet-bootstrap: token_from needs "
                                          "wait_for"),
            std::string::npos)
      << config.error().message();
}

TEST(NodeConfig, EveryProblemIsNamedAtOnce) {
  auto config = parse_node_config("arch: amd64\nphases:\n  - phase: 1\n    after:\n      - {name: x}\n", "node.yaml");
  ASSERT_FALSE(config);
  const auto& message = config.error().message();
  EXPECT_NE(message.find("an action without a name or a command"), std::string::npos) << message;
  EXPECT_NE(message.find("node, address and roles are required"), std::string::npos) << message;
}

TEST(NodeConfig, BrokenYamlNamesItsLine) {
  auto config = parse_node_config("node: a\nroles: [worker\n", "node.yaml");
  ASSERT_FALSE(config);
  EXPECT_NE(config.error().message().find("node.yaml: line "), std::string::npos) << config.error().message();
}

} // namespace
} // namespace kubexm
