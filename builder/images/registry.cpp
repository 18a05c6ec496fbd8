// Resolving and fetching container images with skopeo, run as a program: it speaks the
// registry protocol (auth, TLS, mirrors' quirks); kubexm decides what is fetched, by
// digest, and checks everything it brought.
#include "builder/images/registry.hpp"

#include "bundle/fs.hpp"
#include "bundle/log.hpp"
#include "bundle/process.hpp"
#include "bundle/sha256.hpp"

#include <algorithm>
#include <atomic>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <spdlog/spdlog.h>
#include <thread>
#include <unistd.h>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view k_oci_index = "application/vnd.oci.image.index.v1+json";
constexpr std::string_view k_docker_list = "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr std::string_view k_oci_manifest = "application/vnd.oci.image.manifest.v1+json";
constexpr std::string_view k_docker_manifest = "application/vnd.docker.distribution.manifest.v2+json";

const std::regex k_digest_pattern("sha256:[0-9a-f]{64}");

bool is_digest(const std::string& text) {
  return std::regex_match(text, k_digest_pattern);
}

// A field of a registry's JSON as text, or "" when it is missing or not a string: what
// registries send is checked, never trusted to have the right types.
std::string text_field(const nlohmann::json& object, const char* key) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_string()) {
    return {};
  }
  return object[key].get<std::string>();
}

std::uint64_t size_field(const nlohmann::json& object) {
  return object.is_object() && object.contains("size") && object["size"].is_number_unsigned()
             ? object["size"].get<std::uint64_t>()
             : 0;
}

// Runs fn(i) for i in [0, n) on up to `jobs` threads.
void parallel_for(std::size_t n, unsigned jobs, const std::function<void(std::size_t)>& fn) {
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i; (i = next++) < n;) {
      fn(i);
    }
  };
  std::vector<std::jthread> threads;
  for (unsigned t = 1; t < std::max(1u, std::min<unsigned>(jobs, static_cast<unsigned>(n))); ++t) {
    threads.emplace_back(work);
  }
  work();
}

bool is_insecure(const std::string& source, const RegistryOptions& options) {
  return std::ranges::find(options.insecure, split_reference(source).registry) != options.insecure.end();
}

// What skopeo said, without logrus' prefix: its msg="..." when there is one.
std::string skopeo_message(const std::string& errors) {
  auto start = errors.rfind("msg=\"");
  if (start == std::string::npos) {
    auto text = errors;
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
      text.pop_back();
    }
    return text.empty() ? "no message" : text;
  }
  std::string out;
  for (auto i = start + 5; i < errors.size() && errors[i] != '"'; ++i) {
    if (errors[i] == '\\' && i + 1 < errors.size()) {
      ++i;
    }
    out += errors[i];
  }
  return out;
}

// skopeo with `args`; its stdout, or an error carrying what it said on stderr.
Result<std::string> skopeo(std::vector<std::string> args, std::string_view what) {
  args.insert(args.begin(), "skopeo");
  auto run = run_captured(args);
  if (!run) {
    return add_context(run.error(), fmt::format("{} (kubexm-builder runs skopeo: install it)", what));
  }
  if (run->exit_code != 0) {
    return fail("{}: {}", what, skopeo_message(run->errors));
  }
  return std::move(run->output);
}

std::vector<std::string> inspect_args(const std::string& source, const RegistryOptions& options, bool config) {
  std::vector<std::string> args{"inspect", "--raw", "--retry-times=2"};
  if (config) {
    args.emplace_back("--config");
  }
  if (is_insecure(source, options)) {
    args.emplace_back("--tls-verify=false");
  }
  if (!options.authfile.empty()) {
    args.push_back("--authfile=" + options.authfile);
  }
  args.push_back("docker://" + source);
  return args;
}

std::string media_type_of(const nlohmann::json& document) {
  if (auto type = text_field(document, "mediaType"); !type.empty()) {
    return type;
  }
  // OCI documents may leave mediaType out; what they hold says what they are.
  return document.contains("manifests") ? std::string(k_oci_index) : std::string(k_oci_manifest);
}

std::string platform_text(const nlohmann::json& platform) {
  auto os = text_field(platform, "os");
  auto arch = text_field(platform, "architecture");
  auto text = fmt::format("{}/{}", os.empty() ? "?" : os, arch.empty() ? "?" : arch);
  if (auto variant = text_field(platform, "variant"); !variant.empty()) {
    text += "/" + variant;
  }
  return text;
}

bool platform_matches(const nlohmann::json& platform, std::string_view arch) {
  if (text_field(platform, "os") != "linux" || text_field(platform, "architecture") != arch) {
    return false;
  }
  auto variant = text_field(platform, "variant");
  return arch != "arm64" || variant.empty() || variant == "v8";
}

struct Resolved {
  std::optional<LockedImage> image;
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
};

Status store_index(const Cache& cache, const std::string& digest, const std::string& raw) {
  // Two references may name one index; their resolves run at once.
  static std::mutex writing;
  std::lock_guard lock(writing);
  auto path = image_index_file(cache, digest);
  std::error_code ec;
  if (fs::exists(path, ec)) {
    return {};
  }
  fs::create_directories(path.parent_path(), ec);
  return write_file_atomic(path, raw);
}

void resolve_one(const ImageSpec& spec, const std::vector<std::string>& arches, const Cache& cache,
                 const RegistryOptions& options, Resolved& out) {
  auto source = image_source(spec.ref, options);
  auto from = source == spec.ref ? std::string() : fmt::format(" (read from {})", source);
  auto what = fmt::format("resolving {}{}", spec.ref, from);
  auto raw = skopeo(inspect_args(source, options, false), what);
  if (!raw) {
    out.errors.push_back(raw.error().message());
    return;
  }
  auto document = nlohmann::json::parse(*raw, nullptr, false);
  if (document.is_discarded() || !document.is_object() || !document.contains("schemaVersion") ||
      document["schemaVersion"] != 2) {
    out.errors.push_back(
        fmt::format("{}: the registry's answer is not a schema 2 manifest or index (a very old image?)", what));
    return;
  }
  LockedImage image;
  image.name = spec.name;
  image.ref = spec.ref;
  image.digest = "sha256:" + to_hex(sha256_of(*raw));
  image.media_type = media_type_of(document);
  if (auto at = spec.ref.find('@'); at != std::string::npos && spec.ref.substr(at + 1) != image.digest) {
    out.errors.push_back(
        fmt::format("{}: the registry sent {}, not the digest the reference names", what, image.digest));
    return;
  }
  std::vector<std::string> available;
  if (is_image_index(image.media_type)) {
    const auto& manifests = document.contains("manifests") ? document["manifests"] : nlohmann::json();
    if (!manifests.is_array() || !std::ranges::all_of(manifests, [](const nlohmann::json& m) {
          return m.is_object() && is_digest(text_field(m, "digest"));
        })) {
      out.errors.push_back(fmt::format("{}: the index's entries are not descriptors with sha256 digests", what));
      return;
    }
    for (const auto& arch : arches) {
      auto found = std::ranges::find_if(manifests, [&](const nlohmann::json& m) {
        return m.contains("platform") && platform_matches(m["platform"], arch);
      });
      if (found != manifests.end()) {
        image.arches.push_back({arch, text_field(*found, "digest"), size_field(*found), media_type_of(*found)});
      } else {
        image.missing.push_back(arch);
      }
    }
    for (const auto& m : manifests) {
      if (m.contains("platform") && text_field(m["platform"], "architecture") != "unknown") {
        available.push_back(platform_text(m["platform"]));
      }
    }
    if (auto stored = store_index(cache, image.digest, *raw); !stored) {
      out.errors.push_back(fmt::format("{}: {}", what, stored.error().message()));
      return;
    }
  } else if (image.media_type == k_oci_manifest || image.media_type == k_docker_manifest) {
    // One manifest, no index: its config says which arch it is.
    auto config_text = skopeo(inspect_args(source, options, true), what);
    auto config = config_text ? nlohmann::json::parse(*config_text, nullptr, false) : nlohmann::json();
    if (!config_text || !config.is_object()) {
      out.errors.push_back(config_text ? fmt::format("{}: its config is not JSON", what)
                                       : config_text.error().message());
      return;
    }
    nlohmann::json platform = {{"os", text_field(config, "os")}, {"architecture", text_field(config, "architecture")}};
    if (auto variant = text_field(config, "variant"); !variant.empty()) {
      platform["variant"] = variant;
    }
    available.push_back(platform_text(platform));
    for (const auto& arch : arches) {
      if (platform_matches(platform, arch)) {
        image.arches.push_back({arch, image.digest, raw->size(), image.media_type});
      } else {
        image.missing.push_back(arch);
      }
    }
  } else {
    out.errors.push_back(
        fmt::format("{}: media type {} is neither an image index nor an image manifest", what, image.media_type));
    return;
  }
  if (image.arches.empty()) {
    // Not even --images-policy=warn can carry an image for none of the bundle's arches.
    out.errors.push_back(fmt::format("{} has none of the bundle's arches ({}); it has {}", spec.ref,
                                     fmt::join(arches, ", "),
                                     available.empty() ? "none" : fmt::format("{}", fmt::join(available, ", "))));
    return;
  }
  for (const auto& arch : image.missing) {
    auto message = fmt::format("{} has no linux/{} image (it has {})", spec.ref, arch,
                               available.empty() ? "none" : fmt::format("{}", fmt::join(available, ", ")));
    if (options.policy == ImagesPolicy::strict) {
      out.errors.push_back(message + fmt::format(": build without arch {}, or pass --images-policy=warn to carry the "
                                                 "image for the other arches only",
                                                 arch));
    } else {
      out.warnings.push_back(message + ": the bundle carries it for the other arches only");
    }
  }
  out.image = std::move(image);
}

// Checks a dir: copy against the digest it was asked for: the manifest's bytes, each blob's
// digest and size, and the config's os and arch.
Status check_manifest_dir(const fs::path& dir, const LockedImage& image, const LockedImageArch& arch,
                          std::vector<std::string>& warnings, const RegistryOptions& options) {
  auto label = fmt::format("{} ({})", image.ref, arch.arch);
  auto manifest = read_text_file(dir / "manifest.json", 16 << 20);
  if (!manifest) {
    return add_context(manifest.error(), label);
  }
  auto digest = "sha256:" + to_hex(sha256_of(*manifest));
  if (digest != arch.digest) {
    return fail_verification("{}: the manifest fetched has digest {}, the lock says {}", label, digest, arch.digest);
  }
  auto document = nlohmann::json::parse(*manifest, nullptr, false);
  if (document.is_discarded() || !document.is_object() || !document.contains("config") ||
      !document.contains("layers") || !document["layers"].is_array()) {
    return fail_verification("{}: manifest {} is not an image manifest", label, digest);
  }
  std::vector<nlohmann::json> blobs{document["config"]};
  for (const auto& layer : document["layers"]) {
    blobs.push_back(layer);
  }
  for (const auto& blob : blobs) {
    auto want = text_field(blob, "digest");
    if (!is_digest(want)) {
      return fail_verification("{}: manifest {} names a blob without a sha256 digest", label, digest);
    }
    auto file = dir / digest_hex(want);
    auto got = sha256_file(file);
    if (!got) {
      return add_context(got.error(), fmt::format("{}: blob {}", label, want));
    }
    if ("sha256:" + to_hex(got->digest) != want || got->size != size_field(blob)) {
      return fail_verification("{}: blob {} has digest sha256:{} and {} bytes; the manifest says {} and {} bytes",
                               label, want, to_hex(got->digest), got->size, want, size_field(blob));
    }
  }
  auto config_text = read_text_file(dir / digest_hex(text_field(blobs.front(), "digest")), 16 << 20);
  auto config = config_text ? nlohmann::json::parse(*config_text, nullptr, false) : nlohmann::json();
  nlohmann::json platform = {{"os", text_field(config, "os")}, {"architecture", text_field(config, "architecture")}};
  if (!platform_matches(platform, arch.arch)) {
    auto message = fmt::format("{}: the index lists manifest {} as linux/{}, but its config says {}", label, digest,
                               arch.arch, platform_text(platform));
    if (options.policy == ImagesPolicy::strict) {
      return fail_verification("{} (--images-policy=warn accepts it)", message);
    }
    warnings.push_back(message);
  }
  return {};
}

Status fetch_one(const LockedImage& image, const LockedImageArch& arch, const Cache& cache,
                 const RegistryOptions& options, std::vector<std::string>& warnings) {
  auto dir = image_manifest_dir(cache, arch.digest);
  std::error_code ec;
  if (fs::exists(dir / "manifest.json", ec)) {
    if (check_manifest_dir(dir, image, arch, warnings, options)) {
      return {};
    }
    (void)remove_tree(dir); // damaged: fetched again
  }
  static std::atomic<unsigned> copies{0};
  auto partial = dir.string() + fmt::format(".partial-{}-{}", ::getpid(), copies++);
  (void)remove_tree(partial);
  fs::create_directories(dir.parent_path(), ec);
  auto source = fmt::format("{}@{}", split_reference(image_source(image.ref, options)).repository, arch.digest);
  std::vector<std::string> args{"copy", "--quiet", "--retry-times=2"};
  if (is_insecure(source, options)) {
    args.emplace_back("--src-tls-verify=false");
  }
  if (!options.authfile.empty()) {
    args.push_back("--src-authfile=" + options.authfile);
  }
  args.push_back("docker://" + source);
  args.push_back("dir:" + partial);
  auto copied = skopeo(args, fmt::format("fetching {} for {} ({})", image.ref, arch.arch, source));
  if (!copied) {
    (void)remove_tree(partial);
    return std::unexpected(copied.error());
  }
  if (auto checked = check_manifest_dir(partial, image, arch, warnings, options); !checked) {
    (void)remove_tree(partial);
    return checked;
  }
  fs::rename(partial, dir, ec);
  if (ec && !fs::exists(dir / "manifest.json")) {
    return fail("moving {} into the cache: {}", dir.string(), ec.message());
  }
  (void)remove_tree(partial);
  return {};
}

} // namespace

bool is_image_index(std::string_view media_type) {
  return media_type == k_oci_index || media_type == k_docker_list;
}

std::string digest_hex(const std::string& digest) {
  return digest.substr(digest.find(':') + 1);
}

fs::path image_manifest_dir(const Cache& cache, const std::string& digest) {
  return cache.root() / "images" / "manifests" / digest_hex(digest);
}

fs::path image_index_file(const Cache& cache, const std::string& digest) {
  return cache.root() / "images" / "indexes" / digest_hex(digest);
}

std::string image_source(const std::string& ref, const RegistryOptions& options) {
  const RegistryMirror* best = nullptr;
  for (const auto& mirror : options.mirrors) {
    bool applies = ref.starts_with(mirror.from) && (ref.size() == mirror.from.size() || ref[mirror.from.size()] == '/');
    if (applies && (best == nullptr || mirror.from.size() > best->from.size())) {
      best = &mirror;
    }
  }
  return best == nullptr ? ref : best->to + ref.substr(best->from.size());
}

Result<std::vector<LockedImage>> resolve_images(const std::vector<ImageSpec>& images,
                                                const std::vector<std::string>& arches, const Cache& cache,
                                                const RegistryOptions& options) {
  if (images.empty()) {
    return std::vector<LockedImage>{};
  }
  std::vector<Resolved> results(images.size());
  parallel_for(images.size(), options.jobs, [&](std::size_t i) {
    try {
      resolve_one(images[i], arches, cache, options, results[i]);
    } catch (const std::exception& e) { // JSON of unexpected shape: reported, never fatal
      results[i].errors.push_back(
          fmt::format("resolving {}: the registry's answer is malformed: {}", images[i].ref, e.what()));
    }
  });
  std::vector<std::string> errors;
  std::vector<LockedImage> out;
  for (auto& result : results) {
    for (const auto& warning : result.warnings) {
      log_warning(warning);
    }
    errors.insert(errors.end(), result.errors.begin(), result.errors.end());
    if (result.image) {
      out.push_back(std::move(*result.image));
    }
  }
  if (!errors.empty()) {
    return fail("{} of {} images could not be resolved:\n  {}", errors.size(), images.size(),
                fmt::join(errors, "\n  "));
  }
  std::size_t manifests = 0;
  for (const auto& image : out) {
    manifests += image.arches.size();
  }
  spdlog::info(fmt::format("resolved {} images to {} platform manifests for {}", out.size(), manifests,
                           fmt::join(arches, ", ")));
  return out;
}

Status fetch_images(const std::vector<LockedImage>& images, const Cache& cache, const RegistryOptions& options) {
  if (images.empty()) {
    return {};
  }
  struct Job {
    const LockedImage* image;
    const LockedImageArch* arch;
  };
  std::vector<Job> jobs;
  for (const auto& image : images) {
    for (const auto& arch : image.arches) {
      jobs.push_back({&image, &arch});
    }
  }
  // One copy per manifest digest: two entries (of one index, or of two images) may name the
  // same manifest. Each entry's arch is checked against it all the same.
  std::vector<std::size_t> first_of(jobs.size());
  std::vector<std::size_t> unique;
  std::map<std::string, std::size_t> by_digest;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    auto [it, fresh] = by_digest.try_emplace(jobs[i].arch->digest, i);
    first_of[i] = it->second;
    if (fresh) {
      unique.push_back(i);
    }
  }
  std::vector<Status> results(jobs.size());
  std::vector<std::vector<std::string>> warnings(jobs.size());
  parallel_for(unique.size(), options.jobs, [&](std::size_t u) {
    auto i = unique[u];
    try {
      results[i] = fetch_one(*jobs[i].image, *jobs[i].arch, cache, options, warnings[i]);
    } catch (const std::exception& e) {
      results[i] = fail_verification("fetching {} for {}: a malformed manifest: {}", jobs[i].image->ref,
                                     jobs[i].arch->arch, e.what());
    }
  });
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (first_of[i] != i && results[first_of[i]]) {
      results[i] = check_manifest_dir(image_manifest_dir(cache, jobs[i].arch->digest), *jobs[i].image, *jobs[i].arch,
                                      warnings[i], options);
    }
  }
  std::vector<Error> errors;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    for (const auto& warning : warnings[i]) {
      log_warning(warning);
    }
    if (!results[i]) {
      errors.push_back(results[i].error());
    }
  }
  // The indexes the layout keeps entries of: in the cache since resolve, or read again.
  for (const auto& image : images) {
    if (!is_image_index(image.media_type) || fs::exists(image_index_file(cache, image.digest))) {
      continue;
    }
    auto source = fmt::format("{}@{}", split_reference(image_source(image.ref, options)).repository, image.digest);
    auto raw = skopeo(inspect_args(source, options, false), fmt::format("fetching the index of {}", image.ref));
    if (!raw) {
      errors.push_back(raw.error());
    } else if ("sha256:" + to_hex(sha256_of(*raw)) != image.digest) {
      errors.emplace_back(ErrorKind::verification,
                          fmt::format("the index of {} fetched from {} does not have the locked digest {}", image.ref,
                                      source, image.digest));
    } else if (auto stored = store_index(cache, image.digest, *raw); !stored) {
      errors.push_back(stored.error());
    }
  }
  if (auto status = join_errors(errors); !status) {
    return status;
  }
  spdlog::info(
      fmt::format("{} image manifests and their blobs ready in {}", jobs.size(), (cache.root() / "images").string()));
  return {};
}

} // namespace kubexm
