#include "builder/packages/solver.hpp"

#include "bundle/fs.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <set>

// libsolv's extension headers (repo_deb.h, repo_rpmmd.h) declare C functions without
// extern "C"; its Solvable has a member named `requires`, a keyword since C++20.
#define requires requires_
extern "C" {
#include <solv/evr.h>
#include <solv/knownid.h>
#include <solv/pool.h>
#include <solv/poolarch.h>
#include <solv/repo.h>
#include <solv/repo_deb.h>
#include <solv/repo_rpmmd.h>
#include <solv/repo_solv.h>
#include <solv/repo_write.h>
#include <solv/solver.h>
#include <solv/solvversion.h>
#include <solv/transaction.h>
}
#undef requires

namespace kubexm {

namespace {

// A read-only FILE* over text in memory, closed on destruction.
struct MemoryFile {
  explicit MemoryFile(std::string_view text)
      : file(text.empty() ? nullptr : ::fmemopen(const_cast<char*>(text.data()), text.size(), "r")) {}
  ~MemoryFile() {
    if (file != nullptr) {
      std::fclose(file);
    }
  }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;
  FILE* file;
};

// An initialised libsolv queue, freed on destruction.
struct SolvQueue {
  SolvQueue() { queue_init(&q); }
  ~SolvQueue() { queue_free(&q); }
  SolvQueue(const SolvQueue&) = delete;
  SolvQueue& operator=(const SolvQueue&) = delete;
  Queue q;
};

// Sets pool->considered for one solve and takes it back afterwards.
struct Considered {
  explicit Considered(Pool* owner) : pool(owner) {}
  ~Considered() {
    if (active) {
      pool->considered = nullptr;
      map_free(&map);
    }
  }
  Considered(const Considered&) = delete;
  Considered& operator=(const Considered&) = delete;
  Pool* pool;
  Map map{};
  bool active = false;
};

// MAPSET, MAPCLR and MAPTST without their sign conversions.
void map_set(Map& map, Id p) {
  auto at = static_cast<unsigned>(p);
  map.map[at >> 3] = static_cast<unsigned char>(map.map[at >> 3] | (1u << (at & 7)));
}

void map_clear(Map& map, Id p) {
  auto at = static_cast<unsigned>(p);
  map.map[at >> 3] = static_cast<unsigned char>(map.map[at >> 3] & ~(1u << (at & 7)));
}

bool map_test(const Map& map, Id p) {
  auto at = static_cast<unsigned>(p);
  return (map.map[at >> 3] & (1u << (at & 7))) != 0;
}

bool is_reldep(Id id) {
  return (static_cast<unsigned>(id) & 0x80000000u) != 0;
}

// GETRELDEP without its sign conversions.
Reldep* reldep(Pool* pool, Id id) {
  return pool->rels + (static_cast<unsigned>(id) ^ 0x80000000u);
}

} // namespace

struct PackagePool::Impl {
  Pool* pool = pool_create();
  PackageFormat format;
  std::vector<Repo*> repos;
  std::vector<Id> favoured;
  bool stale = true;

  ~Impl() { pool_free(pool); }

  Status load(Repo* repo, std::string_view index, std::string_view filelists) {
    MemoryFile primary(index);
    if (primary.file == nullptr) {
      return index.empty() ? Status{} : fail("cannot read the index from memory");
    }
    int rc = format == PackageFormat::deb ? repo_add_debpackages(repo, primary.file, 0)
                                          : repo_add_rpmmd(repo, primary.file, nullptr, 0);
    if (rc != 0) {
      return fail("libsolv cannot read the index: {}", pool_errstr(pool));
    }
    if (format == PackageFormat::rpm && !filelists.empty()) {
      MemoryFile files(filelists);
      if (repo_add_rpmmd(repo, files.file, nullptr, REPO_EXTEND_SOLVABLES) != 0) {
        return fail("libsolv cannot read filelists.xml: {}", pool_errstr(pool));
      }
    }
    repo_internalize(repo);
    stale = true;
    return {};
  }

  void prepare() {
    if (!stale) {
      return;
    }
    pool_addfileprovides(pool);
    pool_createwhatprovides(pool);
    if (format == PackageFormat::deb) {
      favour_first_alternatives();
    }
    stale = false;
  }

  // The name a dependency is about, without version, arch annotation or later alternatives.
  Id first_name(Id dep) {
    while (is_reldep(dep) && (reldep(pool, dep)->flags == REL_OR || reldep(pool, dep)->flags < 8 ||
                              reldep(pool, dep)->flags == REL_MULTIARCH)) {
      dep = reldep(pool, dep)->name;
    }
    return dep;
  }

  // apt's choices, which libsolv does not make by itself: of "a | b" the first alternative
  // that can be installed, and for a name that is both a real package and a virtual one
  // (libsystemd0, which libelogind0 also provides) the real package. The newest package of
  // each such name is favoured; favouring every version would let an older one win.
  void favour_first_alternatives() {
    std::set<Id> names;
    SolvQueue deps;
    for (Id p = 2; p < pool->nsolvables; ++p) {
      Solvable* s = pool->solvables + p;
      if (s->repo == nullptr || s->repo == pool->installed) {
        continue;
      }
      queue_empty(&deps.q);
      solvable_lookup_deparray(s, SOLVABLE_REQUIRES, &deps.q, 0);
      for (int i = 0; i < deps.q.count; ++i) {
        names.insert(first_name(deps.q.elements[i]));
      }
    }
    std::set<Id> newest;
    for (Id name : names) {
      std::map<Id, Id> best; // package name -> its newest solvable
      Id provider = 0;
      Id pp = 0;
      FOR_PROVIDES(provider, pp, name) {
        Solvable* candidate = pool->solvables + provider;
        auto [it, inserted] = best.try_emplace(candidate->name, provider);
        if (!inserted && pool_evrcmp(pool, candidate->evr, pool->solvables[it->second].evr, EVRCMP_COMPARE) > 0) {
          it->second = provider;
        }
      }
      // A real package of that name is what apt takes; otherwise any provider may do.
      if (auto real = best.find(name); real != best.end()) {
        newest.insert(real->second);
      } else if (best.size() == 1) {
        newest.insert(best.begin()->second);
      }
    }
    favoured.assign(newest.begin(), newest.end());
  }

  using SolverPtr = std::unique_ptr<Solver, decltype(&solver_free)>;

  // A solver with the flags every solve uses, run on `job`.
  SolverPtr run(Queue& job) {
    SolverPtr solver(solver_create(pool), solver_free);
    solver_set_flag(solver.get(), SOLVER_FLAG_IGNORE_RECOMMENDED, 1);
    if (format == PackageFormat::rpm) {
      // As dnf sets them: the best package within the arch and vendor policy, and
      // obsoletes read as yum does.
      solver_set_flag(solver.get(), SOLVER_FLAG_BEST_OBEY_POLICY, 1);
      solver_set_flag(solver.get(), SOLVER_FLAG_YUM_OBSOLETES, 1);
      solver_set_flag(solver.get(), SOLVER_FLAG_ALLOW_VENDORCHANGE, 1);
    }
    SolvQueue full;
    queue_insertn(&full.q, 0, job.count, job.elements);
    for (Id p : favoured) {
      queue_push2(&full.q, SOLVER_FAVOR | SOLVER_SOLVABLE, p);
    }
    solver_solve(solver.get(), &full.q);
    return solver;
  }

  // Every rule that led to a problem, once each, in libsolv's words (which are dnf's).
  std::vector<std::string> problem_rules(Solver* solver, Id problem) {
    SolvQueue rules;
    solver_findallproblemrules(solver, problem, &rules.q);
    std::vector<std::string> lines;
    for (int i = 0; i < rules.q.count; ++i) {
      Id source = 0;
      Id target = 0;
      Id dep = 0;
      auto type = solver_ruleinfo(solver, rules.q.elements[i], &source, &target, &dep);
      std::string line = solver_problemruleinfo2str(solver, type, source, target, dep);
      if (std::ranges::find(lines, line) == lines.end()) {
        lines.push_back(std::move(line));
      }
    }
    if (lines.empty()) {
      lines.emplace_back(solver_problem2str(solver, problem));
    }
    return lines;
  }

  // One problem as dnf prints it: the first rule, then "  - " and each further one.
  std::string describe_problem(Solver* solver, Id problem, Id count, std::string_view context) {
    auto lines = problem_rules(solver, problem);
    // dnf heads a requested package's unmet need with "conflicting requests", which says
    // nothing the next line does not.
    if (lines.size() > 1 && lines.front() == "conflicting requests") {
      lines.erase(lines.begin());
    }
    auto head = count > 1 ? fmt::format("{}: problem {}: {}", context, problem, lines.front())
                          : fmt::format("{}: {}", context, lines.front());
    for (std::size_t i = 1; i < lines.size(); ++i) {
      head += fmt::format("\n  - {}", lines[i]);
    }
    return head;
  }

  // Whether `evr` is within every bound of `pin`. A bound without a release matches every
  // release of its version ("< 1.4.7" leaves out 1.4.7-4.el9).
  bool within(Id evr, const VersionPin& pin) {
    for (const auto& bound : pin.bounds) {
      int c = pool_evrcmp_str(pool, pool_id2str(pool, evr), bound.evr.c_str(), EVRCMP_MATCH_RELEASE);
      bool ok = bound.op == "<" ? c < 0 : bound.op == "<=" ? c <= 0 : bound.op == "=" ? c == 0 : bound.op == ">=" ? c >= 0 : c > 0;
      if (!ok) {
        return false;
      }
    }
    return true;
  }

  // The solvables (not installed) that are called `name`.
  std::vector<Id> named(Id name) {
    std::vector<Id> found;
    Id p = 0;
    Id pp = 0;
    FOR_PROVIDES(p, pp, name) {
      if (pool->solvables[p].name == name && pool->solvables[p].repo != pool->installed) {
        found.push_back(p);
      }
    }
    return found;
  }

  // What a solve may take: the given repositories' packages and the installed ones, less
  // excluded names and versions outside a pin; nothing is restricted when nothing is asked.
  void restrict(const SolveOptions& options, Considered& considered, std::vector<std::string>& problems,
                std::string_view context) {
    if (options.repositories.empty() && options.exclude.empty() && options.pins.empty()) {
      return;
    }
    map_init(&considered.map, pool->nsolvables);
    considered.active = true;
    for (std::size_t r = 0; r < repos.size(); ++r) {
      if (options.repositories.empty() || std::ranges::find(options.repositories, r) != options.repositories.end()) {
        mark(repos[r], considered.map);
      }
    }
    if (pool->installed != nullptr) {
      mark(pool->installed, considered.map);
    }
    for (const auto& name : options.exclude) {
      for (Id p : named(pool_str2id(pool, name.c_str(), 0))) {
        map_clear(considered.map, p);
      }
    }
    for (const auto& [name, pin] : options.pins) {
      auto all = named(pool_str2id(pool, name.c_str(), 0));
      std::vector<std::string> versions;
      for (Id p : all) {
        versions.emplace_back(pool_id2str(pool, pool->solvables[p].evr));
        if (!within(pool->solvables[p].evr, pin)) {
          map_clear(considered.map, p);
        }
      }
      if (std::ranges::none_of(all, [&](Id p) { return map_test(considered.map, p); })) {
        std::ranges::sort(versions);
        problems.push_back(all.empty() ? fmt::format("{}: pins: no package is called '{}'", context, name)
                                       : fmt::format("{}: pins: {} '{}' leaves none of its versions (the "
                                                     "repositories have {})",
                                                     context, name, pin.text, fmt::join(versions, ", ")));
      }
    }
    pool->considered = &considered.map;
  }

  static void mark(Repo* repo, Map& map) {
    Id p = 0;
    Solvable* s = nullptr;
    FOR_REPO_SOLVABLES(repo, p, s) {
      map_set(map, p);
    }
  }

  bool has_package(Id name) {
    return name != 0 && std::ranges::any_of(named(name), [&](Id p) { return pool_installable(pool, pool->solvables + p); });
  }

  // The newest package of the same name and arch that the solve could have taken.
  Id newest_like(Id p) {
    const Solvable* s = pool->solvables + p;
    Id best = p;
    for (Id q : named(s->name)) {
      Solvable* other = pool->solvables + q;
      if (other->arch == s->arch && pool_installable(pool, other) &&
          pool_evrcmp(pool, other->evr, pool->solvables[best].evr, EVRCMP_COMPARE) > 0) {
        best = q;
      }
    }
    return best;
  }

  // The packages a solve took older than their newest, each with what kept the newest out:
  // the rules of the problem that asking for it as well would have.
  std::vector<OlderChoice> older_choices(const std::vector<Id>& added, const Queue& job) {
    std::vector<OlderChoice> out;
    for (Id p : added) {
      Id newest = newest_like(p);
      if (newest == p) {
        continue;
      }
      SolvQueue forced;
      queue_insertn(&forced.q, 0, job.count, job.elements);
      queue_push2(&forced.q, SOLVER_INSTALL | SOLVER_SOLVABLE | SOLVER_FORCEBEST, newest);
      auto solver = run(forced.q);
      std::vector<std::string> why;
      auto count = static_cast<Id>(solver_problem_count(solver.get()));
      for (Id problem = 1; problem <= count; ++problem) {
        for (auto& line : problem_rules(solver.get(), problem)) {
          // The request for both versions is the question asked, not the answer.
          if (line != "conflicting requests" && std::ranges::find(why, line) == why.end()) {
            why.push_back(std::move(line));
          }
        }
      }
      const Solvable* s = pool->solvables + p;
      out.push_back({pool_id2str(pool, s->name), pool_id2str(pool, s->evr), pool_id2str(pool, pool->solvables[newest].evr),
                     fmt::format("{}", fmt::join(why, "; "))});
    }
    std::ranges::sort(out, {}, &OlderChoice::name);
    return out;
  }

  bool has_provider(Id id) {
    if (id == 0) {
      return false;
    }
    Id provider = 0;
    Id pp = 0;
    FOR_PROVIDES(provider, pp, id) {
      if (pool_installable(pool, pool->solvables + provider) || pool->solvables[provider].repo == pool->installed) {
        return true;
      }
    }
    return false;
  }

  Result<RepoPackage> describe(Id p) {
    Solvable* s = pool->solvables + p;
    RepoPackage package;
    package.name = pool_id2str(pool, s->name);
    package.evr = pool_id2str(pool, s->evr);
    package.arch = pool_id2str(pool, s->arch);
    auto found = std::ranges::find(repos, s->repo);
    package.repository = static_cast<std::size_t>(found - repos.begin());
    unsigned medianr = 0;
    const char* location = solvable_get_location(s, &medianr);
    package.location = location != nullptr ? location : "";
    Id type = 0;
    const char* checksum = solvable_lookup_checksum(s, SOLVABLE_CHECKSUM, &type);
    package.size = solvable_lookup_num(s, SOLVABLE_DOWNLOADSIZE, 0);
    if (checksum == nullptr || type != REPOKEY_TYPE_SHA256) {
      return fail("{}: the repository metadata gives no SHA-256 for it", package.key());
    }
    package.sha256 = checksum;
    return package;
  }

  // What a host must have for `dep`: its name (a package, a provide or an rpm file),
  // without the version, or its alternatives' names joined by " | ". A rich dependency
  // (and, or, if) has no such form: nothing, and the base package that met it stands in.
  std::optional<std::string> requirement_of(Id dep) {
    if (!is_reldep(dep)) {
      return pool_id2str(pool, dep);
    }
    auto flags = reldep(pool, dep)->flags;
    if (flags < 8 || flags == REL_MULTIARCH || flags == REL_ARCH) {
      return requirement_of(reldep(pool, dep)->name);
    }
    if (flags == REL_OR) {
      auto left = requirement_of(reldep(pool, dep)->name);
      auto right = requirement_of(reldep(pool, dep)->evr);
      if (left && right) {
        return fmt::format("{} | {}", *left, *right);
      }
    }
    return std::nullopt;
  }

  // The installed packages that requirements of the new ones count on, one entry per
  // distinct requirement (a base package may meet several).
  std::vector<BaseReliance> reliances(const std::vector<Id>& added) {
    std::map<std::string, BaseReliance> found;
    if (pool->installed == nullptr) {
      return {};
    }
    std::set<Id> added_set(added.begin(), added.end());
    SolvQueue deps;
    for (Id p : added) {
      Solvable* s = pool->solvables + p;
      queue_empty(&deps.q);
      solvable_lookup_deparray(s, SOLVABLE_REQUIRES, &deps.q, 0);
      for (int i = 0; i < deps.q.count; ++i) {
        Id dep = deps.q.elements[i];
        Id provider = 0;
        Id pp = 0;
        Id base = 0;
        bool met_by_new = false;
        FOR_PROVIDES(provider, pp, dep) {
          met_by_new = met_by_new || added_set.contains(provider);
          if (base == 0 && pool->solvables[provider].repo == pool->installed) {
            base = provider;
          }
        }
        if (met_by_new || base == 0) {
          continue;
        }
        Solvable* b = pool->solvables + base;
        std::string name = pool_id2str(pool, b->name);
        auto requirement = requirement_of(dep).value_or(name);
        found.try_emplace(requirement, BaseReliance{name, pool_id2str(pool, b->evr),
                                                    fmt::format("{} requires {}", pool_id2str(pool, s->name),
                                                                pool_dep2str(pool, dep)),
                                                    requirement});
      }
    }
    std::vector<BaseReliance> out;
    for (auto& [_, reliance] : found) {
      out.push_back(std::move(reliance));
    }
    return out;
  }
};

PackagePool::PackagePool(PackageFormat format, const std::string& arch) : m_impl(std::make_unique<Impl>()) {
  m_impl->format = format;
  // The dist type decides how versions compare and dependencies read: it must be set
  // before the arch and before any repository is loaded.
  pool_setdisttype(m_impl->pool, format == PackageFormat::deb ? DISTTYPE_DEB : DISTTYPE_RPM);
  pool_setarch(m_impl->pool, arch.c_str());
}

PackagePool::~PackagePool() = default;

Status PackagePool::add_repository(std::string_view name, std::string_view index, std::string_view filelists) {
  Repo* repo = repo_create(m_impl->pool, std::string(name).c_str());
  m_impl->repos.push_back(repo);
  return m_impl->load(repo, index, filelists);
}

Status PackagePool::set_installed(std::string_view index, std::string_view filelists) {
  Repo* repo = repo_create(m_impl->pool, "@System");
  pool_set_installed(m_impl->pool, repo);
  return m_impl->load(repo, index, filelists);
}

namespace {

// A FILE* closed on destruction.
using FilePtr = std::unique_ptr<FILE, decltype(&std::fclose)>;

Status load_solv(Pool* pool, Repo* repo, const std::filesystem::path& path) {
  FilePtr file(std::fopen(path.c_str(), "re"), std::fclose);
  if (!file) {
    return fail("cannot read {}: {}", path.string(), errno_text(errno));
  }
  if (repo_add_solv(repo, file.get(), 0) != 0) {
    return fail("libsolv cannot read {}: {}", path.string(), pool_errstr(pool));
  }
  return {};
}

} // namespace

Status PackagePool::add_repository_solv(std::string_view name, const std::filesystem::path& path) {
  Repo* repo = repo_create(m_impl->pool, std::string(name).c_str());
  m_impl->repos.push_back(repo);
  m_impl->stale = true;
  return load_solv(m_impl->pool, repo, path);
}

Status PackagePool::set_installed_solv(const std::filesystem::path& path) {
  Repo* repo = repo_create(m_impl->pool, "@System");
  pool_set_installed(m_impl->pool, repo);
  m_impl->stale = true;
  return load_solv(m_impl->pool, repo, path);
}

Status PackagePool::write_solv(std::optional<std::size_t> repository, const std::filesystem::path& path) {
  Repo* repo = repository ? m_impl->repos.at(*repository) : m_impl->pool->installed;
  if (repo == nullptr) {
    return fail("no installed system to write to {}", path.string());
  }
  char* buffer = nullptr;
  std::size_t size = 0;
  FILE* memory = ::open_memstream(&buffer, &size);
  if (memory == nullptr) {
    return fail("cannot write {}: {}", path.string(), errno_text(errno));
  }
  int rc = repo_write(repo, memory);
  std::fclose(memory);
  std::unique_ptr<char, decltype(&std::free)> owned(buffer, std::free);
  if (rc != 0) {
    return fail("libsolv cannot write {}: {}", path.string(), pool_errstr(m_impl->pool));
  }
  return write_file_atomic(path, std::string_view(buffer, size));
}

void PackagePool::set_download_sizes(std::size_t repository,
                                     const std::map<std::string, std::uint64_t, std::less<>>& sizes) {
  Repo* repo = m_impl->repos.at(repository);
  Repodata* data = repo_last_repodata(repo);
  Id p = 0;
  Solvable* s = nullptr;
  FOR_REPO_SOLVABLES(repo, p, s) {
    unsigned medianr = 0;
    const char* location = solvable_get_location(s, &medianr);
    if (auto found = location != nullptr ? sizes.find(std::string_view(location)) : sizes.end(); found != sizes.end()) {
      repodata_set_num(data, p, SOLVABLE_DOWNLOADSIZE, found->second);
    }
  }
  repodata_internalize(data);
}

std::string_view libsolv_version() {
  return solv_version;
}

std::size_t PackagePool::size() const {
  std::size_t count = 0;
  for (Repo* repo : m_impl->repos) {
    count += static_cast<std::size_t>(repo->nsolvables);
  }
  return count;
}

Result<Solution> PackagePool::solve(const std::vector<std::string>& names, std::string_view context,
                                    const SolveOptions& options) {
  auto& impl = *m_impl;
  impl.prepare();
  Pool* pool = impl.pool;
  std::vector<std::string> problems;
  Considered considered(pool);
  impl.restrict(options, considered, problems, context);
  SolvQueue job;
  for (const auto& name : names) {
    Id id = pool_str2id(pool, name.c_str(), 0);
    if (options.select == Select::names ? !impl.has_package(id) : !impl.has_provider(id)) {
      problems.push_back(options.select == Select::names
                             ? fmt::format("{}: no package is called '{}'", context, name)
                             : fmt::format("{}: no package is called or provides '{}'", context, name));
      continue;
    }
    // FORCEBEST as dnf's best=True: the newest version or a problem, never an older one
    // silently. libsolv's best is over every package, considered or not: where the solve is
    // held to some repositories or a pin, the newest of what it may take is its policy's
    // choice anyway.
    bool force = options.best == Best::newest && options.repositories.empty() && !options.pins.contains(name);
    queue_push2(&job.q,
                SOLVER_INSTALL | (options.select == Select::names ? SOLVER_SOLVABLE_NAME : SOLVER_SOLVABLE_PROVIDES) |
                    (force ? SOLVER_FORCEBEST : 0),
                id);
  }
  // The names that exist are solved even when others do not, so one run reports everything.
  auto solver = impl.run(job.q);
  auto count = static_cast<Id>(solver_problem_count(solver.get()));
  for (Id problem = 1; problem <= count; ++problem) {
    problems.push_back(impl.describe_problem(solver.get(), problem, count, context));
  }
  if (!problems.empty()) {
    return fail("{}", fmt::join(problems, "\n"));
  }
  std::unique_ptr<Transaction, decltype(&transaction_free)> transaction(solver_create_transaction(solver.get()),
                                                                        transaction_free);
  std::vector<Id> added;
  for (int i = 0; i < transaction->steps.count; ++i) {
    Id p = transaction->steps.elements[i];
    if (pool->solvables[p].repo != pool->installed) {
      added.push_back(p);
    }
  }
  Solution solution;
  std::vector<std::string> errors;
  for (Id p : added) {
    auto package = impl.describe(p);
    if (!package) {
      errors.push_back(fmt::format("{}: {}", context, package.error().message()));
      continue;
    }
    solution.install.push_back(std::move(*package));
  }
  if (!errors.empty()) {
    return fail("{}", fmt::join(errors, "\n"));
  }
  std::ranges::sort(solution.install, {}, [](const RepoPackage& p) { return std::tie(p.name, p.arch, p.evr); });
  solution.relies_on = impl.reliances(added);
  // Also with best=True: that holds only for the requested names, and a dependency may
  // still come at an older version (as with dnf), which is worth knowing.
  solution.older = impl.older_choices(added, job.q);
  return solution;
}

} // namespace kubexm
