#include "builder/packages/packages.hpp"

#include "builder/packages/repo_metadata.hpp"
#include "builder/packages/solver.hpp"
#include "bundle/fs.hpp"
#include "bundle/sha256.hpp"

#include <algorithm>
#include <fcntl.h>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <spdlog/spdlog.h>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

std::string_view base_name(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// One repository of one target, as its metadata was found.
struct RepoState {
  const RepositorySpec* spec = nullptr;
  std::string base_url;
  std::vector<MetadataRecord> metadata;
  std::string index;              // deb: the Packages files of every component; rpm: primary.xml
  std::string filelists;          // rpm
  std::string comps;              // rpm, when the repository has a group file
  std::vector<DebStanza> stanzas; // deb: the index, taken apart (views into `index`)
};

// One profile and arch being resolved.
struct Target {
  const OsProfile* profile = nullptr;
  std::string arch;
  std::vector<RepoState> repos;
  bool full = false; // closure: full, over an empty system

  std::string label() const { return fmt::format("{} {}", profile->name, arch); }
  std::string distro_arch() const { return profile->arches.at(arch); }
  bool deb() const { return profile->format == PackageFormat::deb; }
};

std::string top_url(const Target& target, const RepoState& repo) {
  if (target.deb()) {
    return fmt::format("{}/dists/{}/InRelease", repo.base_url, repo.spec->suite);
  }
  return repo.base_url + "/repodata/repomd.xml";
}

// Where a deb index lives relative to the repository: dists/<suite>/<path>.
std::string dists_url(const RepoState& repo, std::string_view path) {
  return fmt::format("{}/dists/{}/{}", repo.base_url, repo.spec->suite, path);
}

Result<std::string> cached_text(const Cache& cache, const MetadataRecord& record) {
  auto text = read_maybe_compressed(cache.object(record.sha256), record.url);
  if (!text) {
    return std::unexpected(text.error());
  }
  return text;
}

// An index file to fetch: the candidates are the compressions the top index lists, best
// first; a mirror that lacks one (404) is asked for the next, as apt does.
struct Wanted {
  RepoState* repo;
  std::string kind;
  std::vector<IndexedFile> candidates;
  std::string url_prefix; // URL of the repository's index directory, ending in '/'
};

void want_deb_indices(const Target& target, RepoState& repo, const std::map<std::string, IndexedFile>& release,
                      std::vector<Wanted>& wanted, std::vector<Error>& errors) {
  for (const auto& component : repo.spec->components) {
    Wanted w{&repo, "packages", {}, dists_url(repo, "")};
    for (const char* suffix : {".xz", ".gz", ""}) {
      auto path = fmt::format("{}/binary-{}/Packages{}", component, target.distro_arch(), suffix);
      if (auto found = release.find(path); found != release.end()) {
        w.candidates.push_back(found->second);
      }
    }
    if (w.candidates.empty()) {
      errors.push_back(Error(ErrorKind::failure,
                             fmt::format("{}: {} lists no {}/binary-{}/Packages: the repository does not carry this "
                                         "component or arch",
                                         target.label(), top_url(target, repo), component, target.distro_arch())));
      continue;
    }
    wanted.push_back(std::move(w));
  }
}

void want_rpm_indices(const Target& target, RepoState& repo, const std::vector<RepomdEntry>& entries, bool comps,
                      std::vector<Wanted>& wanted, std::vector<Error>& errors) {
  auto add = [&](const char* kind, std::initializer_list<const char*> types) {
    Wanted w{&repo, kind, {}, repo.base_url + "/"};
    for (const char* type : types) {
      if (auto found = std::ranges::find(entries, type, &RepomdEntry::type); found != entries.end()) {
        w.candidates.push_back(found->file);
      }
    }
    if (w.candidates.empty()) {
      return false;
    }
    wanted.push_back(std::move(w));
    return true;
  };
  if (!add("primary", {"primary"})) {
    errors.push_back(Error(ErrorKind::failure,
                           fmt::format("{}: {} names no primary metadata", target.label(), top_url(target, repo))));
  }
  add("filelists", {"filelists"});
  if (comps) {
    add("group", {"group_xz", "group_gz", "group"});
  }
}

// Fetches the top index of every repository of every target (always anew: it is what says
// what is current), and reads which index files each names.
Status fetch_top_indices(std::vector<Target>& targets, const Cache& cache, const FetchOptions& options,
                         std::vector<Wanted>& wanted) {
  std::vector<Download> downloads;
  std::vector<std::pair<Target*, RepoState*>> owners;
  for (auto& target : targets) {
    for (auto& repo : target.repos) {
      downloads.push_back({top_url(target, repo), fmt::format("{} {}", target.label(), repo.spec->name), std::nullopt,
                           std::nullopt, true});
      owners.emplace_back(&target, &repo);
    }
  }
  auto fetched = fetch_all(downloads, cache, options);
  std::vector<Error> errors;
  for (std::size_t i = 0; i < fetched.size(); ++i) {
    auto [target, repo] = owners[i];
    if (!fetched[i]) {
      errors.push_back(fetched[i].error());
      continue;
    }
    MetadataRecord record{repo->spec->name, target->deb() ? "release" : "repomd", downloads[i].url, fetched[i]->sha256,
                          fetched[i]->size};
    repo->metadata.push_back(record);
    auto text = read_text_file(cache.object(record.sha256), 64 << 20);
    if (!text) {
      errors.push_back(text.error());
      continue;
    }
    if (target->deb()) {
      auto release = parse_release(*text, record.url);
      if (release) {
        want_deb_indices(*target, *repo, *release, wanted, errors);
      } else {
        errors.push_back(release.error());
      }
    } else {
      auto entries = parse_repomd(*text, record.url);
      bool comps = target->profile->base_from == BaseSource::comps_core && !target->full;
      if (entries) {
        want_rpm_indices(*target, *repo, *entries, comps, wanted, errors);
      } else {
        errors.push_back(entries.error());
      }
    }
  }
  return join_errors(errors);
}

// Fetches the index files, each checked against the digest its top index gives; a
// compression the mirror lacks is replaced by the next candidate.
Status fetch_indices(std::vector<Wanted>& wanted, const Cache& cache, const FetchOptions& options) {
  std::vector<Error> errors;
  std::vector<Wanted*> pending;
  for (auto& w : wanted) {
    // A compression already in the cache is taken first: no request for one the mirror
    // lacks, every run.
    auto cached = std::ranges::find_if(w.candidates, [&](const IndexedFile& f) { return cache.has(f.sha256).has_value(); });
    if (cached != w.candidates.end()) {
      std::rotate(w.candidates.begin(), cached, cached + 1);
    }
    pending.push_back(&w);
  }
  auto verified = options;
  verified.verify_hits = true;
  while (!pending.empty()) {
    std::vector<Download> downloads;
    for (auto* w : pending) {
      const auto& file = w->candidates.front();
      downloads.push_back({w->url_prefix + file.path, fmt::format("{} {}", w->repo->spec->name, file.path), file.sha256,
                           // repomd.xml may leave a size out; only the digest is then checked
                           file.size > 0 ? std::optional(file.size) : std::nullopt});
    }
    auto fetched = fetch_all(downloads, cache, verified);
    std::vector<Wanted*> retry;
    for (std::size_t i = 0; i < fetched.size(); ++i) {
      auto* w = pending[i];
      if (!fetched[i] && fetched[i].error().kind() == ErrorKind::not_found && w->candidates.size() > 1) {
        w->candidates.erase(w->candidates.begin());
        retry.push_back(w);
      } else if (!fetched[i]) {
        errors.push_back(fetched[i].error());
      } else {
        w->repo->metadata.push_back(
            {w->repo->spec->name, w->kind, downloads[i].url, fetched[i]->sha256, fetched[i]->size});
      }
    }
    pending = std::move(retry);
  }
  return join_errors(errors);
}

// Reads a target's fetched indices back from the cache, decompressed.
Status read_indices(Target& target, const Cache& cache) {
  for (auto& repo : target.repos) {
    for (const auto& record : repo.metadata) {
      if (record.kind == "release" || record.kind == "repomd") {
        continue;
      }
      auto text = cached_text(cache, record);
      if (!text) {
        return std::unexpected(text.error());
      }
      auto& into = record.kind == "filelists" ? repo.filelists : record.kind == "group" ? repo.comps : repo.index;
      if (!into.empty() && !into.ends_with("\n\n")) {
        into += "\n";
      }
      into += *text;
    }
    if (target.deb()) {
      repo.stanzas = parse_packages_index(repo.index);
    }
  }
  return {};
}

// The base set's package names, from the metadata or the profile.
std::vector<std::string> base_names(const Target& target) {
  const auto& profile = *target.profile;
  std::set<std::string> names;
  if (profile.base_from == BaseSource::priority_required) {
    for (const auto& repo : target.repos) {
      for (const auto& stanza : repo.stanzas) {
        if (stanza.essential || stanza.required) {
          names.emplace(stanza.name);
        }
      }
    }
  } else if (profile.base_from == BaseSource::comps_core) {
    for (const auto& repo : target.repos) {
      for (auto& name : comps_mandatory(repo.comps, "core")) {
        names.insert(std::move(name));
      }
    }
  } else {
    names.insert(profile.base_packages.begin(), profile.base_packages.end());
  }
  names.insert(profile.base_add.begin(), profile.base_add.end());
  for (const auto& name : profile.base_remove) {
    names.erase(name);
  }
  return {names.begin(), names.end()};
}

// The metadata of the given packages, cut out of their repositories' indices: what an
// installed system of exactly those packages would look like to libsolv.
struct Subset {
  std::string index;
  std::string filelists;
};

Subset subset_of(const Target& target, const std::vector<RepoPackage>& packages) {
  std::set<std::pair<std::size_t, std::string>> wanted;
  for (const auto& p : packages) {
    wanted.emplace(p.repository, p.location);
  }
  Subset subset;
  std::set<std::string_view> pkgids;
  std::vector<std::string> elements;
  for (std::size_t r = 0; r < target.repos.size(); ++r) {
    const auto& repo = target.repos[r];
    if (target.deb()) {
      for (const auto& stanza : repo.stanzas) {
        if (wanted.contains({r, std::string(stanza.filename)})) {
          subset.index.append(stanza.text).append("\n\n");
        }
      }
      continue;
    }
    for (const auto& element : parse_primary(repo.index)) {
      if (wanted.contains({r, std::string(element.location)})) {
        elements.emplace_back(element.text);
        pkgids.insert(element.pkgid);
      }
    }
  }
  if (!target.deb()) {
    subset.index = primary_document(elements);
    std::vector<std::string> files;
    for (const auto& repo : target.repos) {
      for (const auto& element : parse_filelists(repo.filelists)) {
        if (pkgids.contains(element.pkgid)) {
          files.emplace_back(element.text);
        }
      }
    }
    subset.filelists = filelists_document(files);
  }
  return subset;
}

PackageSet empty_set(const Target& target, const Plan& plan) {
  const auto& profile = *target.profile;
  PackageSet set;
  set.profile = profile.name;
  set.os = profile.os;
  set.version = profile.version;
  set.arch = target.arch;
  set.distro_arch = target.distro_arch();
  set.format = to_string(profile.format);
  set.installer = profile.installer;
  set.closure = plan.bundle.closure;
  set.ids = profile.match_ids;
  set.like = profile.match_like;
  set.version_id = profile.match_version;
  for (const auto& repo : target.repos) {
    set.metadata.insert(set.metadata.end(), repo.metadata.begin(), repo.metadata.end());
  }
  return set;
}

// Adds a solution's packages to the set (once each) and returns their file names.
Result<std::vector<std::string>> add_packages(const Target& target, const Solution& solution, PackageSet& set) {
  std::vector<std::string> files;
  for (const auto& p : solution.install) {
    std::string file(base_name(p.location));
    const auto& repo = target.repos[p.repository];
    if (const auto* known = set.find_file(file)) {
      if (known->sha256 != p.sha256) {
        return fail("{}: two different packages are both called {} ({} in {}, and {} in {})", target.label(), file,
                    known->sha256, known->repository, p.sha256, repo.spec->name);
      }
    } else {
      set.packages.push_back(
          {p.name, p.evr, p.arch, repo.spec->name, repo.base_url + "/" + p.location, file, p.size, p.sha256, "", ""});
    }
    files.push_back(std::move(file));
  }
  return files;
}

// libsolv's parsed copies of a target's repositories and of its minimal install, kept in
// the cache beside the downloads (DIR/solv/) and named by what they were made from: the
// digests of the indices (and the profile's base settings), libsolv's version, the package
// format and arch. A warm run loads them instead of decompressing and parsing the indices:
// 0.05 s instead of 1.3 s for the full Debian 12 index.
struct SolvFiles {
  std::vector<fs::path> repos;
  fs::path base;      // the installed system of a minimal closure
  fs::path base_json; // its names and packages
};

SolvFiles solv_files(const Target& target, const Cache& cache) {
  const auto& profile = *target.profile;
  auto header = fmt::format("kubexm solv 1\nlibsolv {}\n{} {}\n", libsolv_version(), to_string(profile.format),
                            target.distro_arch());
  SolvFiles files;
  auto base = header;
  for (const auto& repo : target.repos) {
    auto material = header + repo.spec->name + "\n";
    for (const auto& m : repo.metadata) {
      if (m.kind == "packages" || m.kind == "primary" || m.kind == "filelists") {
        material += fmt::format("{} {}\n", m.kind, m.sha256);
      }
      if (m.kind == "group") {
        base += fmt::format("group {}\n", m.sha256); // comps-core reads the core group from it
      }
    }
    auto key = to_hex(sha256_of(material));
    files.repos.push_back(cache.root() / "solv" / (key + ".solv"));
    base += key + "\n";
  }
  base += fmt::format("base {} [{}] [{}] [{}] [{}]\n", static_cast<int>(profile.base_from),
                      fmt::join(profile.base_packages, " "), fmt::join(profile.base_add, " "),
                      fmt::join(profile.base_remove, " "), fmt::join(profile.base_repositories, " "));
  auto key = to_hex(sha256_of(base));
  files.base = cache.root() / "solv" / (key + ".solv");
  files.base_json = cache.root() / "solv" / (key + ".json");
  return files;
}

bool all_exist(const std::vector<fs::path>& paths) {
  std::error_code ec;
  return std::ranges::all_of(paths, [&](const fs::path& path) { return fs::exists(path, ec); });
}

// A .solv copy that could not be written only costs the next run its speed.
void keep_solv(PackagePool& pool, std::optional<std::size_t> repository, const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (auto status = pool.write_solv(repository, path); !status) {
    spdlog::warn("{}", status.error().message());
  }
}

// Loads the target's repositories into `pool`, from their .solv copies when they are all
// there, else from the indices (read from the cache), leaving .solv copies for next time.
// Whether the indices' text was read.
Result<bool> load_repositories(Target& target, PackagePool& pool, const SolvFiles& files, const Cache& cache) {
  if (all_exist(files.repos)) {
    Status loaded;
    for (std::size_t r = 0; r < target.repos.size() && loaded; ++r) {
      loaded = pool.add_repository_solv(target.repos[r].spec->name, files.repos[r]);
    }
    if (loaded) {
      return false;
    }
    spdlog::warn("{}: {}; reading the indices instead", target.label(), loaded.error().message());
    return std::unexpected(Error(ErrorKind::not_found, "reload")); // the caller starts a fresh pool
  }
  if (auto status = read_indices(target, cache); !status) {
    return std::unexpected(status.error());
  }
  for (std::size_t r = 0; r < target.repos.size(); ++r) {
    const auto& repo = target.repos[r];
    if (auto status = pool.add_repository(repo.spec->name, repo.index, repo.filelists); !status) {
      return add_context(status.error(), fmt::format("{}: repository {}", target.label(), repo.spec->name));
    }
    if (target.deb()) {
      std::map<std::string, std::uint64_t, std::less<>> sizes;
      for (const auto& stanza : repo.stanzas) {
        sizes.emplace(stanza.filename, stanza.size);
      }
      pool.set_download_sizes(r, sizes);
    }
    keep_solv(pool, r, files.repos[r]);
  }
  return true;
}

// The minimal install the closures are relative to: the base set's packages by name (never
// by what another package provides), at the versions of the release point's repositories,
// without what the minimal installer excludes; declared installed in `pool`.
Status install_base(Target& target, PackagePool& pool, PackageSet& set) {
  const auto& profile = *target.profile;
  set.base = base_names(target);
  SolveOptions options{Select::names, Best::newest, profile.base_remove, {}, {}};
  for (const auto& name : profile.base_repositories) {
    auto found = std::ranges::find(target.repos, name, [](const RepoState& r) { return r.spec->name; });
    options.repositories.push_back(static_cast<std::size_t>(found - target.repos.begin()));
  }
  auto base = pool.solve(set.base, fmt::format("{}: base set", target.label()), options);
  if (!base) {
    return add_context(base.error(), "the base set cannot be installed from the profile's repositories (check "
                                     "its base: settings)");
  }
  for (const auto& p : base->install) {
    set.base_system.push_back({p.name, p.evr, p.arch});
  }
  auto installed = subset_of(target, base->install);
  if (auto status = pool.set_installed(installed.index, installed.filelists); !status) {
    return add_context(status.error(), fmt::format("{}: base set", target.label()));
  }
  return {};
}

nlohmann::json base_json(const PackageSet& set) {
  nlohmann::json packages = nlohmann::json::array();
  for (const auto& p : set.base_system) {
    packages.push_back({p.name, p.evr, p.arch});
  }
  return {{"names", set.base}, {"packages", packages}};
}

// The minimal install from its .solv copy and its names, as an earlier run recorded them.
Status load_base(PackagePool& pool, PackageSet& set, const SolvFiles& files) {
  auto text = read_text_file(files.base_json, 16 << 20);
  if (!text) {
    return std::unexpected(text.error());
  }
  auto json = nlohmann::json::parse(*text, nullptr, false);
  if (!json.is_object() || !json["names"].is_array() || !json["packages"].is_array()) {
    return fail("{}: not a base set record", files.base_json.string());
  }
  set.base = json["names"].get<std::vector<std::string>>();
  for (const auto& p : json["packages"]) {
    set.base_system.push_back({p.at(0).get<std::string>(), p.at(1).get<std::string>(), p.at(2).get<std::string>()});
  }
  return pool.set_installed_solv(files.base);
}

// The minimal install: from the cache when an earlier run of the same indices and settings
// left it, else solved (reading the indices if that was not done yet) and kept.
Status minimal_install(Target& target, PackagePool& pool, PackageSet& set, const SolvFiles& files,
                       const Cache& cache, bool texts_read) {
  if (all_exist({files.base, files.base_json})) {
    if (auto status = load_base(pool, set, files); status) {
      return status;
    } else {
      spdlog::warn("{}: {}; solving the base set again", target.label(), status.error().message());
      set.base.clear();
      set.base_system.clear();
    }
  }
  if (!texts_read) {
    if (auto status = read_indices(target, cache); !status) {
      return status;
    }
  }
  if (auto status = install_base(target, pool, set); !status) {
    return status;
  }
  keep_solv(pool, std::nullopt, files.base);
  if (auto status = write_file_atomic(files.base_json, base_json(set).dump() + "\n"); !status) {
    spdlog::warn("{}", status.error().message());
  }
  return {};
}

// Notes on the set's packages the older candidates a role's solve took, and why; a warning
// when the profile allowed them (best: false), information otherwise (a dependency).
void record_older(const Solution& solution, PackageSet& set) {
  for (const auto& older : solution.older) {
    for (auto& p : set.packages) {
      if (p.name == older.name && p.evr == older.evr && p.newest.empty()) {
        p.newest = older.newest;
        p.why_older = older.why;
        spdlog::log(set.best ? spdlog::level::info : spdlog::level::warn, "{}: {} {} taken, not the newest {}: {}",
                    set.label(), p.name, p.evr, older.newest, older.why);
      }
    }
  }
}

// Solves the base set and every role of one target.
Result<PackageSet> solve_target(Target& target, const Plan& plan, const Cache& cache) {
  const auto& profile = *target.profile;
  auto files = solv_files(target, cache);
  auto pool = std::make_unique<PackagePool>(profile.format, target.distro_arch());
  auto texts_read = load_repositories(target, *pool, files, cache);
  if (!texts_read && texts_read.error().kind() == ErrorKind::not_found) {
    // A damaged .solv copy: it is made again from the indices.
    std::error_code ec;
    for (const auto& path : files.repos) {
      fs::remove(path, ec);
    }
    pool = std::make_unique<PackagePool>(profile.format, target.distro_arch());
    texts_read = load_repositories(target, *pool, files, cache);
  }
  if (!texts_read) {
    return std::unexpected(texts_read.error());
  }
  spdlog::debug("{}: {} packages loaded{}", target.label(), pool->size(), *texts_read ? "" : " from .solv copies");
  auto set = empty_set(target, plan);
  if (plan.bundle.closure == "minimal") {
    if (auto status = minimal_install(target, *pool, set, files, cache, *texts_read); !status) {
      return std::unexpected(status.error());
    }
    spdlog::debug("{}: base set of {} installed", target.label(), set.base_system.size());
  }
  SolveOptions options{Select::provides, profile.best ? Best::newest : Best::allow_older, {}, {}, profile.pins};
  set.best = profile.best; // before record_older, which reads it
  for (const auto& [name, pin] : profile.pins) {
    set.pins[name] = pin.text;
  }
  std::vector<std::string> problems;
  for (const auto& role : plan.bundle.roles) {
    RolePackages packages;
    packages.requested = role_packages(plan.package_sets, profile, role, plan.bundle.extra_packages);
    auto solution = pool->solve(packages.requested, fmt::format("{} role {}", target.label(), role), options);
    if (!solution) {
      problems.push_back(solution.error().message());
      continue;
    }
    auto added = add_packages(target, *solution, set);
    if (!added) {
      return std::unexpected(added.error());
    }
    record_older(*solution, set);
    packages.install = std::move(*added);
    packages.relies_on = std::move(solution->relies_on);
    set.roles[role] = std::move(packages);
  }
  if (!problems.empty()) {
    if (std::ranges::any_of(problems, [](const auto& p) { return p.find("best candidate") != std::string::npos; })) {
      problems.push_back(fmt::format("{}: the newest candidate is required (best: true); 'best: false' in the "
                                     "profile or the manifest's packages: takes an older one where the newest "
                                     "cannot be installed, and 'pins:' holds a package to a version range",
                                     target.label()));
    }
    return fail("{}", fmt::join(problems, "\n"));
  }
  std::ranges::sort(set.packages, {}, [](const PackageRecord& p) { return std::tie(p.name, p.arch, p.evr); });
  spdlog::info("{}: {} packages in {} repositories; {} to carry{}", target.label(), pool->size(), target.repos.size(),
               set.packages.size(),
               set.closure == "minimal" ? fmt::format(" over a minimal install of {}", set.base_system.size()) : "");
  return set;
}

std::vector<Target> make_targets(const Plan& plan) {
  std::vector<Target> targets;
  for (const auto& profile : plan.profiles) {
    for (const auto& arch : plan.bundle.arches) {
      Target target{&profile, arch, {}, plan.bundle.closure == "full"};
      for (const auto& spec : profile.repositories) {
        target.repos.push_back({&spec, profile.repository_url(spec, arch), {}, {}, {}, {}, {}});
      }
      targets.push_back(std::move(target));
    }
  }
  return targets;
}

std::vector<Download> package_downloads(const std::vector<PackageSet>& sets) {
  std::vector<Download> downloads;
  std::set<std::string> seen;
  for (const auto& set : sets) {
    for (const auto& p : set.packages) {
      if (seen.insert(p.sha256).second) {
        downloads.push_back({p.url, fmt::format("{} {} {}", set.profile, p.name, p.evr), p.sha256, p.size});
      }
    }
  }
  return downloads;
}

// Copies a cached file into the tree, checking its digest on the way.
Status copy_verified(const fs::path& from, const fs::path& to, const PackageRecord& package) {
  auto in = open_read(from);
  if (!in) {
    return std::unexpected(in.error());
  }
  auto out = AtomicFile::create(to, 0644);
  if (!out) {
    return std::unexpected(out.error());
  }
  Sha256 hash;
  Status written;
  auto read = read_chunks(in->get(), [&](std::span<const std::byte> bytes) {
    hash.update(bytes);
    if (written) {
      written = out->write(bytes);
    }
  });
  if (!read || !written) {
    return std::unexpected(read ? written.error() : read.error());
  }
  if (auto digest = to_hex(hash.finish()); digest != package.sha256) {
    return fail_verification("{}: the cached file has SHA-256 {}, the lock says {}", package.url, digest,
                             package.sha256);
  }
  return out->commit();
}

// Packages and Release of a flat deb repository: the locked stanzas, pointing at the files
// beside them.
Status write_deb_index(const PackageSet& set, const Cache& cache, const fs::path& dir) {
  std::vector<std::string> texts;
  std::map<std::pair<std::string, std::string>, DebStanza> stanzas;
  for (const auto& record : set.metadata) {
    if (record.kind != "packages") {
      continue;
    }
    auto text = cached_text(cache, record);
    if (!text) {
      return std::unexpected(text.error());
    }
    texts.push_back(std::move(*text));
  }
  std::size_t i = 0;
  for (const auto& record : set.metadata) {
    if (record.kind == "packages") {
      for (const auto& stanza : parse_packages_index(texts[i])) {
        stanzas.try_emplace({record.repository, std::string(base_name(stanza.filename))}, stanza);
      }
      ++i;
    }
  }
  std::string packages;
  for (const auto& p : set.packages) {
    auto found = stanzas.find({p.repository, p.file});
    if (found == stanzas.end()) {
      return fail("{}: {} is not in the locked Packages index of {}", set.label(), p.file, p.repository);
    }
    packages += rewrite_stanza(found->second, p.file) + "\n";
  }
  if (auto status = write_file_atomic(dir / "Packages", packages); !status) {
    return status;
  }
  return write_file_atomic(dir / "Release", flat_release_document(packages, "kubexm " + set.profile));
}

// repodata/ of an rpm repository: the locked primary and filelists entries.
Status write_rpm_index(const PackageSet& set, const Cache& cache, const fs::path& dir) {
  std::map<std::pair<std::string, std::string>, std::string> primary;
  std::map<std::string, std::string> files;
  for (const auto& record : set.metadata) {
    if (record.kind != "primary" && record.kind != "filelists") {
      continue;
    }
    auto text = cached_text(cache, record);
    if (!text) {
      return std::unexpected(text.error());
    }
    if (record.kind == "primary") {
      for (const auto& element : parse_primary(*text)) {
        primary.try_emplace({record.repository, std::string(base_name(element.location))},
                            rewrite_location(element, base_name(element.location)));
      }
    } else {
      for (const auto& element : parse_filelists(*text)) {
        files.try_emplace(std::string(element.pkgid), element.text);
      }
    }
  }
  std::vector<std::string> primary_elements;
  std::vector<std::string> filelists_elements;
  for (const auto& p : set.packages) {
    auto found = primary.find({p.repository, p.file});
    if (found == primary.end()) {
      return fail("{}: {} is not in the locked primary.xml of {}", set.label(), p.file, p.repository);
    }
    primary_elements.push_back(found->second);
    if (auto list = files.find(p.sha256); list != files.end()) {
      filelists_elements.push_back(list->second);
    }
  }
  auto primary_xml = primary_document(primary_elements);
  auto filelists_xml = filelists_document(filelists_elements);
  std::error_code ec;
  fs::create_directories(dir / "repodata", ec);
  if (ec) {
    return fail("cannot create {}: {}", (dir / "repodata").string(), ec.message());
  }
  for (auto [name, text] : {std::pair{"primary.xml", std::string_view(primary_xml)},
                            std::pair{"filelists.xml", std::string_view(filelists_xml)}}) {
    if (auto status = write_file_atomic(dir / "repodata" / name, text); !status) {
      return status;
    }
  }
  return write_file_atomic(dir / "repodata" / "repomd.xml", repomd_document(primary_xml, filelists_xml, 0));
}

} // namespace

Result<std::vector<PackageSet>> resolve_packages(const Plan& plan, const Cache& cache, const FetchOptions& options,
                                                 PackageFiles files) {
  auto targets = make_targets(plan);
  if (targets.empty()) {
    return std::vector<PackageSet>{};
  }
  std::vector<Wanted> wanted;
  if (auto status = fetch_top_indices(targets, cache, options, wanted); !status) {
    return std::unexpected(status.error());
  }
  spdlog::debug("top indices fetched");
  if (auto status = fetch_indices(wanted, cache, options); !status) {
    return std::unexpected(status.error());
  }
  spdlog::debug("indices fetched");
  std::vector<PackageSet> sets;
  std::vector<Error> errors;
  for (auto& target : targets) {
    auto set = solve_target(target, plan, cache);
    target.repos.clear(); // the indices of a big distribution take hundreds of MiB
    if (!set) {
      errors.push_back(set.error());
      continue;
    }
    sets.push_back(std::move(*set));
  }
  if (auto status = join_errors(errors); !status) {
    return std::unexpected(status.error());
  }
  if (files == PackageFiles::fetch) {
    auto verified = options;
    verified.verify_hits = true;
    if (auto status = fetch_packages(sets, cache, verified); !status) {
      return std::unexpected(status.error());
    }
  }
  return sets;
}

Status fetch_packages(const std::vector<PackageSet>& sets, const Cache& cache, const FetchOptions& options) {
  auto downloads = package_downloads(sets);
  auto fetched = fetch_all(downloads, cache, options);
  std::vector<Error> errors;
  for (auto& result : fetched) {
    if (!result) {
      errors.push_back(result.error());
    }
  }
  return join_errors(errors);
}

Status assemble_packages(const std::vector<PackageSet>& sets, const Cache& cache, const fs::path& tree) {
  std::vector<Error> errors;
  for (const auto& set : sets) {
    auto dir = tree / set.dir();
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      return fail("cannot create {}: {}", dir.string(), ec.message());
    }
    for (const auto& p : set.packages) {
      if (auto status = copy_verified(cache.object(p.sha256), dir / p.file, p); !status) {
        errors.push_back(status.error());
      }
    }
    auto index = set.format == "deb" ? write_deb_index(set, cache, dir) : write_rpm_index(set, cache, dir);
    if (!index) {
      errors.push_back(index.error());
    }
    if (auto status = write_file_atomic(dir / k_package_set_file, package_set_json(set).dump(2) + "\n"); !status) {
      errors.push_back(status.error());
    }
  }
  return join_errors(errors);
}

std::vector<PackageTargetRecord> package_targets(const std::vector<PackageSet>& sets) {
  std::vector<PackageTargetRecord> records;
  for (const auto& set : sets) {
    auto found = std::ranges::find(records, set.profile, &PackageTargetRecord::profile);
    if (found == records.end()) {
      records.push_back({set.profile,
                         fmt::format("packages/{}/{}", set.os, set.version),
                         set.format,
                         {},
                         set.ids,
                         set.like,
                         set.version_id});
      found = records.end() - 1;
    }
    found->arches.push_back(set.arch);
  }
  return records;
}

} // namespace kubexm
