#include "installer/role/node.hpp"

#include <algorithm>
#include <fmt/ranges.h>
#include <regex>
#include <yaml-cpp/yaml.h>

namespace kubexm {

namespace {

std::vector<std::string> strings(const YAML::Node& node) {
  std::vector<std::string> out;
  if (node && node.IsSequence()) {
    for (const auto& item : node) {
      out.push_back(item.as<std::string>(""));
    }
  }
  return out;
}

std::vector<NodeAction> actions(const YAML::Node& node, std::vector<std::string>& problems) {
  std::vector<NodeAction> out;
  if (!node) {
    return out;
  }
  for (const auto& item : node) {
    NodeAction action{item["name"].as<std::string>(""), strings(item["run"]), item["wait_for"].as<std::string>(""),
                      item["token_from"].as<std::string>("")};
    if (action.name.empty() || action.run.empty()) {
      problems.push_back("an action without a name or a command");
      continue;
    }
    if (!action.token_from.empty() && action.wait_for.empty()) {
      problems.push_back(fmt::format("action {}: token_from needs wait_for (the apiserver that checks the token)",
                                     action.name));
      continue;
    }
    out.push_back(std::move(action));
  }
  return out;
}

void read_phases(const YAML::Node& root, NodeConfig& config, std::vector<std::string>& problems) {
  for (const auto& item : root["phases"]) {
    NodePhase phase;
    phase.phase = item["phase"].as<int>(0);
    phase.before = actions(item["before"], problems);
    phase.services = strings(item["services"]);
    phase.enable = strings(item["enable"]);
    phase.disable = strings(item["disable"]);
    phase.after = actions(item["after"], problems);
    config.phases.push_back(std::move(phase));
  }
  std::ranges::sort(config.phases, {}, &NodePhase::phase);
}

} // namespace

bool NodeConfig::has(std::string_view role) const {
  return std::ranges::find(roles, role) != roles.end();
}

std::optional<std::string> NodeConfig::address_of(const std::string& name) const {
  static const std::regex ipv4("[0-9]{1,3}(\\.[0-9]{1,3}){3}");
  if (std::regex_match(name, ipv4)) {
    return name;
  }
  for (const auto& entry : hosts) {
    if (std::ranges::find(entry.names, name) != entry.names.end()) {
      return entry.address;
    }
  }
  return std::nullopt;
}

std::vector<std::string> NodeConfig::all_services() const {
  std::vector<std::string> out;
  for (const auto& phase : phases) {
    out.insert(out.end(), phase.services.begin(), phase.services.end());
    out.insert(out.end(), phase.enable.begin(), phase.enable.end());
  }
  return out;
}

Result<NodeConfig> parse_node_config(std::string_view text, std::string_view what) {
  NodeConfig config;
  std::vector<std::string> problems;
  try {
    auto root = YAML::Load(std::string(text));
    if (!root.IsMap()) {
      return fail_verification("{}: expected a mapping", what);
    }
    config.node = root["node"].as<std::string>("");
    config.prepare = root["prepare"].as<std::string>("");
    config.address = root["address"].as<std::string>("");
    config.arch = root["arch"].as<std::string>("");
    config.roles = strings(root["roles"]);
    config.cluster = root["cluster"].as<std::string>("");
    config.deployment = root["deployment"].as<std::string>("");
    for (const auto& item : root["hosts"]) {
      config.hosts.push_back({item["address"].as<std::string>(""), strings(item["names"])});
    }
    read_phases(root, config, problems);
  } catch (const YAML::Exception& e) {
    return fail_verification("{}: line {}: {}", what, e.mark.line + 1, e.msg);
  }
  bool prepared = !config.prepare.empty(); // a bundle without a site: no node, no address
  if (config.roles.empty() || (!prepared && (config.node.empty() || config.address.empty()))) {
    problems.push_back("node, address and roles are required");
  }
  if (!problems.empty()) {
    return fail_verification("{}: {}", what, fmt::join(problems, "; "));
  }
  return config;
}

namespace {

std::string site_listing(const SiteRecord& site, const std::vector<std::string>& addresses, const std::string& name) {
  std::string out = fmt::format("the site {} has:", site.name);
  for (const auto& node : site.nodes) {
    out += fmt::format("\n  {:<16} {:<15} {}", node.name, node.address, fmt::join(node.roles, ", "));
  }
  std::vector<std::string> own;
  std::ranges::copy_if(addresses, std::back_inserter(own), [](const std::string& a) { return !a.starts_with("127."); });
  out += fmt::format("\nthis host is '{}' with addresses {}", name,
                     own.empty() ? std::string("(none but loopback)") : fmt::format("{}", fmt::join(own, ", ")));
  return out;
}

} // namespace

Result<NodeChoice> choose_node(const SiteRecord& site, const std::optional<std::string>& named,
                               const std::vector<std::string>& addresses, const std::string& host_name) {
  if (named) {
    if (const auto* node = site.find(*named)) {
      return NodeChoice{node, "--node"};
    }
    return std::unexpected(Error(ErrorKind::usage, fmt::format("--node {}: no such node; {}", *named,
                                                               site_listing(site, addresses, host_name))));
  }
  std::vector<const SiteNodeRecord*> by_address;
  for (const auto& node : site.nodes) {
    if (std::ranges::find(addresses, node.address) != addresses.end()) {
      by_address.push_back(&node);
    }
  }
  if (by_address.size() == 1) {
    return NodeChoice{by_address.front(), fmt::format("its address {} is on this host", by_address.front()->address)};
  }
  if (by_address.size() > 1) {
    std::vector<std::string> names;
    for (const auto* node : by_address) {
      names.push_back(fmt::format("{} ({})", node->name, node->address));
    }
    return fail("the addresses of several nodes are on this host: {}; say which this is with --node NAME; {}",
                fmt::join(names, ", "), site_listing(site, addresses, host_name));
  }
  auto short_name = host_name.substr(0, host_name.find('.'));
  if (const auto* node = site.find(short_name)) {
    return NodeChoice{node, fmt::format("it is named like this host ({})", host_name)};
  }
  return fail("no node of the site is this host: none of their addresses is on its interfaces and none is named "
              "'{}'; give --node NAME, or configure the node's address; {}",
              short_name, site_listing(site, addresses, host_name));
}

} // namespace kubexm
