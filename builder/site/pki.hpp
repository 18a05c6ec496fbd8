#pragma once

#include "builder/site/site.hpp"
#include "bundle/error.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace kubexm {

enum class KeyAlgorithm { rsa2048, ecdsa_p256 };

struct PkiOptions {
  KeyAlgorithm algorithm = KeyAlgorithm::rsa2048;
  bool rotate = false; // make every key and certificate anew, even when present
};

// What generate_site_pki did: the files it wrote and the ones it kept.
struct PkiReport {
  std::vector<std::string> written;
  std::vector<std::string> kept;
};

// The cluster's PKI under DIR/pki (the site's own copy; docs/site.md#pki): the cluster,
// front-proxy and etcd CAs, the apiserver's serving certificate (every name and address
// the cluster is reached by), its kubelet and etcd client certificates, the front-proxy
// client, each etcd host's server and peer certificates, etcd's healthcheck client and the
// service-account key pair. Keys are 0600 and never printed. Present keys and certificates
// are kept (a re-run changes nothing) unless `rotate`; a certificate whose key or CA no
// longer matches is made anew. Validity: 10 years in a kubexm cluster; in a kubeadm one,
// kubeadm's defaults (CAs 10 years, the others 1 year, renewed by the timer).
// and the bootstrap token (pki/bootstrap-token, 0600) nodes join with.
Result<PkiReport> generate_site_pki(const Site& site, const std::filesystem::path& dir, const PkiOptions& options);

// The name every node reaches the apiserver by (docs/site.md#endpoint): each node's
// /etc/hosts maps it to the load balancer, the VIP, its own apiserver or the first master.
inline constexpr const char* k_control_plane_name = "lb.kubexm.local";

// The first address of the service network: the apiserver's service IP.
std::string first_service_ip(const Site& site);

// Every name and address the apiserver is reached by: its certificate's SANs.
struct SubjectNames {
  std::vector<std::string> dns;
  std::vector<std::string> ips;
};
SubjectNames apiserver_names(const Site& site);

// "sha256:<hex>" of the cluster CA's public key (DIR/pki/ca.crt), as kubeadm join's
// caCertHashes takes it.
Result<std::string> ca_cert_hash(const std::filesystem::path& dir);

// A kubeconfig's client: pki/kubeconfig/<file>.{crt,key}, its user and group.
struct KubeconfigClient {
  std::string file;
  std::string user;
  std::string group; // empty: none
};
const std::vector<KubeconfigClient>& kubeconfig_clients();

bool is_bootstrap_token(std::string_view text);
// DIR/pki/bootstrap-token, checked.
Result<std::string> read_bootstrap_token(const std::filesystem::path& dir);

} // namespace kubexm
