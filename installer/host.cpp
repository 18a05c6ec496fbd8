#include "installer/host.hpp"

#include "bundle/fs.hpp"
#include "bundle/process.hpp"
#include "bundle/trailer.hpp"

#include <algorithm>
#include <elf.h>
#include <fcntl.h>
#include <fmt/ranges.h>
#include <fnmatch.h>
#include <map>
#include <sys/utsname.h>
#include <unistd.h>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

// `path` inside `root`, with every symlink resolved as the host would (an absolute target
// is relative to the root), without ever leaving the root; nothing for a symlink loop.
std::optional<fs::path> resolve_in_root(const fs::path& root, fs::path path) {
  for (int hops = 0; hops < 40; ++hops) {
    fs::path resolved = "/";
    bool followed = false;
    for (auto it = path.begin(); it != path.end(); ++it) {
      if (*it == "/" || it->empty() || *it == ".") {
        continue;
      }
      if (*it == "..") {
        resolved = resolved.parent_path();
        continue;
      }
      auto next = resolved / *it;
      std::error_code ec;
      auto target = fs::read_symlink(root / next.relative_path(), ec);
      if (ec) {
        resolved = next;
        continue;
      }
      fs::path rest;
      for (auto tail = std::next(it); tail != path.end(); ++tail) {
        rest /= *tail;
      }
      path = (target.is_absolute() ? target : resolved / target) / rest;
      followed = true;
      break;
    }
    if (!followed) {
      return root / resolved.relative_path();
    }
  }
  return std::nullopt;
}

std::string arch_of_machine(std::uint16_t machine) {
  return machine == EM_X86_64 ? "amd64" : machine == EM_AARCH64 ? "arm64" : fmt::format("machine-{}", machine);
}

Result<std::string> root_arch(const fs::path& root) {
  if (fs::equivalent(root, "/")) {
    struct utsname name {};
    ::uname(&name);
    std::string_view machine(name.machine);
    return machine == "x86_64"    ? std::string("amd64")
           : machine == "aarch64" ? std::string("arm64")
                                  : std::string(machine);
  }
  // Another root: the arch its own programs were built for.
  for (const char* program : {"/usr/bin/dpkg", "/usr/bin/rpm", "/bin/sh", "/usr/bin/sh", "/bin/bash"}) {
    auto path = resolve_in_root(root, program);
    UniqueFd fd(path ? ::open(path->c_str(), O_RDONLY | O_CLOEXEC) : -1);
    if (!fd) {
      continue;
    }
    if (auto machine = elf_machine(fd.get())) {
      return arch_of_machine(*machine);
    }
  }
  return fail("{}: no ELF program (/usr/bin/dpkg, /usr/bin/rpm, /bin/sh) to tell its arch by", root.string());
}

std::string describe_targets(const std::vector<PackageTargetRecord>& targets) {
  std::vector<std::string> parts;
  for (const auto& t : targets) {
    parts.push_back(fmt::format("{} ({})", t.profile, fmt::join(t.arches, ", ")));
  }
  return parts.empty() ? "none" : fmt::format("{}", fmt::join(parts, ", "));
}

bool version_matches(const PackageTargetRecord& target, const Host& host) {
  return glob_match(target.version_id, host.os.version_id);
}

// The os-profile name a host of this kind would have: "ubuntu-24.04", "rocky-9".
std::string suggested_profile(const OsRelease& os) {
  auto version = os.version_id;
  if (os.id != "ubuntu" && os.id != "openEuler") {
    version = version.substr(0, version.find('.'));
  }
  std::string id = os.id;
  std::ranges::transform(id, id.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::ranges::transform(version, version.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return fmt::format("{}-{}", id, version);
}

// The names in a Provides: field, without versions.
void add_provides(std::string_view field, std::set<std::string>& provided) {
  while (!field.empty()) {
    auto comma = field.find(',');
    auto item = field.substr(0, comma);
    field = comma == std::string_view::npos ? std::string_view() : field.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') {
      item.remove_prefix(1);
    }
    auto end = item.find_first_of(" (:");
    if (auto name = item.substr(0, end); !name.empty()) {
      provided.emplace(name);
    }
  }
}

// One stanza of dpkg's database, as far as the installer reads it.
struct DpkgStanza {
  std::string name;
  std::string status;
  std::string version;
  std::string arch;
  std::string provides;
};
using DpkgStanzas = std::map<std::pair<std::string, std::string>, DpkgStanza>; // (name, arch)

// The stanzas of `text` into `out`, each replacing what `out` had for its package.
void read_stanzas(std::string_view text, DpkgStanzas& out) {
  DpkgStanza stanza;
  auto flush = [&] {
    if (!stanza.name.empty()) {
      out[{stanza.name, stanza.arch}] = stanza;
    }
    stanza = {};
  };
  while (!text.empty()) {
    auto end = text.find('\n');
    auto line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (line.empty()) {
      flush();
    } else if (line.starts_with("Package: ")) {
      stanza.name = line.substr(9);
    } else if (line.starts_with("Status: ")) {
      stanza.status = line.substr(8);
    } else if (line.starts_with("Version: ")) {
      stanza.version = line.substr(9);
    } else if (line.starts_with("Architecture: ")) {
      stanza.arch = line.substr(14);
    } else if (line.starts_with("Provides: ")) {
      stanza.provides = line.substr(10);
    }
  }
  flush();
}

// dpkg writes each change to a journal file under updates/ before it folds the journal into
// status (a run killed in between leaves it there): what the host has is status with the
// journal applied, in the order of its numbered files.
Status read_dpkg_journal(const Host& host, DpkgStanzas& stanzas) {
  auto dir = host.at("/var/lib/dpkg/updates");
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    auto name = entry.path().filename().string();
    if (!name.empty() && std::ranges::all_of(name, [](char c) { return c >= '0' && c <= '9'; })) {
      files.push_back(entry.path());
    }
  }
  std::ranges::sort(files);
  for (const auto& file : files) {
    auto text = read_text_file(file, 64 << 20);
    if (!text) {
      return add_context(text.error(), "reading dpkg's journal");
    }
    read_stanzas(*text, stanzas);
  }
  return {};
}

Result<PackageDatabase> dpkg_status(const Host& host) {
  auto text = read_text_file(host.at("/var/lib/dpkg/status"), 256 << 20);
  if (!text) {
    return add_context(text.error(), "reading the host's dpkg database");
  }
  DpkgStanzas stanzas;
  read_stanzas(*text, stanzas);
  if (auto status = read_dpkg_journal(host, stanzas); !status) {
    return std::unexpected(status.error());
  }
  PackageDatabase db;
  db.format = "deb";
  for (const auto& [_, stanza] : stanzas) {
    // "Status: want flag state": only the state says what is on disk ("hold ok installed"
    // is installed too); not-installed and config-files leave no package behind.
    const auto& status = stanza.status;
    auto state = status.substr(status.rfind(' ') + 1);
    if (status.empty() || state == "not-installed" || state == "config-files") {
      continue;
    }
    InstalledPackage package;
    package.version = stanza.version;
    package.arch = stanza.arch;
    package.complete = state == "installed";
    package.unpack_again = state == "half-installed" || status.find(" reinstreq ") != std::string::npos;
    if (package.complete) {
      add_provides(stanza.provides, db.provided);
    }
    db.packages.emplace(stanza.name, package);
  }
  return db;
}

Result<PackageDatabase> rpm_database(const Host& host) {
  // One line per package, then one "P <provide>" line per thing it provides.
  std::vector<std::string> args{
      "rpm", "--root", host.root.string(),
      "-qa", "--qf",   "%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH}\\n[P %{PROVIDES}\\n]"};
  auto result = run_process(args, ChildOutput::capture);
  if (!result) {
    return add_context(result.error(), "reading the host's rpm database");
  }
  if (result->exit_code != 0) {
    return fail("reading the host's rpm database: `{}` exited with {}", command_line(args), result->exit_code);
  }
  PackageDatabase db;
  db.format = "rpm";
  std::string_view rest(result->output);
  while (!rest.empty()) {
    auto end = rest.find('\n');
    auto line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (line.starts_with("P ")) {
      db.provided.emplace(line.substr(2));
      continue;
    }
    auto first = line.find(' ');
    auto second = line.rfind(' ');
    if (first == std::string_view::npos || second == first) {
      continue;
    }
    auto evr = line.substr(first + 1, second - first - 1);
    // libsolv and the lock leave out a zero epoch.
    if (evr.starts_with("0:")) {
      evr.remove_prefix(2);
    }
    db.packages.emplace(std::string(line.substr(0, first)),
                        InstalledPackage{std::string(evr), std::string(line.substr(second + 1)), true});
  }
  return db;
}

} // namespace

std::string Host::describe() const {
  return fmt::format("{} (ID={} VERSION_ID={}), {}", os.pretty_name, os.id, os.version_id, arch);
}

fs::path Host::at(const fs::path& path) const {
  return root / path.relative_path();
}

bool glob_match(std::string_view pattern, std::string_view text) {
  return ::fnmatch(std::string(pattern).c_str(), std::string(text).c_str(), 0) == 0;
}

Result<Host> detect_host(const fs::path& root) {
  Host host;
  std::error_code ec;
  host.root = fs::absolute(root, ec).lexically_normal();
  if (!kubexm::is_directory(host.root)) {
    return fail("{}: not a directory", host.root.string());
  }
  std::string text;
  fs::path used;
  for (const char* candidate : {"/etc/os-release", "/usr/lib/os-release"}) {
    used = resolve_in_root(host.root, candidate).value_or(fs::path());
    if (auto read = used.empty() ? Result<std::string>(fail("a symlink loop")) : read_text_file(used, 1 << 20)) {
      text = std::move(*read);
      break;
    }
    used.clear();
  }
  if (used.empty()) {
    return fail("{}: no /etc/os-release or /usr/lib/os-release: cannot tell which OS this is", host.root.string());
  }
  auto os = parse_os_release(text, used.string());
  if (!os) {
    return std::unexpected(os.error());
  }
  host.os = std::move(*os);
  auto arch = root_arch(host.root);
  if (!arch) {
    return std::unexpected(arch.error());
  }
  host.arch = std::move(*arch);
  return host;
}

Result<const PackageTargetRecord*> choose_target(const std::vector<PackageTargetRecord>& targets, const Host& host) {
  for (const auto& target : targets) {
    if (std::ranges::find(target.ids, host.os.id) != target.ids.end() && version_matches(target, host)) {
      return &target;
    }
  }
  for (const auto& like : host.os.id_like) {
    for (const auto& target : targets) {
      if (std::ranges::find(target.like, like) != target.like.end() && version_matches(target, host)) {
        return &target;
      }
    }
  }
  return fail("this host is {}; the bundle carries OS packages for {}: build a bundle whose manifest lists "
              "os_profiles: [{}] (kubexm-builder's os-profiles/ has the supported ones)",
              host.describe(), describe_targets(targets), suggested_profile(host.os));
}

Result<PackageDatabase> installed_packages(const Host& host, std::string_view format) {
  return format == "deb" ? dpkg_status(host) : rpm_database(host);
}

bool PackageDatabase::satisfies(const Host& host, const std::string& requirement) const {
  // "a | b": any alternative will do.
  for (std::size_t begin = 0; begin <= requirement.size();) {
    auto end = std::min(requirement.find(" | ", begin), requirement.size());
    if (satisfies_one(host, requirement.substr(begin, end - begin))) {
      return true;
    }
    begin = end + 3;
  }
  return false;
}

bool PackageDatabase::satisfies_one(const Host& host, const std::string& requirement) const {
  if (requirement.starts_with('/') && format == "rpm") {
    // rpm checks file requirements against its database, not the filesystem.
    auto owner =
        run_process({"rpm", "--root", host.root.string(), "-q", "--whatprovides", requirement}, ChildOutput::capture);
    return owner && owner->exit_code == 0;
  }
  if (requirement.starts_with('/')) {
    auto path = resolve_in_root(host.root, requirement);
    std::error_code ec;
    return path && fs::exists(*path, ec);
  }
  auto found = packages.find(requirement);
  return (found != packages.end() && found->second.complete) || provided.contains(requirement);
}

} // namespace kubexm
