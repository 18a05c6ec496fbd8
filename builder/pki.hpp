#pragma once

#include "builder/site.hpp"
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
Result<PkiReport> generate_site_pki(const Site& site, const std::filesystem::path& dir, const PkiOptions& options);

} // namespace kubexm
