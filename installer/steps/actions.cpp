// After actions: node.yaml's commands after the services (kubeadm init or join, the kubelet's
// TLS bootstrap, applying manifests), in order, each once: one that needs an apiserver waits
// for it to answer, as long as --wait allows.
#include "installer/host/system.hpp"
#include "installer/role/step.hpp"
#include "installer/steps/steps.hpp"

#include <charconv>
#include <optional>
#include <fmt/ranges.h>
#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

namespace kubexm {

namespace {

// Waits until an apiserver is ready at `wait_for` ("host:port", the host a name of the node's
// hosts block): its /readyz answers 200, which it does once its etcd answers.
Status wait_for_apiserver(RoleContext& ctx, const NodeConfig& config, const NodeAction& action) {
  auto colon = action.wait_for.rfind(':');
  int port = 0;
  auto host = action.wait_for.substr(0, colon);
  if (colon == std::string::npos ||
      std::from_chars(action.wait_for.data() + colon + 1, action.wait_for.data() + action.wait_for.size(), port).ec !=
          std::errc()) {
    return fail("node.yaml: action {}: wait_for '{}' is not host:port", action.name, action.wait_for);
  }
  auto address = config.address_of(host);
  if (!address) {
    return fail("node.yaml: action {}: {} is not in the node's hosts", action.name, host);
  }
  std::string last;
  auto what = fmt::format("an apiserver to answer at {} ({}:{}), which {} needs", action.wait_for, *address, port,
                          action.name);
  auto waited = wait_until(
      [&] {
        auto status = https_status(*address, port, "/readyz", std::chrono::seconds(3));
        last = status ? fmt::format("/readyz answered HTTP {}", *status) : status.error().message();
        return status && *status == 200;
      },
      ctx.request.wait, what);
  if (waited == Waited::ready) {
    return {};
  }
  if (waited == Waited::interrupted) {
    return std::unexpected(Error(ErrorKind::interrupted, "interrupted; run again to go on"));
  }
  return std::unexpected(Error(ErrorKind::waiting,
                               fmt::format("no apiserver answered at {} ({}:{}) within {} s ({}); {} waits for it. Run "
                                           "again once the masters are up; done steps are not repeated",
                                           action.wait_for, *address, port, ctx.request.wait.count(), last,
                                           action.name)));
}

std::string base64_decoded(const std::string& text) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  auto length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (length < 0) {
    return {};
  }
  auto padding = text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0;
  out.resize(static_cast<std::size_t>(length - padding));
  return out;
}

// The token and CA of a bootstrap kubeconfig (its first cluster and user).
Result<ApiCredentials> bootstrap_credentials(RoleContext& ctx, const std::string& kubeconfig, const std::string& host) {
  auto text = read_text_file(ctx.effects->at(kubeconfig), 1 << 20);
  if (!text) {
    return std::unexpected(text.error());
  }
  ApiCredentials credentials{host, {}, {}};
  try {
    auto root = YAML::Load(*text);
    credentials.ca_pem = base64_decoded(root["clusters"][0]["cluster"]["certificate-authority-data"].as<std::string>(""));
    credentials.bearer = root["users"][0]["user"]["token"].as<std::string>("");
  } catch (const YAML::Exception& e) {
    return fail("{}: not a kubeconfig: {}", kubeconfig, e.what());
  }
  if (credentials.ca_pem.empty() || credentials.bearer.empty()) {
    return fail("{}: a bootstrap kubeconfig needs certificate-authority-data and a user's token", kubeconfig);
  }
  return credentials;
}

// The site's first master: the one whose `apply-bootstrap` action puts the token in place.
std::string first_master(const RoleContext& ctx) {
  if (ctx.header.info.site) {
    for (const auto& node : ctx.header.info.site->nodes) {
      if (std::ranges::find(node.roles, "master") != node.roles.end()) {
        return node.name;
      }
    }
  }
  return "the first master";
}

// A node joining with a bootstrap token (`token_from`) checks it before its kubelet starts:
// the apiserver must prove itself with the CA of the node's kubeconfig (else the bundle is
// another cluster's, and the token is not sent), and accept the token. It accepts it once
// the first master has applied it and refuses it again once `install finish` deleted it, so
// a refusal is waited out like the apiserver itself, and the end of the wait names both
// causes. A node whose kubelet holds its client certificate already does not need it.
Status check_bootstrap_token(RoleContext& ctx, const NodeConfig& config, const NodeAction& action) {
  if (std::filesystem::exists(ctx.effects->at("/var/lib/kubelet/pki/kubelet-client-current.pem"))) {
    return {};
  }
  auto colon = action.wait_for.rfind(':');
  auto host = action.wait_for.substr(0, colon);
  int port = 0;
  std::from_chars(action.wait_for.data() + colon + 1, action.wait_for.data() + action.wait_for.size(), port);
  auto credentials = bootstrap_credentials(ctx, action.token_from, host);
  if (!credentials) {
    return std::unexpected(credentials.error());
  }
  auto address = config.address_of(host).value_or(host);
  auto id = credentials->bearer.substr(0, credentials->bearer.find('.'));
  auto master = first_master(ctx);
  std::optional<Error> untrusted;
  std::string last;
  auto waited = wait_until(
      [&] {
        auto status = https_status(address, port, "/apis/certificates.k8s.io/v1/certificatesigningrequests",
                                   std::chrono::seconds(5), &*credentials);
        if (!status && status.error().kind() == ErrorKind::verification) {
          untrusted = status.error();
          return true;
        }
        last = status ? fmt::format("HTTP {}", *status) : status.error().message();
        return status && *status != 401;
      },
      ctx.request.wait,
      fmt::format("the apiserver at {} to accept this node's bootstrap token (id {}), which {} applies", action.wait_for,
                  id, master));
  if (untrusted) {
    return fail("the apiserver at {} is not the cluster this node's files are for: {}, the CA of {}. The bundle "
                "installed here was built for another cluster, or its PKI was made anew (--rotate) after the cluster "
                "was installed; install this node from the bundle the cluster's masters were installed from",
                action.wait_for, untrusted->message(), action.token_from);
  }
  if (waited == Waited::ready) {
    return {};
  }
  if (waited == Waited::interrupted) {
    return std::unexpected(Error(ErrorKind::interrupted, "interrupted; run again to go on"));
  }
  if (last != "HTTP 401") {
    return std::unexpected(Error(ErrorKind::waiting, fmt::format("the bootstrap token of {} could not be checked at {} "
                                                                 "within {} s ({}); run again once it answers",
                                                                 action.token_from, action.wait_for,
                                                                 ctx.request.wait.count(), last)));
  }
  return std::unexpected(Error(
      ErrorKind::waiting,
      fmt::format("the apiserver at {} refused this node's bootstrap token (id {}, in {}) for {} s. Either {} has not "
                  "applied it yet: run ./install --role=master there, then this again; or `./install finish` deleted "
                  "it once every node had joined: put it back on {} (kubectl --kubeconfig /etc/kubernetes/admin.conf "
                  "apply -f /etc/kubernetes/addons/kubexm-bootstrap.yaml), run this install again, then `./install "
                  "finish` once more",
                  action.wait_for, id, action.token_from, ctx.request.wait.count(), master, master)));
}

} // namespace

std::string plan_actions(const RoleContext& ctx) {
  if (!ctx.config) {
    return "run node.yaml's `after` actions, each once, waiting for the apiserver where one needs it";
  }
  std::vector<std::string> actions;
  for (const auto& phase : ctx.config->phases) {
    for (const auto& action : phase.after) {
      actions.push_back(action.wait_for.empty() ? action.name
                        : action.token_from.empty()
                            ? fmt::format("{} (waits for an apiserver at {})", action.name, action.wait_for)
                            : fmt::format("{} (waits for an apiserver at {}, which must accept the token of {})",
                                          action.name, action.wait_for, action.token_from));
    }
  }
  return actions.empty() ? std::string("no `after` actions in node.yaml")
                         : fmt::format("run once each, in order: {}", fmt::join(actions, ", "));
}

Status run_after_actions(RoleContext& ctx) {
  auto config = ctx.node_config();
  if (!config) {
    return std::unexpected(config.error());
  }
  std::vector<std::string> ran;
  std::vector<std::string> earlier;
  for (const auto& phase : (*config)->phases) {
    for (const auto& action : phase.after) {
      if (ctx.effects->action_done(action.name)) {
        earlier.push_back(action.name);
        continue;
      }
      if (!action.wait_for.empty()) {
        if (auto status = wait_for_apiserver(ctx, **config, action); !status) {
          return status;
        }
      }
      if (!action.token_from.empty()) {
        if (auto status = check_bootstrap_token(ctx, **config, action); !status) {
          return status;
        }
      }
      if (auto status = ctx.effects->run(action.name, action.run); !status) {
        return status;
      }
      if (auto status = ctx.effects->record_action(action.name); !status) {
        return status;
      }
      ran.push_back(action.name);
    }
  }
  ctx.detail = fmt::format("{}{}", ran.empty() ? std::string("none to run") : fmt::format("ran {}", fmt::join(ran, ", ")),
                           earlier.empty() ? std::string() : fmt::format("; done earlier: {}", fmt::join(earlier, ", ")));
  return {};
}

} // namespace kubexm
