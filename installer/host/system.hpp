#pragma once

#include "bundle/error.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace kubexm {

// What the running system is, read without changing anything (the preflight's eyes). Every
// reader works in a container too, where some of the answers are the host kernel's.

// The IPv4 addresses on this host's interfaces (getifaddrs).
std::vector<std::string> local_ipv4_addresses();

// The TCP ports something listens on, IPv4 or IPv6 (/proc/net/tcp, tcp6).
std::set<int> listening_tcp_ports();

// "6.1.0-18-amd64" (uname -r), and its major.minor.
std::string kernel_release();
std::pair<int, int> kernel_version();

// 2 for a unified cgroup hierarchy (cgroup2 on /sys/fs/cgroup), 1 otherwise.
int cgroup_version();

// Whether a kernel module is loaded (/sys/module/NAME) or built in.
bool module_loaded(const std::string& name);
// Whether it can be loaded: a file for it under /lib/modules/$(uname -r).
bool module_available(const std::string& name);

// Active swap areas (/proc/swaps).
std::vector<std::string> active_swaps();

// MemTotal in MiB (/proc/meminfo); the CPUs this process may run on.
std::uint64_t memory_mib();
unsigned cpu_count();

// Free bytes (for root) on the filesystem of `path`, or of its nearest existing parent.
std::uint64_t free_bytes(const std::filesystem::path& path);

// The host name (uname), and setting it (sethostname).
std::string host_name();
Status set_host_name(const std::string& name);

// systemd: whether a unit file is known, and its ActiveState / UnitFileState.
bool unit_known(const std::string& unit);
std::string unit_active_state(const std::string& unit);
bool unit_enabled(const std::string& unit);

// Whether the system clock is kept in sync (timedatectl's NTPSynchronized, or a running
// chronyd, ntpd or systemd-timesyncd).
bool time_synchronised();

// Whether something accepts a TCP connection at address:port within `timeout`.
bool tcp_answers(const std::string& address, int port, std::chrono::milliseconds timeout);

// What a request that authenticates checks and sends: the server's certificate must verify
// against `ca_pem` for `server_name` before `bearer` goes out.
struct ApiCredentials {
  std::string server_name; // lb.kubexm.local
  std::string ca_pem;
  std::string bearer;
};

// An HTTPS GET of `path` at address:port: the HTTP status, or why there is none. Without
// credentials the server's certificate is not checked (the question is only whether an
// apiserver answers); with them it must verify, and a token goes only to such a server.
Result<int> https_status(const std::string& address, int port, const std::string& path,
                         std::chrono::milliseconds timeout, const ApiCredentials* credentials = nullptr);

// The subject (RFC 2253) of the PEM certificate in `cert_file` (the first one; a kubelet keeps
// its key after it), when the CA in `ca_file` signed it and it has not expired; else why not.
Result<std::string> certificate_signed_by(const std::string& cert_file, const std::string& ca_file);

} // namespace kubexm
