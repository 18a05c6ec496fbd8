// The site's PKI with OpenSSL 3's EVP and X509 APIs: keys, CAs and the certificates a
// cluster's components present to each other.
#include "builder/site/pki.hpp"

#include "bundle/fs.hpp"
#include "bundle/sha256.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <memory>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;
using Bio = std::unique_ptr<BIO, Free>;

// OpenSSL's own reason for the last failure, for our message.
std::string openssl_error() {
  auto code = ERR_get_error();
  char text[256] = "unknown OpenSSL error";
  if (code != 0) {
    ERR_error_string_n(code, text, sizeof text);
  }
  ERR_clear_error();
  return text;
}

Result<Key> make_key(KeyAlgorithm algorithm) {
  EVP_PKEY* key = algorithm == KeyAlgorithm::rsa2048 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048})
                                                     : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (key == nullptr) {
    return fail("generating a key: {}", openssl_error());
  }
  return Key(key);
}

std::string pem_of(const std::function<int(BIO*)>& write) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) != 1) {
    return {};
  }
  char* data = nullptr;
  auto size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

// A file written whole, with `mode`, or an error.
Status write_pem(const fs::path& path, const std::string& pem, unsigned mode) {
  if (pem.empty()) {
    return fail("encoding {}: {}", path.string(), openssl_error());
  }
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  return write_file_atomic(path, pem, mode);
}

// The first PEM object of the file at `path`, read by `parse` (a PEM_read_bio_* function).
template <typename T, typename Parse>
Result<std::unique_ptr<T, Free>> read_pem(const fs::path& path, Parse parse, const char* what) {
  auto text = read_text_file(path, 1 << 20);
  if (!text) {
    return std::unexpected(text.error());
  }
  Bio bio(BIO_new_mem_buf(text->data(), static_cast<int>(text->size())));
  T* object = parse(bio.get(), nullptr, nullptr, nullptr);
  if (object == nullptr) {
    return fail("{} is not a PEM {}: {}", path.string(), what, openssl_error());
  }
  return std::unique_ptr<T, Free>(object);
}

Result<Key> read_key(const fs::path& path) {
  return read_pem<EVP_PKEY>(path, PEM_read_bio_PrivateKey, "private key");
}

Result<Cert> read_cert(const fs::path& path) {
  return read_pem<X509>(path, PEM_read_bio_X509, "certificate");
}

// One certificate to make: who it is, what it may do, and for which names.
struct CertSpec {
  std::string file; // under pki/, without .crt/.key: "apiserver", "etcd/peer-etcd1"
  std::string common_name;
  std::vector<std::string> organizations;
  bool ca = false;
  bool server = false;
  bool client = false;
  std::vector<std::string> dns;
  std::vector<std::string> ips;
  long days = 365;
};

struct Issued {
  Key key;
  Cert cert;
};

Status add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
  std::unique_ptr<X509_EXTENSION, Free> extension(X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str()));
  if (!extension || X509_add_ext(cert, extension.get(), -1) != 1) {
    return fail("adding {} = {}: {}", OBJ_nid2sn(nid), value, openssl_error());
  }
  return {};
}

// Signs `spec` for `key` with `issuer` (itself when null: a CA).
Result<Cert> sign(const CertSpec& spec, EVP_PKEY* key, const Issued* issuer) {
  Cert cert(X509_new());
  std::unique_ptr<BIGNUM, Free> serial(BN_new());
  if (!cert || !serial || X509_set_version(cert.get(), 2) != 1 ||
      BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    return fail("{}: {}", spec.file, openssl_error());
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  for (const auto& organization : spec.organizations) {
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(organization.c_str()),
                               -1, -1, 0);
  }
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1, -1, 0);
  X509* issuer_cert = issuer ? issuer->cert.get() : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert));
  // A few minutes back, for hosts whose clocks run a little behind the build machine's.
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -300);
  X509_time_adj_ex(X509_getm_notAfter(cert.get()), static_cast<int>(spec.days), 0, nullptr);
  X509_set_pubkey(cert.get(), key);
  std::vector<std::pair<int, std::string>> extensions;
  if (spec.ca) {
    extensions = {{NID_basic_constraints, "critical,CA:TRUE"},
                  {NID_key_usage, "critical,digitalSignature,keyEncipherment,keyCertSign"},
                  {NID_subject_key_identifier, "hash"}};
  } else {
    std::vector<std::string> usage;
    if (spec.server) {
      usage.emplace_back("serverAuth");
    }
    if (spec.client) {
      usage.emplace_back("clientAuth");
    }
    extensions = {{NID_basic_constraints, "critical,CA:FALSE"},
                  {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
                  {NID_ext_key_usage, fmt::format("{}", fmt::join(usage, ","))},
                  {NID_authority_key_identifier, "keyid:always"}};
    std::vector<std::string> names;
    for (const auto& dns : spec.dns) {
      names.push_back("DNS:" + dns);
    }
    for (const auto& ip : spec.ips) {
      names.push_back("IP:" + ip);
    }
    if (!names.empty()) {
      extensions.emplace_back(NID_subject_alt_name, fmt::format("{}", fmt::join(names, ",")));
    }
  }
  for (const auto& [nid, value] : extensions) {
    if (auto status = add_extension(cert.get(), issuer_cert, nid, value); !status) {
      return add_context(status.error(), spec.file);
    }
  }
  EVP_PKEY* signer = issuer ? issuer->key.get() : key;
  if (X509_sign(cert.get(), signer, EVP_sha256()) == 0) {
    return fail("signing {}: {}", spec.file, openssl_error());
  }
  return cert;
}

// Whether `cert` carries every name and address of `spec`: a site that gained a master or
// a VIP needs them in its certificates, and kubeadm refuses certificates that lack one.
bool names_all(X509* cert, const CertSpec& spec) {
  return std::ranges::all_of(spec.dns,
                             [&](const std::string& name) {
                               return X509_check_host(cert, name.c_str(), name.size(), 0, nullptr) == 1;
                             }) &&
         std::ranges::all_of(spec.ips,
                             [&](const std::string& ip) { return X509_check_ip_asc(cert, ip.c_str(), 0) == 1; });
}

// The key and certificate of `spec` under `pki`: kept when both are there, match, are
// signed by `issuer` and name everything `spec` names; made otherwise.
Result<Issued> ensure(const fs::path& pki, const CertSpec& spec, const Issued* issuer, const PkiOptions& options,
                      PkiReport& report) {
  auto key_path = pki / (spec.file + ".key");
  auto cert_path = pki / (spec.file + ".crt");
  std::error_code ec;
  if (!options.rotate && fs::exists(key_path, ec) && fs::exists(cert_path, ec)) {
    auto key = read_key(key_path);
    auto cert = read_cert(cert_path);
    if (key && cert && X509_check_private_key(cert->get(), key->get()) == 1 &&
        (issuer == nullptr || X509_verify(cert->get(), X509_get0_pubkey(issuer->cert.get())) == 1) &&
        names_all(cert->get(), spec)) {
      report.kept.push_back(spec.file);
      return Issued{std::move(*key), std::move(*cert)};
    }
    ERR_clear_error();
  }
  auto key = make_key(options.algorithm);
  if (!key) {
    return std::unexpected(key.error());
  }
  auto cert = sign(spec, key->get(), issuer);
  if (!cert) {
    return std::unexpected(cert.error());
  }
  auto key_pem = pem_of(
      [&](BIO* bio) { return PEM_write_bio_PrivateKey(bio, key->get(), nullptr, nullptr, 0, nullptr, nullptr); });
  auto cert_pem = pem_of([&](BIO* bio) { return PEM_write_bio_X509(bio, cert->get()); });
  if (auto status = write_pem(key_path, key_pem, 0600); !status) {
    return std::unexpected(status.error());
  }
  if (auto status = write_pem(cert_path, cert_pem, 0644); !status) {
    return std::unexpected(status.error());
  }
  report.written.push_back(spec.file);
  return Issued{std::move(*key), std::move(*cert)};
}

// The service-account key pair: sa.key and sa.pub, kept when present.
Status ensure_service_account(const fs::path& pki, const PkiOptions& options, PkiReport& report) {
  std::error_code ec;
  if (!options.rotate && fs::exists(pki / "sa.key", ec) && fs::exists(pki / "sa.pub", ec) && read_key(pki / "sa.key")) {
    report.kept.emplace_back("sa");
    return {};
  }
  auto key = make_key(options.algorithm);
  if (!key) {
    return std::unexpected(key.error());
  }
  auto private_pem = pem_of(
      [&](BIO* bio) { return PEM_write_bio_PrivateKey(bio, key->get(), nullptr, nullptr, 0, nullptr, nullptr); });
  auto public_pem = pem_of([&](BIO* bio) { return PEM_write_bio_PUBKEY(bio, key->get()); });
  if (auto status = write_pem(pki / "sa.key", private_pem, 0600); !status) {
    return status;
  }
  if (auto status = write_pem(pki / "sa.pub", public_pem, 0644); !status) {
    return status;
  }
  report.written.emplace_back("sa");
  return {};
}

} // namespace

const std::vector<KubeconfigClient>& kubeconfig_clients() {
  static const std::vector<KubeconfigClient> clients = {
      {"admin", "kubernetes-admin", "system:masters"},
      {"controller-manager", "system:kube-controller-manager", ""},
      {"scheduler", "system:kube-scheduler", ""},
      {"kube-proxy", "system:kube-proxy", ""},
  };
  return clients;
}

std::string first_service_ip(const Site& site) {
  auto net = parse_ipv4_net(site.service_cidr);
  return ipv4_text(net ? net->address + 1 : 0);
}

SubjectNames apiserver_names(const Site& site) {
  SubjectNames names;
  names.dns = {
      "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + site.cluster_domain,
      "localhost",  k_control_plane_name};
  names.ips = {first_service_ip(site), "127.0.0.1"};
  for (const auto* master : site.with_role("master")) {
    names.dns.push_back(master->name);
    names.ips.push_back(master->address);
  }
  if (!site.loadbalancer.vip.empty()) {
    names.ips.push_back(site.loadbalancer.vip);
  }
  for (const auto* lb : site.with_role("lb")) {
    names.ips.push_back(lb->address);
  }
  return names;
}

Result<std::string> ca_cert_hash(const fs::path& dir) {
  auto cert = read_cert(dir / "pki" / "ca.crt");
  if (!cert) {
    return std::unexpected(cert.error());
  }
  unsigned char* der = nullptr;
  int size = i2d_PUBKEY(X509_get0_pubkey(cert->get()), &der);
  if (size <= 0) {
    return fail("encoding the public key of {}: {}", (dir / "pki" / "ca.crt").string(), openssl_error());
  }
  Sha256 hash;
  hash.update(std::string_view(reinterpret_cast<const char*>(der), static_cast<std::size_t>(size)));
  OPENSSL_free(der);
  return "sha256:" + to_hex(hash.finish());
}

namespace {

CertSpec apiserver_spec(const Site& site, long days) {
  auto names = apiserver_names(site);
  return {"apiserver", "kube-apiserver", {}, false, true, false, names.dns, names.ips, days};
}

std::string_view trim_newline(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

// A bootstrap token, [a-z0-9]{6}.[a-z0-9]{16}, from OpenSSL's random generator; bytes that
// would bias the alphabet are drawn again.
Result<std::string> make_bootstrap_token() {
  static constexpr std::string_view alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string token;
  while (token.size() < 23) {
    unsigned char byte = 0;
    if (RAND_bytes(&byte, 1) != 1) {
      return fail("drawing a bootstrap token: {}", openssl_error());
    }
    if (byte >= 252) { // 252 = 7 * 36: the largest multiple of the alphabet's size in a byte
      continue;
    }
    token += alphabet[byte % alphabet.size()];
    if (token.size() == 6) {
      token += '.';
    }
  }
  return token;
}

// DIR/pki/bootstrap-token: kept when it is a well-formed token, unless rotating.
Status ensure_bootstrap_token(const fs::path& dir, const PkiOptions& options, PkiReport& report) {
  auto path = dir / "pki" / "bootstrap-token";
  if (!options.rotate && read_bootstrap_token(dir)) {
    report.kept.emplace_back("bootstrap-token");
    return {};
  }
  auto token = make_bootstrap_token();
  if (!token) {
    return std::unexpected(token.error());
  }
  if (auto status = write_pem(path, *token + "\n", 0600); !status) {
    return status;
  }
  report.written.emplace_back("bootstrap-token");
  return {};
}

} // namespace

bool is_bootstrap_token(std::string_view text) {
  auto ok = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  return text.size() == 23 && text[6] == '.' && std::ranges::all_of(text.substr(0, 6), ok) &&
         std::ranges::all_of(text.substr(7), ok);
}

Result<std::string> read_bootstrap_token(const fs::path& dir) {
  auto path = dir / "pki" / "bootstrap-token";
  auto text = read_text_file(path, 4096);
  if (!text) {
    return std::unexpected(text.error());
  }
  auto token = trim_newline(*text);
  if (!is_bootstrap_token(token)) {
    return fail("{} is not a bootstrap token ([a-z0-9]{{6}}.[a-z0-9]{{16}}); run site -o again with --rotate",
                path.string());
  }
  return std::string(token);
}

Result<PkiReport> generate_site_pki(const Site& site, const fs::path& dir, const PkiOptions& options) {
  auto pki = dir / "pki";
  PkiReport report;
  bool kubexm = site.kubernetes_type == "kubexm";
  long ca_days = 3650;
  long leaf_days = kubexm ? 3650 : 365;
  // kubeadm renews the certificates of its own etcd, not those of a kubexm etcd: theirs are
  // made to last, like a kubexm cluster's.
  long etcd_days = site.etcd_type == "kubexm" ? 3650 : leaf_days;
  auto ca = ensure(pki, {"ca", "kubernetes", {}, true, false, false, {}, {}, ca_days}, nullptr, options, report);
  auto front = ensure(pki, {"front-proxy-ca", "front-proxy-ca", {}, true, false, false, {}, {}, ca_days}, nullptr,
                      options, report);
  auto etcd = ensure(pki, {"etcd/ca", "etcd-ca", {}, true, false, false, {}, {}, ca_days}, nullptr, options, report);
  for (auto* failed : {&ca, &front, &etcd}) {
    if (!*failed) {
      return add_context(failed->error(), fmt::format("the CAs under {}", pki.string()));
    }
  }
  std::vector<std::pair<CertSpec, const Issued*>> leaves = {
      {apiserver_spec(site, leaf_days), &*ca},
      {{"apiserver-kubelet-client",
        "kube-apiserver-kubelet-client",
        {"kubeadm:cluster-admins"},
        false,
        false,
        true,
        {},
        {},
        leaf_days},
       &*ca},
      {{"front-proxy-client", "front-proxy-client", {}, false, false, true, {}, {}, leaf_days}, &*front},
      {{"apiserver-etcd-client", "kube-apiserver-etcd-client", {}, false, false, true, {}, {}, etcd_days}, &*etcd},
      {{"etcd/healthcheck-client", "kube-etcd-healthcheck-client", {}, false, false, true, {}, {}, etcd_days}, &*etcd},
  };
  // The clients the kubeconfigs carry (render.cpp embeds them). admin is in system:masters,
  // bound to cluster-admin by the apiserver itself, so it works before any RBAC is applied.
  for (const auto& [file, user, group] : kubeconfig_clients()) {
    leaves.push_back({{"kubeconfig/" + file,
                       user,
                       group.empty() ? std::vector<std::string>{} : std::vector<std::string>{group},
                       false,
                       false,
                       true,
                       {},
                       {},
                       leaf_days},
                      &*ca});
  }
  auto members = site.etcd_type == "kubeadm" ? site.with_role("master") : site.with_role("etcd");
  for (const auto* member : members) {
    std::vector<std::string> dns = {member->name, "localhost"};
    // kubeadm checks an etcd member's certificates for ::1 as well.
    std::vector<std::string> ips = {member->address, "127.0.0.1", "::1"};
    leaves.push_back(
        {{"etcd/server-" + member->name, member->name, {}, false, true, true, dns, ips, etcd_days}, &*etcd});
    leaves.push_back({{"etcd/peer-" + member->name, member->name, {}, false, true, true, dns, ips, etcd_days}, &*etcd});
  }
  std::vector<Error> errors;
  for (const auto& [spec, issuer] : leaves) {
    if (auto issued = ensure(pki, spec, issuer, options, report); !issued) {
      errors.push_back(issued.error());
    }
  }
  if (auto status = ensure_service_account(pki, options, report); !status) {
    errors.push_back(status.error());
  }
  if (auto status = ensure_bootstrap_token(dir, options, report); !status) {
    errors.push_back(status.error());
  }
  if (auto status = join_errors(errors); !status) {
    return add_context(status.error(), fmt::format("the PKI under {}", pki.string()));
  }
  return report;
}

} // namespace kubexm
