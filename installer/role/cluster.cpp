// What an admin does on a master once the cluster is up: take its admin kubeconfig, and close
// the joining (`finish`). Both ask the cluster through the bundle's own kubectl.
#include "installer/role/cluster.hpp"

#include "bundle/fs.hpp"
#include "bundle/process.hpp"
#include "bundle/reader.hpp"
#include "installer/role/journal.hpp"
#include "installer/role/step.hpp"

#include <cstdlib>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

constexpr const char* k_admin_conf = "/etc/kubernetes/admin.conf";
constexpr const char* k_bootstrap = "/etc/kubernetes/addons/kubexm-bootstrap.yaml";
constexpr const char* k_bootstrap_kubeconfig = "/etc/kubernetes/bootstrap-kubelet.conf";

// The journal of an installed master, or why this host is not one.
Result<Journal> installed_master() {
  auto journal = Journal::open("/");
  if (!journal) {
    return std::unexpected(journal.error());
  }
  auto roles = journal->json().value("roles", nlohmann::json::array());
  bool master = std::find(roles.begin(), roles.end(), "master") != roles.end();
  auto services = journal->step("services");
  if (journal->node().empty() || !master || !services || services->state != "done") {
    return std::unexpected(Error(ErrorKind::usage, "this host is not an installed master: run ./install --role=master "
                                                   "on a master first, then this there"));
  }
  if (!fs::exists(k_admin_conf)) {
    return fail("{} is missing on this master: run ./install --role=master again to put it back", k_admin_conf);
  }
  return journal;
}

// What kubectl printed, run as the cluster's admin.
Result<std::string> kubectl(const std::vector<std::string>& args) {
  std::vector<std::string> command{"kubectl", "--kubeconfig", k_admin_conf, "--request-timeout=10s"};
  command.insert(command.end(), args.begin(), args.end());
  auto result = run_captured(command);
  if (!result) {
    return std::unexpected(result.error());
  }
  if (result->exit_code != 0) {
    return fail("kubectl {} failed: {}", fmt::join(args, " "), result->errors);
  }
  return std::move(result->output);
}

Result<nlohmann::json> kubectl_json(const std::vector<std::string>& args) {
  auto output = kubectl(args);
  if (!output) {
    return std::unexpected(output.error());
  }
  auto json = nlohmann::json::parse(*output, nullptr, false);
  if (json.is_discarded()) {
    return fail("kubectl {} did not print JSON", fmt::join(args, " "));
  }
  return json;
}

struct NodeState {
  std::string name;
  std::string address;
  std::string ready;
};

std::vector<NodeState> node_states(const nlohmann::json& list) {
  std::vector<NodeState> out;
  for (const auto& item : list.value("items", nlohmann::json::array())) {
    NodeState state{item["metadata"].value("name", ""), "", "Unknown"};
    for (const auto& address : item["status"].value("addresses", nlohmann::json::array())) {
      if (address.value("type", "") == "InternalIP") {
        state.address = address.value("address", "");
      }
    }
    for (const auto& condition : item["status"].value("conditions", nlohmann::json::array())) {
      if (condition.value("type", "") == "Ready") {
        state.ready = condition.value("status", "Unknown");
      }
    }
    out.push_back(state);
  }
  return out;
}

// The name of the bootstrap token's Secret: from the bootstrap kubeconfig every master of a
// kubexm cluster has (the token's id), else from the file the first master applied.
std::string bootstrap_secret() {
  try {
    auto token = YAML::LoadFile(k_bootstrap_kubeconfig)["users"][0]["user"]["token"].as<std::string>("");
    if (auto dot = token.find('.'); dot != std::string::npos && dot > 0) {
      return "bootstrap-token-" + token.substr(0, dot);
    }
  } catch (const YAML::Exception&) {
  }
  try {
    for (const auto& document : YAML::LoadAllFromFile(k_bootstrap)) {
      if (document["kind"].as<std::string>("") == "Secret") {
        return document["metadata"]["name"].as<std::string>("");
      }
    }
  } catch (const YAML::Exception&) {
  }
  return "";
}

// The site's first master, which holds the bootstrap file and applies it.
std::string first_master(const SiteRecord& site) {
  for (const auto& node : site.nodes) {
    if (std::ranges::find(node.roles, "master") != node.roles.end()) {
      return node.name;
    }
  }
  return "the first master";
}

} // namespace

Result<std::string> cluster_kubeconfig(bool write, bool json) {
  auto journal = installed_master();
  if (!journal) {
    return std::unexpected(journal.error());
  }
  if (!write) {
    return json ? nlohmann::json{{"kubeconfig", k_admin_conf}}.dump(2) + "\n" : std::string(k_admin_conf) + "\n";
  }
  const char* home = std::getenv("HOME");
  fs::path target = fs::path(home && *home ? home : "/root") / ".kube" / "config";
  auto admin = read_text_file(k_admin_conf, 1 << 20);
  if (!admin) {
    return std::unexpected(admin.error());
  }
  std::string outcome = "written";
  if (fs::exists(target)) {
    auto existing = read_text_file(target, 1 << 20);
    if (!existing || *existing != *admin) {
      return std::unexpected(Error(ErrorKind::usage, fmt::format("{} exists and is another kubeconfig: it is left as "
                                                                 "it is. Move it away and run this again, or use "
                                                                 "KUBECONFIG={}",
                                                                 target.string(), k_admin_conf)));
    }
    outcome = "unchanged";
  } else {
    if (auto made = make_directories(target.parent_path(), 0700); !made) {
      return std::unexpected(made.error());
    }
    if (auto written = write_file_atomic(target, *admin, 0600); !written) {
      return std::unexpected(written.error());
    }
  }
  if (json) {
    return nlohmann::json{{"kubeconfig", target.string()}, {"source", k_admin_conf}, {"outcome", outcome}}.dump(2) + "\n";
  }
  return fmt::format("{} {} (a copy of {}, the cluster's admin): kubectl get nodes uses it\n", target.string(),
                     outcome == "written" ? "written" : "holds it already; nothing changed", k_admin_conf);
}

Result<std::string> cluster_finish(const FinishRequest& request) {
  auto journal = installed_master();
  if (!journal) {
    return std::unexpected(journal.error());
  }
  auto header = read_bundle_header(request.bundle);
  if (!header) {
    return std::unexpected(header.error());
  }
  if (!header->info.site) {
    return std::unexpected(Error(ErrorKind::usage, "the bundle has no site: nothing to finish"));
  }
  const auto& site = *header->info.site;
  std::vector<std::string> expected;
  for (const auto& node : site.nodes) {
    if (std::ranges::find(node.roles, "master") != node.roles.end() ||
        std::ranges::find(node.roles, "worker") != node.roles.end()) {
      expected.push_back(node.name);
    }
  }
  std::vector<NodeState> nodes;
  std::vector<std::string> missing;
  std::string last_error;
  auto waited = wait_until(
      [&] {
        auto list = kubectl_json({"get", "nodes", "-o", "json"});
        if (!list) {
          last_error = list.error().message();
          return false;
        }
        nodes = node_states(*list);
        missing.clear();
        for (const auto& name : expected) {
          if (std::ranges::none_of(nodes, [&](const NodeState& n) { return n.name == name; })) {
            missing.push_back(name);
          }
        }
        return missing.empty();
      },
      request.wait, fmt::format("every master and worker of the site ({}) to join", expected.size()));
  if (waited == Waited::interrupted) {
    return std::unexpected(Error(ErrorKind::interrupted, "interrupted; run again to go on"));
  }
  if (waited == Waited::timed_out) {
    std::vector<std::string> where;
    for (const auto& name : missing) {
      where.push_back(fmt::format("{} ({})", name, site.find(name) ? site.find(name)->address : "?"));
    }
    return std::unexpected(Error(
        ErrorKind::waiting,
        missing.empty() && nodes.empty()
            ? fmt::format("the cluster did not answer within {} s: {}", request.wait.count(), last_error)
            : fmt::format("{} of {} nodes joined within {} s; not yet: {}. Run ./install --role=... on them, then "
                          "./install finish again; the bootstrap token stays until then",
                          expected.size() - missing.size(), expected.size(), request.wait.count(),
                          fmt::join(where, ", "))));
  }
  std::string token;
  bool kubexm_cluster = site.deployment.starts_with("kubexm/");
  if (kubexm_cluster) {
    auto secret = bootstrap_secret();
    if (secret.empty()) {
      return fail("neither {} nor {} names the bootstrap token here: run ./install --role=master on this master "
                  "again to put its files back, then this",
                  k_bootstrap_kubeconfig, k_bootstrap);
    }
    // `-o name` prints what was deleted, and nothing when it was gone already.
    auto deleted = kubectl({"-n", "kube-system", "delete", "secret", secret, "--ignore-not-found", "-o", "name"});
    if (!deleted) {
      return add_context(deleted.error(), fmt::format("deleting the bootstrap token's Secret {} (it stays; run "
                                                      "./install finish again)",
                                                      secret));
    }
    token = deleted->find(secret) != std::string::npos
                ? fmt::format("the bootstrap token's Secret {} deleted: no node joins with it any more; to join "
                              "another, apply {} again on {}",
                              secret, k_bootstrap, first_master(site))
                : fmt::format("the bootstrap token's Secret {} was deleted already", secret);
  } else {
    token = "kubeadm's bootstrap token expires by itself";
  }
  std::ranges::sort(nodes, {}, &NodeState::name);
  if (request.json) {
    nlohmann::json out = {{"cluster", site.name}, {"token", token}, {"nodes", nlohmann::json::array()}};
    for (const auto& node : nodes) {
      out["nodes"].push_back({{"name", node.name}, {"address", node.address}, {"ready", node.ready}});
    }
    return out.dump(2) + "\n";
  }
  std::string text = fmt::format("cluster {}: all {} masters and workers joined; {}\n", site.name, expected.size(), token);
  text += fmt::format("  {:<16} {:<16} {}\n", "NODE", "ADDRESS", "READY");
  for (const auto& node : nodes) {
    text += fmt::format("  {:<16} {:<16} {}\n", node.name, node.address, node.ready);
  }
  return text;
}

} // namespace kubexm
