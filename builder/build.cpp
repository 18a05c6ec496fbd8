#include "builder/build.hpp"

#include "builder/packages/packages.hpp"
#include "builder/images/registry.hpp"
#include "builder/site/render.hpp"
#include "builder/site/site.hpp"
#include "builder/binaries/unpack.hpp"
#include "bundle/bundle_info.hpp"
#include "bundle/fs.hpp"
#include "bundle/log.hpp"

#include <map>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

Status check_pins(const Plan& plan, bool allow_unpinned) {
  std::vector<std::string> unpinned;
  for (const auto& artifact : plan.artifacts) {
    if (!artifact.pin) {
      unpinned.push_back(artifact.label());
    }
  }
  if (unpinned.empty()) {
    return {};
  }
  if (!allow_unpinned) {
    return std::unexpected(Error(
        ErrorKind::usage,
        fmt::format("no pinned SHA-256 for {}: add them under 'checksums:' in {} (or pass --allow-unpinned to trust "
                    "the upstream checksum files alone; the lock records it)",
                    fmt::join(unpinned, ", "), plan.manifest_path.string())));
  }
  log_warning(fmt::format("not pinned, trusting the upstream checksum files alone: {}", fmt::join(unpinned, ", ")));
  return {};
}

// The digest each artifact must have: the pin, which the upstream checksum file must agree with.
Result<std::vector<std::optional<std::string>>> expected_digests(const Plan& plan, const FetchOptions& options) {
  std::vector<std::string> urls;
  for (const auto& artifact : plan.artifacts) {
    if (!artifact.checksum_url.empty() && std::ranges::find(urls, artifact.checksum_url) == urls.end()) {
      urls.push_back(artifact.checksum_url);
    }
  }
  auto texts = fetch_texts(urls, options);
  std::vector<std::optional<std::string>> expected;
  std::vector<Error> errors;
  for (const auto& artifact : plan.artifacts) {
    expected.push_back(artifact.pin);
    if (artifact.checksum_url.empty()) {
      if (!artifact.pin) {
        log_warning(
            fmt::format("{}: its upstream publishes no checksum and it is not pinned: the download is trusted as it "
                        "comes",
                        artifact.label()));
      }
      continue;
    }
    const auto& text = texts[static_cast<std::size_t>(std::ranges::find(urls, artifact.checksum_url) - urls.begin())];
    if (!text) {
      errors.push_back(text.error().with_context(fmt::format("{}: checksum file", artifact.label())));
      continue;
    }
    auto upstream = digest_from_checksum_file(*text, artifact.checksum_format, artifact.file_name());
    if (!upstream) {
      errors.push_back(Error(ErrorKind::verification, fmt::format("{}: checksum file {}: {}", artifact.label(),
                                                                  apply_mirrors(options.mirrors, artifact.checksum_url),
                                                                  upstream.error().message())));
      continue;
    }
    if (artifact.pin && *artifact.pin != *upstream) {
      errors.push_back(Error(ErrorKind::verification,
                             fmt::format("{}: the upstream checksum file {} says {}, but the {} pins {}; refusing "
                                         "both (a changed release or a tampered mirror)",
                                         artifact.label(), apply_mirrors(options.mirrors, artifact.checksum_url),
                                         *upstream, to_string(artifact.pin_source), *artifact.pin)));
      continue;
    }
    expected.back() = *upstream;
  }
  if (auto status = join_errors(errors); !status) {
    return std::unexpected(status.error());
  }
  return expected;
}

// Every binary artifact of the plan, downloaded, verified and unpacked.
Result<std::vector<LockedArtifact>> resolve_binaries(const Plan& plan, const Cache& cache,
                                                     const FetchOptions& options) {
  auto expected = expected_digests(plan, options);
  if (!expected) {
    return std::unexpected(expected.error());
  }
  // Cached files are hashed again before they are locked: a damaged one must not be
  // locked. It costs a read from the page cache, next to the unpacking read below.
  auto fetch_options = options;
  fetch_options.verify_hits = true;
  std::vector<Download> downloads;
  for (std::size_t i = 0; i < plan.artifacts.size(); ++i) {
    const auto& artifact = plan.artifacts[i];
    downloads.push_back({artifact.url, artifact.label(), (*expected)[i], std::nullopt});
  }
  auto fetched = fetch_all(downloads, cache, fetch_options);

  std::vector<LockedArtifact> artifacts;
  std::vector<Error> errors;
  for (std::size_t i = 0; i < plan.artifacts.size(); ++i) {
    const auto& artifact = plan.artifacts[i];
    if (!fetched[i]) {
      errors.push_back(fetched[i].error());
      continue;
    }
    auto members = unpack_artifact({cache.object(fetched[i]->sha256), artifact.kind, artifact.members, artifact.arch,
                                    artifact.label(), apply_mirrors(options.mirrors, artifact.url), std::nullopt});
    if (!members) {
      errors.push_back(members.error());
      continue;
    }
    artifacts.push_back({artifact.component, artifact.version, artifact.arch, artifact.url, fetched[i]->size,
                         fetched[i]->sha256, artifact.kind, artifact.checksum_url, artifact.pin_source,
                         std::move(*members)});
  }
  if (auto status = join_errors(errors); !status) {
    return std::unexpected(status.error());
  }
  return artifacts;
}

} // namespace

Result<Lock> resolve_plan(const Plan& plan, const Cache& cache, const FetchOptions& options, bool allow_unpinned) {
  if (auto status = check_pins(plan, allow_unpinned); !status) {
    return std::unexpected(status.error());
  }
  // Binaries and OS packages are resolved independently, so one run reports the problems
  // of both.
  Lock lock{plan.bundle, {}, {}, {}};
  std::vector<Error> errors;
  if (auto binaries = resolve_binaries(plan, cache, options); binaries) {
    lock.artifacts = std::move(*binaries);
  } else {
    errors.push_back(binaries.error());
  }
  if (auto sets = resolve_packages(plan, cache, options, PackageFiles::fetch); sets) {
    lock.package_sets = std::move(*sets);
  } else {
    errors.push_back(sets.error());
  }
  // Like binaries, images are fetched and verified by the resolve that pins them.
  auto images = resolve_images(plan.images, plan.bundle.arches, cache, options.registries);
  if (images) {
    lock.images = std::move(*images);
  }
  if (auto fetched =
          images ? fetch_images(lock.images, cache, options.registries) : Status(std::unexpected(images.error()));
      !fetched) {
    errors.push_back(fetched.error());
  }
  if (auto status = join_errors(errors); !status) {
    return std::unexpected(status.error());
  }
  return lock;
}

Status fetch_lock(const Lock& lock, const Cache& cache, const FetchOptions& options) {
  std::vector<Download> downloads;
  for (const auto& artifact : lock.artifacts) {
    downloads.push_back({artifact.url, artifact.label(), artifact.sha256, artifact.size});
  }
  auto fetched = fetch_all(downloads, cache, options);
  std::vector<Error> errors;
  if (auto status = fetch_packages(lock.package_sets, cache, options); !status) {
    errors.push_back(status.error());
  }
  if (auto status = fetch_images(lock.images, cache, options.registries); !status) {
    errors.push_back(status.error());
  }
  std::size_t hits = 0;
  for (const auto& result : fetched) {
    if (!result) {
      errors.push_back(result.error());
    } else if (result->from_cache) {
      ++hits;
    }
  }
  if (auto status = join_errors(errors); !status) {
    return status;
  }
  spdlog::info("{} files ready in {} ({} were already there)", fetched.size(), cache.root().string(), hits);
  return {};
}

namespace {

// bundle.yaml's components: which files each component version has, for which arches.
std::vector<ComponentRecord> component_records(const Lock& lock) {
  std::map<std::pair<std::string, std::string>, ComponentRecord> records;
  for (const auto& artifact : lock.artifacts) {
    auto& record = records[{artifact.component, artifact.version}];
    record.name = artifact.component;
    record.version = artifact.version;
    record.arches.push_back(artifact.arch);
    if (record.files.empty()) {
      for (const auto& member : artifact.members) {
        record.files.push_back(member.install);
      }
    }
  }
  std::vector<ComponentRecord> out;
  for (auto& [_, record] : records) {
    out.push_back(std::move(record));
  }
  return out;
}

Status check_members(const LockedArtifact& artifact, const std::vector<LockedMember>& members) {
  for (std::size_t i = 0; i < members.size(); ++i) {
    const auto& locked = artifact.members[i];
    if (members[i].sha256 != locked.sha256 || members[i].size != locked.size) {
      return fail_verification("{}: {} has SHA-256 {} ({} bytes), the lock says {} ({} bytes)", artifact.label(),
                               locked.install, members[i].sha256, members[i].size, locked.sha256, locked.size);
    }
  }
  return {};
}

} // namespace

Status assemble_tree(const Lock& lock, const Cache& cache, const fs::path& tree) {
  // The bundle's modes are fixed (0755 binaries and directories, 0644 metadata), whatever
  // umask the builder runs under: a umask of 077 would otherwise make binaries only root can run.
  struct ScopedUmask {
    mode_t saved = ::umask(022);
    ~ScopedUmask() { ::umask(saved); }
  } umask_022;
  std::vector<Error> errors;
  for (const auto& artifact : lock.artifacts) {
    std::vector<MemberSpec> specs;
    for (const auto& member : artifact.members) {
      specs.push_back({member.path, member.install});
    }
    auto dir = tree / "bin" / artifact.arch / artifact.component / artifact.version;
    auto members = unpack_artifact(
        {cache.object(artifact.sha256), artifact.kind, specs, artifact.arch, artifact.label(), artifact.url, dir});
    if (!members) {
      errors.push_back(members.error());
    } else if (auto status = check_members(artifact, *members); !status) {
      errors.push_back(status.error());
    }
  }
  if (auto status = assemble_packages(lock.package_sets, cache, tree); !status) {
    errors.push_back(status.error());
  }
  if (auto status = assemble_images(lock.images, cache, tree); !status) {
    errors.push_back(status.error());
  }
  if (auto status = join_errors(errors); !status) {
    return status;
  }
  BundleInfo info;
  info.name = lock.bundle.name;
  info.version = lock.bundle.version;
  info.arches = lock.bundle.arches;
  info.os_profiles = lock.bundle.os_profiles;
  info.roles = lock.bundle.roles;
  info.components = component_records(lock);
  info.packages = package_targets(lock.package_sets);
  for (const auto& image : lock.images) {
    ImageRecord record{image.ref, image.digest, {}};
    for (const auto& arch : image.arches) {
      record.manifests[arch.arch] = arch.digest;
    }
    info.images.push_back(std::move(record));
  }
  if (auto status = write_file_atomic(tree / "bundle.yaml", format_bundle_info(info)); !status) {
    return status;
  }
  return write_file_atomic(tree / "kubexm.lock", format_lock(lock));
}

Result<SiteOutput> make_site(const Site& site, const fs::path& dir, const std::vector<ImageSpec>& images,
                             const PkiOptions& options) {
  auto pki = generate_site_pki(site, dir, options);
  if (!pki) {
    return std::unexpected(pki.error());
  }
  RenderInputs inputs{default_templates_dir(), {}};
  for (const auto& image : images) {
    inputs.images.emplace(image.name, image.ref);
  }
  auto nodes = render_site(site, dir, inputs);
  if (!nodes) {
    return std::unexpected(nodes.error());
  }
  return SiteOutput{std::move(*pki), std::move(*nodes)};
}

// bundle.yaml's site record: the installer picks a host's node from it before it reads the
// payload.
Status record_site(const Site& site, const fs::path& tree) {
  auto path = tree / "bundle.yaml";
  auto text = read_text_file(path, 64 << 20);
  if (!text) {
    return std::unexpected(text.error());
  }
  auto info = parse_bundle_info(*text, path.string(), InfoSource::tree);
  if (!info) {
    return std::unexpected(info.error());
  }
  SiteRecord record{site.name, topology_of(site).id, endpoint_port(site), {}};
  for (const auto& host : site.hosts) {
    record.nodes.push_back({host.name, host.address, host.arch, host.os, host.roles});
  }
  info->site = std::move(record);
  return write_file_atomic(path, format_bundle_info(*info));
}

Result<RenderReport> assemble_site(const Plan& plan, const SiteBuild& options, const fs::path& tree) {
  auto made = make_site(*plan.site, options.site_dir, plan.images, options.pki);
  if (!made) {
    return std::unexpected(made.error());
  }
  if (auto status = record_site(*plan.site, tree); !status) {
    return std::unexpected(status.error());
  }
  if (auto status = make_directories(tree / "site"); !status) {
    return std::unexpected(status.error());
  }
  std::error_code ec;
  fs::copy(options.site_dir / "nodes", tree / "site" / "nodes", fs::copy_options::recursive, ec);
  if (!ec) {
    fs::copy_file(plan.site_path, tree / "site" / "site.yaml", ec);
  }
  if (ec) {
    return fail("copying the rendered site from {} into {}: {}", options.site_dir.string(), (tree / "site").string(),
                ec.message());
  }
  return std::move(made->nodes);
}

Result<bool> assemble_preparation(const Plan& plan, const Lock& lock, const fs::path& tree) {
  const auto& roles = plan.bundle.roles;
  bool kubelet_hosts = std::ranges::any_of(roles, [](const std::string& r) { return r == "master" || r == "worker"; });
  // The lock, not the plan: a build from a reused lock has resolved nothing, and must make
  // the same bundle as the build that wrote the lock.
  bool containerd =
      std::ranges::any_of(lock.artifacts, [](const LockedArtifact& a) { return a.component == "containerd"; });
  if (plan.site || !kubelet_hosts || !containerd) {
    return false;
  }
  RenderInputs inputs{default_templates_dir(), {}};
  for (const auto& image : lock.images) {
    inputs.images.emplace(image.name, image.ref);
  }
  if (auto status = render_preparation(tree / "prepare" / "kubernetes", inputs); !status) {
    return std::unexpected(status.error());
  }
  return true;
}

} // namespace kubexm
