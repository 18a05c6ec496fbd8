#include "builder/solver.hpp"

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
#include <solv/solver.h>
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

  bool has_provider(Id id) {
    Id provider = 0;
    Id pp = 0;
    FOR_PROVIDES(provider, pp, id) {
      return true;
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

std::size_t PackagePool::size() const {
  std::size_t count = 0;
  for (Repo* repo : m_impl->repos) {
    count += static_cast<std::size_t>(repo->nsolvables);
  }
  return count;
}

Result<Solution> PackagePool::solve(const std::vector<std::string>& names, std::string_view context) {
  auto& impl = *m_impl;
  impl.prepare();
  Pool* pool = impl.pool;
  std::vector<std::string> problems;
  SolvQueue job;
  for (const auto& name : names) {
    Id id = pool_str2id(pool, name.c_str(), 0);
    if (id == 0 || !impl.has_provider(id)) {
      problems.push_back(fmt::format("{}: no package is called or provides '{}'", context, name));
      continue;
    }
    // FORCEBEST as dnf's best=True: the newest version or a problem, never an older one silently.
    queue_push2(&job.q, SOLVER_INSTALL | SOLVER_SOLVABLE_PROVIDES | SOLVER_FORCEBEST, id);
  }
  for (Id p : impl.favoured) {
    queue_push2(&job.q, SOLVER_FAVOR | SOLVER_SOLVABLE, p);
  }
  std::unique_ptr<Solver, decltype(&solver_free)> solver(solver_create(pool), solver_free);
  solver_set_flag(solver.get(), SOLVER_FLAG_IGNORE_RECOMMENDED, 1);
  if (impl.format == PackageFormat::rpm) {
    // As dnf sets them: the best package within the arch and vendor policy, and
    // obsoletes read as yum does.
    solver_set_flag(solver.get(), SOLVER_FLAG_BEST_OBEY_POLICY, 1);
    solver_set_flag(solver.get(), SOLVER_FLAG_YUM_OBSOLETES, 1);
    solver_set_flag(solver.get(), SOLVER_FLAG_ALLOW_VENDORCHANGE, 1);
  }
  int count = solver_solve(solver.get(), &job.q);
  for (Id problem = 1; problem <= count; ++problem) {
    problems.push_back(fmt::format("{}: {}", context, solver_problem2str(solver.get(), problem)));
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
  return solution;
}

} // namespace kubexm
