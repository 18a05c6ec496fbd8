// kubexm-standin: one program called by the names of the Kubernetes programs it stands in for.
#include "tests/standins/standin.hpp"

#include <cstring>
#include <iostream>

namespace standin {

int kubeadm(const Flags& flags) {
  note("kubeadm " + (flags.positional.empty() ? std::string() : flags.positional.front()) +
       ": this stand-in does not bring up a kubeadm control plane");
  return 1;
}

} // namespace standin

int main(int argc, char** argv) {
  using namespace standin;
  std::string name = argc > 0 ? argv[0] : "";
  name = name.substr(name.rfind('/') + 1);
  int first = 1;
  if (name == "kubexm-standin" && argc > 1) {
    name = argv[1]; // kubexm-standin PROGRAM ARGS...
    first = 2;
  }
  static const std::map<std::string, int (*)(const Flags&)> k_programs = {
      {"kube-apiserver", kube_apiserver}, {"kube-controller-manager", kube_controller_manager},
      {"kube-scheduler", kube_scheduler}, {"kubelet", kubelet},
      {"kube-proxy", kube_proxy},         {"kubeadm", kubeadm},
  };
  auto program = k_programs.find(name);
  if (program == k_programs.end()) {
    std::cerr << "kubexm-standin: stands in for kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, "
                 "kube-proxy and kubeadm; called as '"
              << name << "'\n";
    return 2;
  }
  if (argc > first && (std::strcmp(argv[first], "--version") == 0 || std::strcmp(argv[first], "version") == 0)) {
    std::cout << name << " kubexm-standin\n";
    return 0;
  }
  begin(name, argc - first + 1, argv + first - 1);
  return program->second(parse_flags(argc, argv, first));
}
