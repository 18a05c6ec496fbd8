// `install images`: the bundle's container images for this host's arch, into its runtime.
//
// The images travel as one OCI layout for every arch (images/oci). A host needs only its
// arch's blobs, so the installer reads the bundle once and writes a tar of just those (an
// OCI layout that is also a docker-archive) into the runtime's importer through a pipe:
// nothing is unpacked to disk first. Blobs go in as they are read and verified; the
// index.json that names the images goes last, so a bundle found damaged half-way names
// nothing in the runtime.
#include "installer/images.hpp"

#include "bundle/fs.hpp"
#include "bundle/process.hpp"
#include "bundle/reader.hpp"
#include "bundle/sha256.hpp"
#include "installer/host.hpp"

#include <array>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>

namespace kubexm {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view k_blob_prefix = "images/oci/blobs/sha256/";

// One image as this host needs it.
struct Wanted {
  std::string ref;
  std::string upstream; // what the reference named upstream (an index): what a registry pull records
  std::string digest;   // the platform manifest's
  std::string config;   // the config's digest: docker's image ID
  std::string media_type;
  std::uint64_t size = 0;
  std::vector<std::string> blobs; // hex digests: manifest, config, layers
  std::vector<std::uint64_t> blob_sizes;
};

struct Runtime {
  std::string name; // containerd, docker
  std::string address;
  std::string ns;
  std::string label() const {
    return name == "containerd" ? fmt::format("containerd (namespace {})", ns) : std::string("docker");
  }
};

std::vector<std::string> runtime_command(const Runtime& runtime, std::vector<std::string> args) {
  std::vector<std::string> out;
  if (runtime.name == "containerd") {
    out = {"ctr", "--address", runtime.address, "--namespace", runtime.ns};
  } else {
    out = {"docker", "--host", "unix://" + runtime.address};
  }
  out.insert(out.end(), args.begin(), args.end());
  return out;
}

std::string first_line(const std::string& text) {
  auto line = text.substr(0, text.find('\n'));
  return line.empty() ? "no message" : line;
}

// What the runtime has under each of `wanted`'s references: the digest it can be checked
// by (containerd: the image's target, the platform manifest; docker: the image ID, the
// config). An image it lacks is not in the map.
Result<std::map<std::string, std::string>> runtime_images(const Runtime& runtime, const std::vector<Wanted>& wanted) {
  std::map<std::string, std::string> out;
  if (runtime.name == "containerd") {
    auto listed = run_captured(runtime_command(runtime, {"images", "list"}));
    if (!listed) {
      return add_context(listed.error(), "listing containerd's images (is ctr installed?)");
    }
    if (listed->exit_code != 0) {
      return fail("cannot reach containerd at {}: {}; start it (systemctl start containerd) or give its socket with "
                  "--address",
                  runtime.address, first_line(listed->errors));
    }
    // REF TYPE DIGEST SIZE PLATFORMS LABELS, after a header line.
    std::string_view rest(listed->output);
    for (bool header = true; !rest.empty(); header = false) {
      auto line = rest.substr(0, rest.find('\n'));
      rest.remove_prefix(std::min(rest.size(), line.size() + 1));
      if (header) {
        continue;
      }
      std::vector<std::string> fields;
      for (std::size_t at = 0; at < line.size();) {
        auto start = line.find_first_not_of(' ', at);
        if (start == std::string_view::npos) {
          break;
        }
        auto end = line.find(' ', start);
        fields.emplace_back(line.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
        at = end == std::string_view::npos ? line.size() : end;
      }
      if (fields.size() >= 3) {
        out[fields[0]] = fields[2];
      }
    }
    return out;
  }
  for (const auto& image : wanted) {
    // docker tags no digest reference: an image named by digest is known by its ID.
    auto key = image.ref.find('@') == std::string::npos ? image.ref : image.config;
    auto inspected = run_captured(runtime_command(runtime, {"image", "inspect", "--format", "{{.Id}}", key}));
    if (!inspected) {
      return add_context(inspected.error(), "asking docker for its images (is docker installed?)");
    }
    if (inspected->exit_code == 0) {
      auto id = inspected->output.substr(0, inspected->output.find('\n'));
      out[image.ref] = id;
    } else if (inspected->errors.find("No such image") == std::string::npos) {
      return fail("cannot reach docker at {}: {}; start it (systemctl start docker) or give its socket with "
                  "--address",
                  runtime.address, first_line(inspected->errors));
    }
  }
  return out;
}

// The digest the runtime is checked against, as messages show it.
std::string expected_digest(const Runtime& runtime, const Wanted& image) {
  return runtime.name == "containerd" ? image.digest : image.config;
}

// Whether what the runtime has under an image's reference is the locked image: containerd
// records the platform manifest (imported) or the index (pulled from a registry); docker
// its image ID, which is the config's digest, or with the containerd image store the
// manifest's or the index's.
bool at_locked_digest(const Runtime& runtime, const Wanted& image, const std::string& have) {
  if (have == image.digest || have == image.upstream) {
    return true;
  }
  return runtime.name == "docker" && have == image.config;
}

// A ustar stream written to a file descriptor (the importer's standard input). Written
// here rather than with libarchive: its tar writers pull every archive format into a
// static link. The names are short ("blobs/sha256/<hex>", 77 bytes) and the sizes below
// ustar's 8 GiB, so a plain ustar header holds them; the tar readers of containerd (Go's
// archive/tar) and docker read it.
class TarStream {
public:
  explicit TarStream(int fd) : m_fd(fd) {}

  Status begin(const std::string& path, std::uint64_t size) {
    if (path.size() >= 100 || size >= (std::uint64_t{1} << 33)) {
      return fail("streaming images to the runtime: {} does not fit a ustar header", path);
    }
    if (auto status = pad(); !status) {
      return status;
    }
    std::array<char, 512> header{};
    auto put = [&](std::size_t at, std::string_view text) { text.copy(header.data() + at, text.size()); };
    put(0, path);
    put(100, "0000644");
    put(108, "0000000");
    put(116, "0000000");
    put(124, fmt::format("{:011o}", size));
    put(136, "00000000000");
    put(148, "        "); // the checksum counts its own field as spaces
    header[156] = '0';
    put(257, "ustar");
    put(263, "00");
    put(265, "root");
    put(297, "root");
    unsigned sum = 0;
    for (char c : header) {
      sum += static_cast<unsigned char>(c);
    }
    put(148, fmt::format("{:06o}", sum));
    header[154] = '\0';
    header[155] = ' ';
    m_left = size;
    return write(std::as_bytes(std::span(header)));
  }
  Status data(std::span<const std::byte> bytes) {
    if (bytes.size() > m_left) {
      return fail("streaming images to the runtime: a member is longer than its header says");
    }
    m_left -= bytes.size();
    m_written += bytes.size();
    return write(bytes);
  }
  Status text(const std::string& path, const std::string& content) {
    if (auto status = begin(path, content.size()); !status) {
      return status;
    }
    return data(std::as_bytes(std::span(content.data(), content.size())));
  }
  // Two zero blocks end a tar.
  Status close() {
    if (auto status = pad(); !status) {
      return status;
    }
    std::array<std::byte, 1024> end{};
    return write(end);
  }

private:
  // The zeros that bring the last member to a 512-byte boundary.
  Status pad() {
    if (m_left != 0) {
      return fail("streaming images to the runtime: a member ended {} bytes short", m_left);
    }
    std::array<std::byte, 512> zeros{};
    auto over = m_written % 512;
    m_written = 0;
    return over == 0 ? Status{} : write(std::span(zeros).first(512 - over));
  }
  Status write(std::span<const std::byte> bytes) {
    if (auto status = write_all(m_fd, bytes); !status) {
      return add_context(status.error(),
                         "streaming images to the runtime (it stopped reading: its messages are above)");
    }
    return {};
  }
  int m_fd;
  std::uint64_t m_left = 0;
  std::uint64_t m_written = 0;
};

// Fills in, from images/images.json, what bundle.yaml does not say of each image: its
// config and layers for `arch`. The two must agree on every manifest digest.
Status fill_from_summary(const std::string& text, const std::string& arch, std::vector<Wanted>& images) {
  auto root = nlohmann::json::parse(text, nullptr, false);
  if (root.is_discarded() || !root.is_object() || root.value("format", 0) != 1 || !root.contains("images") ||
      !root["images"].is_array()) {
    return fail_verification("{}: not an images summary of format 1", k_images_summary);
  }
  std::map<std::string, const nlohmann::json*> by_ref;
  for (const auto& image : root["images"]) {
    by_ref[image.value("ref", "")] = &image;
  }
  for (auto& wanted : images) {
    auto found = by_ref.find(wanted.ref);
    if (found == by_ref.end() || !(*found->second).contains("arches") || !(*found->second)["arches"].contains(arch)) {
      return fail_verification("{} does not describe {} for {}, which bundle.yaml lists", k_images_summary, wanted.ref,
                               arch);
    }
    const auto& entry = (*found->second)["arches"][arch];
    if (entry.value("digest", "") != wanted.digest) {
      return fail_verification("bundle.yaml and {} disagree on the {} manifest of {}", k_images_summary, arch,
                               wanted.ref);
    }
    wanted.media_type = entry.value("media_type", "");
    wanted.size = entry.value("size", std::uint64_t{0});
    static const std::regex digest_pattern("sha256:[0-9a-f]{64}");
    auto blobs = entry.value("blobs", nlohmann::json::array());
    if (!blobs.is_array() || !std::ranges::all_of(blobs, [&](const nlohmann::json& blob) {
          return blob.is_object() && blob.contains("digest") && blob["digest"].is_string() &&
                 std::regex_match(blob["digest"].get<std::string>(), digest_pattern) && blob.contains("size") &&
                 blob["size"].is_number_unsigned();
        })) {
      return fail_verification("{}: the blobs of {} for {} are not digests with sizes", k_images_summary, wanted.ref,
                               arch);
    }
    wanted.blobs = {wanted.digest.substr(7)};
    wanted.blob_sizes = {wanted.size};
    for (const auto& blob : blobs) {
      wanted.blobs.push_back(blob.value("digest", "").substr(7));
      wanted.blob_sizes.push_back(blob.value("size", std::uint64_t{0}));
    }
    if (wanted.blobs.size() < 2) {
      return fail_verification("{}: {} lists no config for {}", k_images_summary, wanted.ref, arch);
    }
    wanted.config = "sha256:" + wanted.blobs[1];
  }
  return {};
}

// index.json (OCI: containerd names each image by its annotation) and manifest.json
// (docker-archive: docker load reads it), for the images being imported.
std::pair<std::string, std::string> layout_files(const std::vector<Wanted>& images) {
  nlohmann::json manifests = nlohmann::json::array();
  nlohmann::json docker = nlohmann::json::array();
  for (const auto& image : images) {
    manifests.push_back(
        {{"mediaType", image.media_type},
         {"digest", image.digest},
         {"size", image.size},
         {"annotations", {{"io.containerd.image.name", image.ref}, {"org.opencontainers.image.ref.name", image.ref}}}});
    nlohmann::json layers = nlohmann::json::array();
    for (std::size_t i = 2; i < image.blobs.size(); ++i) {
      layers.push_back("blobs/sha256/" + image.blobs[i]);
    }
    auto tags = image.ref.find('@') == std::string::npos ? nlohmann::json::array({image.ref}) : nlohmann::json::array();
    docker.push_back({{"Config", "blobs/sha256/" + image.blobs[1]}, {"RepoTags", tags}, {"Layers", layers}});
  }
  nlohmann::json index = {
      {"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.index.v1+json"}, {"manifests", manifests}};
  return {index.dump(), docker.dump()};
}

// Collects images/images.json from the stream, which comes before the layout's blobs.
class SummarySink : public EntrySink {
public:
  Status directory(const IndexEntry&) override { return {}; }
  Status begin_file(const IndexEntry& entry) override {
    m_reading = entry.path == k_images_summary;
    return {};
  }
  Status file_data(std::span<const std::byte> bytes) override {
    if (m_reading) {
      m_text.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    }
    return {};
  }
  Status end_file() override {
    bool done = m_reading;
    m_reading = false;
    return done ? summary_read(m_text) : Status{};
  }

protected:
  // Called once the summary is in and verified.
  virtual Status summary_read(const std::string& text) = 0;
  bool m_reading = false;

private:
  std::string m_text;
};

// The summary alone; stops the read once it is in (bin/ and packages/ come before it, the
// layout after).
class SummaryOnly : public SummarySink {
public:
  std::optional<std::string> text;

protected:
  Status summary_read(const std::string& summary) override {
    text = summary;
    return std::unexpected(Error(ErrorKind::interrupted, "the summary is read"));
  }
};

// Sends the blobs of `todo` into the tar as they are read.
class BlobSink : public SummarySink {
public:
  BlobSink(TarStream& tar, std::vector<Wanted>& todo, std::string arch)
      : m_tar(tar), m_todo(todo), m_arch(std::move(arch)) {}

  Status begin_file(const IndexEntry& entry) override {
    m_sending = false;
    if (!entry.path.starts_with(k_blob_prefix)) {
      return SummarySink::begin_file(entry);
    }
    m_reading = false;
    if (!m_ready) {
      return fail_verification("{} comes before {}: not a bundle this installer can stream images from", entry.path,
                               k_images_summary);
    }
    auto hex = entry.path.substr(k_blob_prefix.size());
    if (!m_needed.contains(hex) || m_sent.contains(hex)) {
      return {};
    }
    m_sending = true;
    m_current = hex;
    m_sent.insert(hex);
    m_bytes += entry.size;
    return m_tar.begin("blobs/sha256/" + hex, entry.size);
  }
  Status file_data(std::span<const std::byte> bytes) override {
    if (!m_sending) {
      return SummarySink::file_data(bytes);
    }
    m_hash.update(bytes);
    return m_tar.data(bytes);
  }
  // A blob is named by its digest: one whose bytes say otherwise was changed after the
  // build (and SHA256SUMS with it), and goes no further than this.
  Status end_file() override {
    if (!m_sending) {
      return SummarySink::end_file();
    }
    m_sending = false;
    if (auto digest = to_hex(m_hash.finish()); digest != m_current) {
      return fail_verification("{}{} holds content with digest sha256:{}: the bundle was altered after it was built",
                               k_blob_prefix, m_current, digest);
    }
    return {};
  }

  bool ready() const { return m_ready; }
  const std::set<std::string>& needed() const { return m_needed; }
  const std::set<std::string>& sent() const { return m_sent; }
  std::uint64_t bytes() const { return m_bytes; }

protected:
  Status summary_read(const std::string& text) override {
    if (m_todo.front().blobs.empty()) {
      if (auto status = fill_from_summary(text, m_arch, m_todo); !status) {
        return status;
      }
    }
    for (const auto& image : m_todo) {
      m_needed.insert(image.blobs.begin(), image.blobs.end());
    }
    m_ready = true;
    return {};
  }

private:
  TarStream& m_tar;
  std::vector<Wanted>& m_todo;
  std::string m_arch;
  std::set<std::string> m_needed;
  std::set<std::string> m_sent;
  Sha256 m_hash;
  std::string m_current;
  bool m_ready = false;
  bool m_sending = false;
  std::uint64_t m_bytes = 0;
};

Result<std::string> read_summary(const fs::path& bundle) {
  auto reader = BundleReader::open(bundle, nullptr, "images", PayloadCheck::members_only);
  if (!reader) {
    return std::unexpected(reader.error());
  }
  if (auto header = (*reader)->read_header(); !header) {
    return std::unexpected(header.error());
  }
  SummaryOnly sink;
  auto status = (*reader)->read_members(sink);
  if (sink.text) {
    return *sink.text;
  }
  if (!status) {
    return std::unexpected(status.error());
  }
  return fail_verification("the bundle lists images but carries no {}", k_images_summary);
}

struct Plan {
  Runtime runtime;
  std::string arch;
  std::vector<Wanted> images;   // for this arch
  std::vector<Wanted> todo;     // not in the runtime at their digests
  std::set<std::string> absent; // of those, the references the runtime has no image under
  std::vector<std::string> not_for_arch;
  std::uint64_t todo_bytes = 0;
};

// The images the bundle lacks for this arch (--images-policy=warn), said on every report.
std::string not_for_arch_line(const Plan& plan) {
  if (plan.not_for_arch.empty()) {
    return {};
  }
  return fmt::format("the bundle carries {} images not for {} (built with --images-policy=warn): {}\n",
                     plan.not_for_arch.size(), plan.arch, fmt::join(plan.not_for_arch, ", "));
}

std::string text_report(const Plan& plan, std::string_view outcome, std::uint64_t sent) {
  if (plan.todo.empty()) {
    return fmt::format("nothing to import: all {} images for {} are in {} at their locked digests; nothing changed\n",
                       plan.images.size(), plan.arch, plan.runtime.label()) +
           not_for_arch_line(plan);
  }
  std::string out;
  if (outcome == "dry-run") {
    out += fmt::format("would import {} of {} images for {} ({}) into {}:\n", plan.todo.size(), plan.images.size(),
                       plan.arch, human_bytes(plan.todo_bytes), plan.runtime.label());
    for (const auto& image : plan.todo) {
      out += fmt::format("  {} {}\n", image.ref, image.digest);
    }
    return out + not_for_arch_line(plan);
  }
  out += fmt::format("imported {} images ({} of blobs) into {}; all {} images for {} are there at their locked "
                     "digests\n",
                     plan.todo.size(), human_bytes(sent), plan.runtime.label(), plan.images.size(), plan.arch);
  return out + not_for_arch_line(plan);
}

std::string json_report(const Plan& plan, std::string_view outcome) {
  nlohmann::json images = nlohmann::json::array();
  std::set<std::string> todo;
  for (const auto& image : plan.todo) {
    todo.insert(image.ref);
  }
  for (const auto& image : plan.images) {
    images.push_back(
        {{"ref", image.ref}, {"digest", image.digest}, {"action", todo.contains(image.ref) ? "import" : "present"}});
  }
  nlohmann::json out = {{"outcome", plan.todo.empty() ? "nothing-to-do" : std::string(outcome)},
                        {"runtime", plan.runtime.name},
                        {"address", plan.runtime.address},
                        {"arch", plan.arch},
                        {"images", images},
                        {"not_for_arch", plan.not_for_arch}};
  return out.dump(2) + "\n";
}

// Reads the bundle into the tar: the blobs as they are verified, then the files that name
// the images.
Status stream_images(const ImagesRequest& request, const Plan& plan, TarStream& tar, BlobSink& sink) {
  auto reader = BundleReader::open(request.bundle, request.progress, "images", PayloadCheck::members_only);
  if (!reader) {
    return std::unexpected(reader.error());
  }
  if (auto header = (*reader)->read_header(); !header) {
    return std::unexpected(header.error());
  }
  if (auto status = (*reader)->read_members(sink); !status) {
    return status;
  }
  if (!sink.ready()) {
    return fail_verification("the bundle lists images but carries no {}", k_images_summary);
  }
  if (sink.sent().size() != sink.needed().size()) {
    std::vector<std::string> lacking;
    for (const auto& hex : sink.needed()) {
      if (!sink.sent().contains(hex)) {
        lacking.push_back("sha256:" + hex);
      }
    }
    return fail_verification("the bundle's image layout lacks {} blobs the images need: {}", lacking.size(),
                             fmt::join(lacking, ", "));
  }
  auto [index, manifest] = layout_files(plan.todo);
  const std::pair<std::string, std::string> files[] = {
      {"oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}"}, {"manifest.json", manifest}, {"index.json", index}};
  for (const auto& [path, text] : files) {
    if (auto status = tar.text(path, text); !status) {
      return status;
    }
  }
  return tar.close();
}

// containerd's content store, as digests.
Result<std::set<std::string>> content_digests(const Runtime& runtime) {
  auto listed = run_captured(runtime_command(runtime, {"content", "list", "--quiet"}));
  if (!listed || listed->exit_code != 0) {
    return fail("listing containerd's content: {}", listed ? first_line(listed->errors) : listed.error().message());
  }
  std::set<std::string> out;
  std::string_view rest(listed->output);
  while (!rest.empty()) {
    auto line = rest.substr(0, rest.find('\n'));
    rest.remove_prefix(std::min(rest.size(), line.size() + 1));
    if (!line.empty()) {
      out.emplace(line);
    }
  }
  return out;
}

// After a failed import: containerd keeps every blob it was sent, named or not. The ones
// this run added go again, so that the host is as it was.
void remove_added_content(const Runtime& runtime, const std::set<std::string>& before,
                          const std::set<std::string>& sent) {
  std::vector<std::string> args{"content", "rm"};
  for (const auto& hex : sent) {
    if (!before.contains("sha256:" + hex)) {
      args.push_back("sha256:" + hex);
    }
  }
  if (args.size() > 2) {
    (void)run_captured(runtime_command(runtime, args));
  }
}

Status import_images(const ImagesRequest& request, Plan& plan, std::uint64_t& sent) {
  bool containerd = plan.runtime.name == "containerd";
  std::set<std::string> before;
  if (containerd) {
    auto content = content_digests(plan.runtime);
    if (!content) {
      return std::unexpected(content.error());
    }
    before = std::move(*content);
  }
  auto args = containerd ? runtime_command(plan.runtime, {"images", "import", "-"})
                         : runtime_command(plan.runtime, {"load", "--quiet"});
  auto child = PipedChild::start(args, ChildOutput::to_stderr);
  if (!child) {
    return std::unexpected(child.error());
  }
  std::optional<PipedChild> importer(std::move(*child));
  TarStream tar(importer->input());
  BlobSink sink(tar, plan.todo, plan.arch);
  auto streamed = stream_images(request, plan, tar, sink);
  if (!streamed) {
    importer.reset(); // killed before it saw an index.json: it names nothing
    if (containerd) {
      remove_added_content(plan.runtime, before, sink.sent());
    }
    return streamed;
  }
  auto finished = importer->finish();
  if (!finished) {
    return std::unexpected(finished.error());
  }
  if (finished->exit_code != 0) {
    if (containerd) {
      // It may have named some images before it failed: those this run made go again.
      std::vector<std::string> made{"images", "rm"};
      made.insert(made.end(), plan.absent.begin(), plan.absent.end());
      if (made.size() > 2) {
        (void)run_captured(runtime_command(plan.runtime, made));
      }
      remove_added_content(plan.runtime, before, sink.sent());
    }
    return fail("{} exited with {} (its messages are above)", command_line(args), finished->exit_code);
  }
  sent = sink.bytes();
  return {};
}

Status check_present(const Plan& plan) {
  auto present = runtime_images(plan.runtime, plan.images);
  if (!present) {
    return std::unexpected(present.error());
  }
  std::vector<std::string> wrong;
  for (const auto& image : plan.images) {
    auto found = present->find(image.ref);
    auto want = expected_digest(plan.runtime, image);
    if (found == present->end() || !at_locked_digest(plan.runtime, image, found->second)) {
      wrong.push_back(fmt::format("{} (wanted {}, {} has {})", image.ref, want, plan.runtime.name,
                                  found == present->end() ? "none" : found->second));
    }
  }
  if (!wrong.empty()) {
    return fail_verification("after importing, {} images are not at their locked digests: {}", wrong.size(),
                             fmt::join(wrong, "; "));
  }
  return {};
}

Result<Plan> make_plan(const ImagesRequest& request) {
  auto header = read_bundle_header(request.bundle);
  if (!header) {
    return add_context(header.error(), request.bundle.string());
  }
  if (header->info.images.empty()) {
    return std::unexpected(
        Error(ErrorKind::not_found, fmt::format("bundle {} {} carries no container images: build it from a manifest "
                                                "with a cluster: section (or images:)",
                                                header->info.name, header->info.version)));
  }
  auto host = detect_host(request.root);
  if (!host) {
    return std::unexpected(host.error());
  }
  Plan plan;
  plan.arch = host->arch;
  plan.runtime.name = request.runtime;
  plan.runtime.ns = request.ns;
  plan.runtime.address = !request.address.empty()          ? request.address
                         : request.runtime == "containerd" ? (request.root / "run/containerd/containerd.sock").string()
                                                           : (request.root / "run/docker.sock").string();
  for (const auto& image : header->info.images) {
    if (auto digest = image.manifests.find(plan.arch); digest != image.manifests.end()) {
      Wanted wanted;
      wanted.ref = image.ref;
      wanted.upstream = image.digest;
      wanted.digest = digest->second;
      plan.images.push_back(std::move(wanted));
    } else {
      plan.not_for_arch.push_back(image.ref);
    }
  }
  if (plan.images.empty()) {
    return std::unexpected(Error(ErrorKind::not_found, fmt::format("the bundle carries no images for {} (this host's "
                                                                   "arch): build it with arches: [{}]",
                                                                   plan.arch, plan.arch)));
  }
  if (plan.runtime.name == "docker") {
    // docker knows an image by its config's digest, which only images.json says.
    auto summary = read_summary(request.bundle);
    if (!summary) {
      return std::unexpected(summary.error());
    }
    if (auto status = fill_from_summary(*summary, plan.arch, plan.images); !status) {
      return std::unexpected(status.error());
    }
  }
  auto present = runtime_images(plan.runtime, plan.images);
  if (!present) {
    return std::unexpected(present.error());
  }
  for (const auto& image : plan.images) {
    auto found = present->find(image.ref);
    if (found == present->end() || !at_locked_digest(plan.runtime, image, found->second)) {
      if (found == present->end()) {
        plan.absent.insert(image.ref);
      }
      plan.todo.push_back(image);
    }
  }
  return plan;
}

} // namespace

Result<std::string> install_images(const ImagesRequest& request) {
  auto plan = make_plan(request);
  if (!plan) {
    return add_context(plan.error(), "install images");
  }
  if (request.dry_run && !plan->todo.empty()) {
    // What a dry run would send: images.json says.
    if (plan->todo.front().blobs.empty()) {
      auto summary = read_summary(request.bundle);
      if (!summary) {
        return std::unexpected(summary.error());
      }
      if (auto status = fill_from_summary(*summary, plan->arch, plan->todo); !status) {
        return std::unexpected(status.error());
      }
    }
    // Each blob once, as the import sends it: images share their base layers.
    std::map<std::string, std::uint64_t> unique;
    for (const auto& image : plan->todo) {
      for (std::size_t i = 0; i < image.blobs.size(); ++i) {
        unique[image.blobs[i]] = image.blob_sizes[i];
      }
    }
    plan->todo_bytes = 0;
    for (const auto& [_, size] : unique) {
      plan->todo_bytes += size;
    }
  }
  if (plan->todo.empty() || request.dry_run) {
    auto outcome = request.dry_run ? "dry-run" : "nothing-to-do";
    return request.json ? json_report(*plan, outcome) : text_report(*plan, outcome, 0);
  }
  std::uint64_t sent = 0;
  if (auto status = import_images(request, *plan, sent); !status) {
    return add_context(status.error(), fmt::format("importing {} images into {} (nothing is named until all are in; "
                                                   "run the same command again)",
                                                   plan->todo.size(), plan->runtime.label()));
  }
  if (auto status = check_present(*plan); !status) {
    return std::unexpected(status.error());
  }
  return request.json ? json_report(*plan, "imported") : text_report(*plan, "imported", sent);
}

} // namespace kubexm
