// Certificates, keys and requests for the stand-ins' checks and signing (OpenSSL 3).
#include "tests/standins/standin.hpp"

#include <ctime>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

namespace standin {

namespace {

struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using Bio = std::unique_ptr<BIO, BioFree>;

Bio memory_bio(const std::string& text) {
  return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string drain(BIO* bio) {
  char* data = nullptr;
  auto size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(size));
}

std::vector<std::string> name_entries(X509_NAME* name, int nid) {
  std::vector<std::string> out;
  for (int at = X509_NAME_get_index_by_NID(name, nid, -1); at >= 0; at = X509_NAME_get_index_by_NID(name, nid, at)) {
    auto* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, at));
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                     static_cast<std::size_t>(ASN1_STRING_length(data)));
  }
  return out;
}

} // namespace

Cert cert_from_pem(const std::string& pem) {
  auto bio = memory_bio(pem);
  return Cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

Key key_from_pem(const std::string& pem) {
  auto bio = memory_bio(pem);
  return Key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

std::string cert_to_pem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  return drain(bio.get());
}

std::string key_to_pem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  return drain(bio.get());
}

std::string verify_against(X509* cert, X509* ca) {
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  X509_STORE_add_cert(store.get(), ca);
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> context(X509_STORE_CTX_new(), X509_STORE_CTX_free);
  X509_STORE_CTX_init(context.get(), store.get(), cert, nullptr);
  if (X509_verify_cert(context.get()) == 1) {
    return "";
  }
  return X509_verify_cert_error_string(X509_STORE_CTX_get_error(context.get()));
}

bool key_matches(X509* cert, EVP_PKEY* key) {
  bool ok = X509_check_private_key(cert, key) == 1;
  ERR_clear_error();
  return ok;
}

bool has_name(X509* cert, const std::string& name_or_ip) {
  if (X509_check_ip_asc(cert, name_or_ip.c_str(), 0) == 1) {
    return true;
  }
  return X509_check_host(cert, name_or_ip.data(), name_or_ip.size(), 0, nullptr) == 1;
}

std::string common_name(X509* cert) {
  auto names = name_entries(X509_get_subject_name(cert), NID_commonName);
  return names.empty() ? std::string() : names.front();
}

std::vector<std::string> organizations(X509* cert) {
  return name_entries(X509_get_subject_name(cert), NID_organizationName);
}

bool is_ca(X509* cert) {
  return X509_check_ca(cert) >= 1;
}

long seconds_left(X509* cert) {
  int days = 0;
  int seconds = 0;
  ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(cert));
  return static_cast<long>(days) * 86400 + seconds;
}

Key new_key() {
  return Key(EVP_EC_gen("P-256"));
}

std::string make_csr(EVP_PKEY* key, const std::string& cn, const std::string& organization) {
  std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> request(X509_REQ_new(), X509_REQ_free);
  auto* name = X509_REQ_get_subject_name(request.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(organization.c_str()),
                             -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                             0);
  X509_REQ_set_pubkey(request.get(), key);
  X509_REQ_sign(request.get(), key, EVP_sha256());
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), request.get());
  return drain(bio.get());
}

std::optional<std::string> sign_csr(const std::string& csr_pem, X509* ca, EVP_PKEY* ca_key, int days,
                                    std::string& subject_cn, std::vector<std::string>& subject_o) {
  auto bio = memory_bio(csr_pem);
  std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> request(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr),
                                                              X509_REQ_free);
  if (!request) {
    return std::nullopt;
  }
  Key public_key(X509_REQ_get_pubkey(request.get()));
  if (!public_key || X509_REQ_verify(request.get(), public_key.get()) != 1) {
    ERR_clear_error();
    return std::nullopt;
  }
  auto* subject = X509_REQ_get_subject_name(request.get());
  auto cns = name_entries(subject, NID_commonName);
  subject_cn = cns.empty() ? "" : cns.front();
  subject_o = name_entries(subject, NID_organizationName);
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  std::unique_ptr<BIGNUM, decltype(&BN_free)> number(BN_bin2bn(serial, sizeof serial, nullptr), BN_free);
  BN_to_ASN1_INTEGER(number.get(), X509_get_serialNumber(cert.get()));
  X509_set_subject_name(cert.get(), subject);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -300);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400);
  X509_set_pubkey(cert.get(), public_key.get());
  X509V3_CTX context;
  X509V3_set_ctx(&context, ca, cert.get(), nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_key_usage, "critical,digitalSignature,keyEncipherment"},
                            std::pair{NID_ext_key_usage, "clientAuth"}, std::pair{NID_basic_constraints, "critical,CA:FALSE"}}) {
    std::unique_ptr<X509_EXTENSION, decltype(&X509_EXTENSION_free)> extension(
        X509V3_EXT_conf_nid(nullptr, &context, nid, value), X509_EXTENSION_free);
    X509_add_ext(cert.get(), extension.get(), -1);
  }
  if (X509_sign(cert.get(), ca_key, EVP_sha256()) == 0) {
    return std::nullopt;
  }
  return cert_to_pem(cert.get());
}

Cert check_cert_file(const std::string& what, const std::string& file, const std::string& ca_file,
                     const std::string& key_file) {
  auto pem = read_file(file);
  check(pem.has_value(), what + ": " + file + " is there", "missing");
  auto cert = cert_from_pem(*pem);
  check(cert != nullptr, what + ": " + file + " is a PEM certificate", "it does not parse");
  auto ca_pem = read_file(ca_file);
  check(ca_pem.has_value(), what + ": its CA " + ca_file + " is there", "missing");
  auto ca = cert_from_pem(*ca_pem);
  check(ca != nullptr && is_ca(ca.get()), what + ": " + ca_file + " is a CA certificate", "it is not");
  auto why = verify_against(cert.get(), ca.get());
  check(why.empty(), what + ": " + file + " verifies against " + ca_file, why);
  if (!key_file.empty()) {
    auto key_pem = read_file(key_file);
    auto key = key_pem ? key_from_pem(*key_pem) : nullptr;
    check(key != nullptr && key_matches(cert.get(), key.get()), what + ": " + key_file + " is the key of " + file,
          key ? "another key" : "no readable key");
  }
  return cert;
}

} // namespace standin
