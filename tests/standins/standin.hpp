// kubexm-standin: what the tests run where a Kubernetes program Debian does not build would run
// (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubeadm). One
// static executable, called by those names. Each records the arguments it was given and checks
// the files they name (certificates against their CA, kubeconfigs' servers, configurations
// parsed), logging every check to /var/log/kubexm-standin/<program>.log, where the tests read
// them; a failed check stops it with a message, as the real program would stop. Beyond the
// checks each does the part of its program's job a cluster's bring-up depends on, against the
// real etcd, haproxy and kubectl: the apiserver keeps its objects in etcd and serves the API
// subset kubectl apply, get and delete use; the controller-manager approves and signs the
// kubelets' certificate requests; the kubelet bootstraps its client certificate and registers
// its node.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include <openssl/evp.h>
#include <openssl/x509.h>

namespace standin {

using json = nlohmann::json;

// --- the program's record -------------------------------------------------------------------

// The flags a program was given: --name=value (or --name value), and the rest in order.
struct Flags {
  std::map<std::string, std::string> values;
  std::vector<std::string> positional;
  std::string get(const std::string& name, const std::string& fallback = "") const;
  bool has(const std::string& name) const { return values.contains(name); }
};
Flags parse_flags(int argc, char** argv, int first);

// Starts the record of this run: the log file and the arguments.
void begin(const std::string& program, int argc, char** argv);
// One line to the log and stderr.
void note(const std::string& message);
// A check: logged "check ok: WHAT" or, on failure, "check FAILED: WHAT: WHY" and the program
// exits 1 (systemd restarts it; the unit's journal says why).
void check(bool ok, const std::string& what, const std::string& why = "");
// Tells systemd the service is ready (Type=notify), when NOTIFY_SOCKET is set.
void notify_ready();
void sleep_seconds(double seconds);

// --- files and encodings --------------------------------------------------------------------

std::optional<std::string> read_file(const std::string& path);
// Writes atomically (temp + rename) with the mode.
bool write_file(const std::string& path, const std::string& data, unsigned mode);
std::string base64_encode(const std::string& data);
std::optional<std::string> base64_decode(const std::string& text);
std::string random_hex(std::size_t bytes);
// "a,b,c" as its parts; none for "".
std::vector<std::string> split(const std::string& list, char separator = ',');
std::string utc_now(); // 2026-12-05T13:00:00Z
// The address of a name in /etc/hosts (the name itself when it is an address already).
std::optional<std::string> resolve(const std::string& name);

// --- X.509 (OpenSSL 3) ----------------------------------------------------------------------

struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct KeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Cert = std::unique_ptr<X509, X509Free>;
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

Cert cert_from_pem(const std::string& pem);
Key key_from_pem(const std::string& pem);
std::string cert_to_pem(X509* cert);
std::string key_to_pem(EVP_PKEY* key);
// "" when CERT is signed by CA (the whole verification, times included), else why not.
std::string verify_against(X509* cert, X509* ca);
bool key_matches(X509* cert, EVP_PKEY* key);
bool has_name(X509* cert, const std::string& name_or_ip);
std::string common_name(X509* cert);
std::vector<std::string> organizations(X509* cert);
bool is_ca(X509* cert);
// Seconds from now until the certificate expires (negative when it has).
long seconds_left(X509* cert);
Key new_key();
std::string make_csr(EVP_PKEY* key, const std::string& common_name, const std::string& organization);
// Signs a PEM certificate request as a client certificate valid DAYS; nullopt when the request
// is malformed or its signature does not verify. SUBJECT gets its CN and O.
std::optional<std::string> sign_csr(const std::string& csr_pem, X509* ca, EVP_PKEY* ca_key, int days,
                                    std::string& subject_cn, std::vector<std::string>& subject_o);

// Loads and checks FILE as a certificate signed by CA_FILE, with KEY_FILE its key when given.
Cert check_cert_file(const std::string& what, const std::string& file, const std::string& ca_file,
                     const std::string& key_file = "");

// --- HTTPS ----------------------------------------------------------------------------------

// Who a client is to a server: CA to verify the server with, and a client certificate or a
// bearer token.
struct ClientAuth {
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
  std::string token;
};

struct Response {
  int status = 0;
  std::string body;
};

// One request to SERVER ("https://host:port"), the server verified against the CA by its name;
// nullopt with ERROR set when no HTTP answer came.
std::optional<Response> https(const std::string& server, const std::string& method, const std::string& path,
                              const std::string& body, const ClientAuth& auth, std::string& error,
                              const std::string& content_type = "application/json");

// A request as the server read it; CLIENT_CN and CLIENT_O are the verified client certificate's.
struct Request {
  std::string method;
  std::string path;
  std::string query;
  std::map<std::string, std::string> headers; // names in lower case
  std::string body;
  std::optional<std::string> client_cn;
  std::vector<std::string> client_o;
};

struct Reply {
  int status = 200;
  std::string body;
  std::string type = "application/json";
};

// Serves HTTPS on ADDRESS:PORT with the certificate, asking clients for a certificate of
// CLIENT_CA (optional for them); a thread per connection. Returns false when it cannot listen.
bool serve_https(const std::string& address, int port, const std::string& cert_file, const std::string& key_file,
                 const std::string& client_ca_file, std::function<Reply(const Request&)> handler);

// --- kubeconfigs ----------------------------------------------------------------------------

struct Kubeconfig {
  std::string server;
  ClientAuth auth;
  std::string user;
};
// Reads and checks a kubeconfig: its server names EXPECTED_HOST (when given), its CA is a CA,
// and a client certificate verifies against it.
Kubeconfig check_kubeconfig(const std::string& what, const std::string& path, const std::string& expected_host = "");
// Host of "https://host:port".
std::string server_host(const std::string& server);

// --- the programs ---------------------------------------------------------------------------

int kube_apiserver(const Flags& flags);
int kube_controller_manager(const Flags& flags);
int kube_scheduler(const Flags& flags);
int kubelet(const Flags& flags);
int kube_proxy(const Flags& flags);
int kubeadm(const Flags& flags);

} // namespace standin
