// The stand-ins' record (flags, log, checks), files, encodings and the hosts file.
#include "tests/standins/standin.hpp"

#include <arpa/inet.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

namespace standin {

namespace {

std::string g_program = "standin";
std::string g_log_path;
std::mutex g_log_mutex;

} // namespace

std::string Flags::get(const std::string& name, const std::string& fallback) const {
  auto found = values.find(name);
  return found == values.end() ? fallback : found->second;
}

Flags parse_flags(int argc, char** argv, int first) {
  Flags flags;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (!arg.starts_with("--")) {
      flags.positional.push_back(arg);
      continue;
    }
    auto equals = arg.find('=');
    if (equals != std::string::npos) {
      flags.values[arg.substr(2, equals - 2)] = arg.substr(equals + 1);
    } else if (i + 1 < argc && std::string_view(argv[i + 1]).substr(0, 2) != "--") {
      flags.values[arg.substr(2)] = argv[++i];
    } else {
      flags.values[arg.substr(2)] = "true";
    }
  }
  return flags;
}

void begin(const std::string& program, int argc, char** argv) {
  g_program = program;
  ::mkdir("/var/log/kubexm-standin", 0755);
  g_log_path = "/var/log/kubexm-standin/" + program + ".log";
  std::string args;
  for (int i = 1; i < argc; ++i) {
    args += std::string(i > 1 ? " " : "") + argv[i];
  }
  note("started (a stand-in: records its arguments and checks the files they name): args: " + args);
}

void note(const std::string& message) {
  std::lock_guard lock(g_log_mutex);
  auto line = utc_now() + " " + g_program + ": " + message + "\n";
  std::cerr << line << std::flush;
  if (!g_log_path.empty()) {
    std::ofstream(g_log_path, std::ios::app) << line;
  }
}

void check(bool ok, const std::string& what, const std::string& why) {
  if (ok) {
    note("check ok: " + what);
    return;
  }
  note("check FAILED: " + what + (why.empty() ? "" : ": " + why));
  std::exit(1);
}

void notify_ready() {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || !*path) {
    return;
  }
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path, sizeof address.sun_path - 1);
  if (address.sun_path[0] == '@') {
    address.sun_path[0] = '\0'; // an abstract socket
  }
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const char ready[] = "READY=1";
  ::sendto(fd, ready, sizeof ready - 1, 0, reinterpret_cast<sockaddr*>(&address),
           static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + std::strlen(path)));
  ::close(fd);
}

void sleep_seconds(double seconds) {
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::nullopt;
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool write_file(const std::string& path, const std::string& data, unsigned mode) {
  auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    std::string parent = path.substr(0, slash);
    for (std::size_t at = 1; at != std::string::npos; at = parent.find('/', at + 1)) {
      ::mkdir(parent.substr(0, at).c_str(), 0755);
    }
    ::mkdir(parent.c_str(), 0755);
  }
  auto temporary = path + ".standin-tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << data;
    if (!out.flush()) {
      return false;
    }
  }
  ::chmod(temporary.c_str(), mode);
  return ::rename(temporary.c_str(), path.c_str()) == 0;
}

std::string base64_encode(const std::string& data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  auto n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                           reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(const std::string& text) {
  if (text.size() % 4 != 0) {
    return std::nullopt;
  }
  std::string out(3 * text.size() / 4 + 1, '\0');
  auto n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                           reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) {
    return std::nullopt;
  }
  auto size = static_cast<std::size_t>(n);
  for (auto it = text.rbegin(); it != text.rend() && *it == '='; ++it) {
    --size; // EVP_DecodeBlock counts the padding as zero bytes
  }
  out.resize(size);
  return out;
}

std::vector<std::string> split(const std::string& list, char separator) {
  std::vector<std::string> parts;
  for (std::size_t at = 0; at < list.size();) {
    auto next = list.find(separator, at);
    parts.push_back(list.substr(at, next - at));
    at = next == std::string::npos ? list.size() : next + 1;
  }
  return parts;
}

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes));
  std::string out;
  for (char c : raw) {
    char two[3];
    std::snprintf(two, sizeof two, "%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
    out += two;
  }
  return out;
}

std::string utc_now() {
  auto now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::optional<std::string> resolve(const std::string& name) {
  in_addr numeric{};
  if (inet_pton(AF_INET, name.c_str(), &numeric) == 1) {
    return name;
  }
  // The node's /etc/hosts, as the installer wrote it: no resolver library in a static program.
  std::ifstream hosts("/etc/hosts");
  std::string line;
  while (std::getline(hosts, line)) {
    line = line.substr(0, line.find('#'));
    std::istringstream words(line);
    std::string address;
    std::string word;
    words >> address;
    while (words >> word) {
      if (word == name) {
        return address;
      }
    }
  }
  return std::nullopt;
}

} // namespace standin
