#include "builder/fetch/fetch.hpp"

#include "builder/fetch/transfer_display.hpp"
#include "bundle/fs.hpp"
#include "bundle/interrupt.hpp"
#include "bundle/log.hpp"
#include "bundle/sha256.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <curl/curl.h>
#include <fcntl.h>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace kubexm {

namespace fs = std::filesystem;

// --- checksum files ------------------------------------------------------------------------

namespace {

std::string_view trim(std::string_view text) {
  auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) {
    return {};
  }
  return text.substr(begin, text.find_last_not_of(" \t\r\n") - begin + 1);
}

std::optional<std::string> hex_digest(std::string_view word) {
  auto digest = digest_from_hex(word);
  return digest ? std::optional(to_hex(*digest)) : std::nullopt;
}

std::string_view base_name(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

} // namespace

Result<std::string> digest_from_checksum_file(std::string_view text, ChecksumFormat format,
                                              std::string_view file_name) {
  if (format == ChecksumFormat::bare) {
    // The whole file is the digest; some upstreams add "  NAME" after it, which must then
    // name this file.
    auto content = trim(text);
    auto word = content.substr(0, content.find_first_of(" \t"));
    auto name = trim(content.substr(word.size()));
    if (!name.empty() && name.front() == '*') {
      name.remove_prefix(1);
    }
    auto digest = hex_digest(word);
    if (!digest || content.find('\n') != std::string_view::npos || (!name.empty() && base_name(name) != file_name)) {
      return fail("expected only the SHA-256 of {}, found '{}'", file_name, content.substr(0, 80));
    }
    return *digest;
  }
  std::vector<std::string> names;
  for (std::size_t begin = 0; begin < text.size();) {
    auto end = text.find('\n', begin);
    auto line = trim(text.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin));
    begin = end == std::string_view::npos ? text.size() : end + 1;
    auto space = line.find_first_of(" \t");
    if (line.empty() || space == std::string_view::npos) {
      continue;
    }
    auto name = trim(line.substr(space));
    if (!name.empty() && name.front() == '*') {
      name.remove_prefix(1); // "HEX *NAME": sha256sum's binary mode
    }
    if (base_name(name) == file_name) {
      if (auto digest = hex_digest(line.substr(0, space))) {
        return *digest;
      }
      return fail("the line for {} has no SHA-256: '{}'", file_name, line.substr(0, 100));
    }
    names.emplace_back(name);
  }
  if (names.empty()) {
    return fail("no \"HEX  NAME\" lines in it");
  }
  return fail("it does not list {} (it lists {}{})", file_name,
              fmt::join(names.begin(),
                        names.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(names.size(), 6)), ", "),
              names.size() > 6 ? ", ..." : "");
}

// --- mirrors -------------------------------------------------------------------------------

Result<Mirror> parse_mirror(std::string_view text) {
  static const std::regex url("(https?)://[^/\\s]+(/\\S*)?");
  auto equals = text.find('=');
  if (equals == std::string_view::npos) {
    return std::unexpected(Error(ErrorKind::usage, fmt::format("--mirror '{}': expected FROM=TO, e.g. "
                                                               "https://dl.k8s.io=https://mirror.site/dl.k8s.io",
                                                               text)));
  }
  Mirror mirror{std::string(text.substr(0, equals)), std::string(text.substr(equals + 1))};
  for (const auto* part : {&mirror.from, &mirror.to}) {
    if (!std::regex_match(*part, url)) {
      return std::unexpected(
          Error(ErrorKind::usage, fmt::format("--mirror '{}': '{}' is not an http:// or https:// URL", text, *part)));
    }
  }
  return mirror;
}

// Whether `url` is under `prefix` on a path boundary: https://github.com covers
// https://github.com/x but not https://github.com.example/x.
bool under(std::string_view url, std::string_view prefix) {
  return url.starts_with(prefix) && (url.size() == prefix.size() || prefix.ends_with('/') || url[prefix.size()] == '/');
}

std::string apply_mirrors(const std::vector<Mirror>& mirrors, const std::string& url) {
  const Mirror* best = nullptr;
  for (const auto& mirror : mirrors) {
    if (under(url, mirror.from) && (best == nullptr || mirror.from.size() > best->from.size())) {
      best = &mirror;
    }
  }
  return best == nullptr ? url : best->to + url.substr(best->from.size());
}

// --- cache ---------------------------------------------------------------------------------

fs::path Cache::object(std::string_view hex) const {
  return m_root / "sha256" / std::string(hex.substr(0, 2)) / std::string(hex);
}

fs::path Cache::partial(std::string_view key) const {
  return m_root / "partial" / fmt::format("{}.part", key);
}

std::optional<std::uint64_t> Cache::has(std::string_view hex, std::optional<std::uint64_t> size) const {
  struct stat st {};
  if (::stat(object(hex).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return std::nullopt;
  }
  auto found = static_cast<std::uint64_t>(st.st_size);
  if (size && found != *size) {
    return std::nullopt;
  }
  return found;
}

Status Cache::prepare() const {
  std::error_code ec;
  fs::create_directories(m_root / "partial", ec);
  fs::create_directories(m_root / "sha256", ec);
  if (ec) {
    return fail("cannot create the download cache {}: {}", m_root.string(), ec.message());
  }
  return {};
}

Status Cache::adopt(const fs::path& partial, std::string_view hex) const {
  auto target = object(hex);
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (ec || ::rename(partial.c_str(), target.c_str()) != 0) {
    return fail("cannot move {} into the cache at {}: {}", partial.string(), target.string(),
                ec ? ec.message() : errno_text(errno));
  }
  return {};
}

fs::path default_cache_dir() {
  if (const char* dir = std::getenv("KUBEXM_CACHE"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  if (const char* dir = std::getenv("XDG_CACHE_HOME"); dir != nullptr && *dir != '\0') {
    return fs::path(dir) / "kubexm";
  }
  const char* home = std::getenv("HOME");
  return fs::path(home != nullptr && *home != '\0' ? home : "/tmp") / ".cache" / "kubexm";
}

// --- transfers -----------------------------------------------------------------------------

namespace {

struct CurlHandle {
  CURL* curl = curl_easy_init();
  ~CurlHandle() { curl_easy_cleanup(curl); }
  CurlHandle() = default;
  CurlHandle(const CurlHandle&) = delete;
  CurlHandle& operator=(const CurlHandle&) = delete;
};

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Where the bytes of one attempt go.
class Sink {
public:
  virtual ~Sink() = default;
  // Bytes the server sent; false stops the transfer, with error() saying why.
  virtual bool write(std::span<const std::byte> bytes) = 0;
  // The server ignored the Range request and is sending the whole file again.
  virtual bool restart() = 0;
  const std::string& error() const { return m_error; }

protected:
  bool failed(std::string error) {
    m_error = std::move(error);
    return false;
  }

private:
  std::string m_error;
};

struct Attempt {
  Sink* sink = nullptr;
  CURL* curl = nullptr;
  std::uint64_t offset = 0; // bytes already held before this attempt
  bool checked_status = false;
  bool failed_write = false;
  std::optional<std::uint64_t> range_start; // from a 206 answer's Content-Range
  TransferDisplay* display = nullptr;
  std::size_t slot = 0;
  std::string if_none_match;     // validators sent with a conditional request
  std::string if_modified_since;
  std::string etag;              // validators the answer carried
  std::string last_modified;
};

std::size_t on_write(char* data, std::size_t size, std::size_t count, void* user) {
  auto* attempt = static_cast<Attempt*>(user);
  long code = 0;
  curl_easy_getinfo(attempt->curl, CURLINFO_RESPONSE_CODE, &code);
  if (code >= 300) {
    return size * count; // an error page: discarded, the status decides
  }
  if (!attempt->checked_status) {
    attempt->checked_status = true;
    // A server that ignores Range answers 200 with the whole file: start it over. One that
    // answers with another range than asked for cannot be trusted to continue the file.
    if (attempt->offset > 0 && code == 200) {
      attempt->offset = 0;
      if (!attempt->sink->restart()) {
        attempt->failed_write = true;
        return 0;
      }
    } else if (code == 206 && attempt->range_start != attempt->offset) {
      attempt->failed_write = true;
      attempt->sink->restart();
      return 0;
    }
  }
  if (!attempt->sink->write(std::as_bytes(std::span(data, size * count)))) {
    attempt->failed_write = true;
    return 0;
  }
  return size * count;
}

// The value of header line `line` when it is `name` (lower case, with ": "), trimmed.
std::optional<std::string_view> header_value(std::string_view line, std::string_view name) {
  if (line.size() <= name.size() || !std::ranges::equal(line.substr(0, name.size()), name, [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == b;
      })) {
    return std::nullopt;
  }
  auto value = line.substr(name.size());
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
    value.remove_suffix(1);
  }
  return value;
}

// Notes where a 206 answer's range starts ("Content-Range: bytes 100-999/1000"), and the
// answer's validators.
std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* attempt = static_cast<Attempt*>(user);
  std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) { // a redirect's headers are not the answer's
    attempt->etag.clear();
    attempt->last_modified.clear();
  }
  if (auto etag = header_value(line, "etag: ")) {
    attempt->etag = *etag;
  }
  if (auto modified = header_value(line, "last-modified: ")) {
    attempt->last_modified = *modified;
  }
  constexpr std::string_view prefix = "content-range: bytes ";
  if (line.size() > prefix.size() && std::ranges::equal(line.substr(0, prefix.size()), prefix, [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == b;
      })) {
    std::uint64_t start = 0;
    auto digits = line.substr(prefix.size());
    if (auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), start); ec == std::errc()) {
      attempt->range_start = start;
    }
  }
  return size * count;
}

int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
  auto* attempt = static_cast<Attempt*>(user);
  if (interrupt_requested()) {
    return 1;
  }
  if (attempt->display != nullptr) {
    auto offset = attempt->offset;
    attempt->display->progress(attempt->slot, offset + static_cast<std::uint64_t>(now),
                               total > 0 ? offset + static_cast<std::uint64_t>(total) : 0);
  }
  return 0;
}

// Whether a failed attempt is worth repeating: the network or the server may recover.
bool transient(CURLcode rc, long code) {
  if (rc == CURLE_OK || rc == CURLE_HTTP_RETURNED_ERROR) {
    return code == 408 || code == 429 || code >= 500;
  }
  switch (rc) {
  case CURLE_COULDNT_CONNECT:
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_PARTIAL_FILE:
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_OPERATION_TIMEDOUT:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
    return true;
  default:
    return false;
  }
}

std::string describe_failure(CURLcode rc, long code, const char* detail) {
  if (rc == CURLE_OK || rc == CURLE_HTTP_RETURNED_ERROR) {
    const char* meaning = code == 404 ? " Not Found" : code == 403 ? " Forbidden" : code == 401 ? " Unauthorized" : "";
    return fmt::format("HTTP {}{}", code, meaning);
  }
  std::string text = *detail != '\0' ? detail : curl_easy_strerror(rc);
  if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE) {
    text += " (TLS verification is always on: give the mirror a certificate the system trusts, or name its CA "
            "with --cacert)";
  }
  return text;
}

struct Outcome {
  CURLcode rc = CURLE_OK;
  long code = 0;
  std::string error; // empty on success
  bool retry = false;
  bool interrupted = false;
};

Outcome perform(CURL* curl, const std::string& url, const FetchOptions& options, Attempt& attempt) {
  char detail[CURL_ERROR_SIZE] = {};
  curl_easy_reset(curl);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  // A redirect never downgrades https to http; an http:// mirror is the user's own choice.
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, url.starts_with("https://") ? "https" : "http,https");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
  // A stalled transfer (under 1 KiB/s for 60 s) is cut and retried rather than hanging.
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "kubexm-builder/" KUBEXM_VERSION);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, detail);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &attempt);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &attempt);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &attempt);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  if (!options.ca_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, options.ca_file.c_str());
  }
  // CURLOPT_RANGE rather than RESUME_FROM: libcurl then hands a 200 answer (Range ignored)
  // to on_write, which starts the file over, instead of failing the transfer for good.
  auto range = fmt::format("{}-", attempt.offset);
  if (attempt.offset > 0) {
    curl_easy_setopt(curl, CURLOPT_RANGE, range.c_str());
  }
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(nullptr, curl_slist_free_all);
  for (const auto& [name, value] : {std::pair{"If-None-Match", &attempt.if_none_match},
                                    std::pair{"If-Modified-Since", &attempt.if_modified_since}}) {
    if (!value->empty()) {
      headers.reset(curl_slist_append(headers.release(), fmt::format("{}: {}", name, *value).c_str()));
    }
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  attempt.curl = curl;
  Outcome outcome;
  outcome.rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &outcome.code);
  bool conditional = !attempt.if_none_match.empty() || !attempt.if_modified_since.empty();
  bool http_ok = outcome.code == 200 || outcome.code == 206 || (conditional && outcome.code == 304);
  if (outcome.rc == CURLE_OK && http_ok) {
    return outcome;
  }
  if (outcome.rc == CURLE_ABORTED_BY_CALLBACK) {
    outcome.error = "interrupted";
    outcome.interrupted = true;
    return outcome;
  }
  if (attempt.failed_write) {
    if (!attempt.sink->error().empty()) {
      outcome.error = attempt.sink->error();
    } else {
      // The server answered with another range than asked for; the file starts over.
      outcome.error = fmt::format("the server answered a request for bytes {}- with bytes {}-", attempt.offset,
                                  attempt.range_start.value_or(0));
      outcome.retry = true;
    }
    return outcome;
  }
  outcome.error = describe_failure(outcome.rc, outcome.code, detail);
  outcome.retry = transient(outcome.rc, outcome.code);
  return outcome;
}

// A file the server does not have is not_found, so that a caller can try another name.
ErrorKind kind_of(const Outcome& outcome) {
  bool http = outcome.rc == CURLE_OK || outcome.rc == CURLE_HTTP_RETURNED_ERROR;
  return http && (outcome.code == 404 || outcome.code == 410) ? ErrorKind::not_found : ErrorKind::failure;
}

// Sleeps for the backoff of `attempt` (0-based), waking early for an interrupt.
bool back_off(const FetchOptions& options, unsigned attempt) {
  auto seconds = std::min(8.0, options.first_backoff * static_cast<double>(1u << std::min(attempt, 10u)));
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (interrupt_requested()) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// A partial file in the cache, hashed as it grows so a finished download needs no re-read.
class FileSink final : public Sink {
public:
  static Result<std::unique_ptr<FileSink>> open(const fs::path& path, std::optional<std::uint64_t> limit,
                                                std::string_view label, TransferDisplay& display) {
    auto fd = open_locked(path, label, display);
    if (!fd) {
      return std::unexpected(fd.error());
    }
    auto sink = std::unique_ptr<FileSink>(new FileSink(path, std::move(*fd)));
    sink->m_limit = limit;
    // What an earlier attempt or run left is hashed first; the transfer goes on from there.
    if (auto status = read_chunks(sink->m_fd.get(),
                                  [&](std::span<const std::byte> bytes) {
                                    sink->m_hash.update(bytes);
                                    sink->m_size += bytes.size();
                                  });
        !status) {
      return std::unexpected(status.error());
    }
    return sink;
  }
  bool write(std::span<const std::byte> bytes) override {
    if (m_limit && m_size + bytes.size() > *m_limit) {
      return failed(fmt::format("the server sent more than the {} bytes expected", *m_limit));
    }
    if (auto status = write_all(m_fd.get(), bytes); !status) {
      return failed(fmt::format("cannot write {}: {}", m_path.string(), status.error().message()));
    }
    m_hash.update(bytes);
    m_size += bytes.size();
    return true;
  }
  bool restart() override {
    m_hash = Sha256();
    m_size = 0;
    return ::ftruncate(m_fd.get(), 0) == 0 && ::lseek(m_fd.get(), 0, SEEK_SET) == 0;
  }
  std::uint64_t size() const { return m_size; }
  std::string finish() { return to_hex(m_hash.finish()); }
  Status sync() {
    if (::fsync(m_fd.get()) != 0) {
      return fail("cannot write {}: {}", m_path.string(), errno_text(errno));
    }
    return {};
  }

  // Gives up the partial file (another download of the same content finished first).
  void discard() { ::unlink(m_path.c_str()); }

private:
  FileSink(fs::path path, UniqueFd fd) : m_path(std::move(path)), m_fd(std::move(fd)) {}

  // Opens the partial file with an exclusive lock, so that two downloads of the same
  // content (two threads, or two builders sharing a cache) never write it at once. The
  // holder may rename it into the cache while we wait: then the locked inode is no longer
  // at `path`, and we start over with the file now there.
  static Result<UniqueFd> open_locked(const fs::path& path, std::string_view label, TransferDisplay& display) {
    bool told = false;
    for (;;) {
      UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
      if (!fd) {
        return fail("cannot open {}: {}", path.string(), errno_text(errno));
      }
      // Poll rather than block, so that an interrupt is noticed while we wait.
      while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
          return fail("cannot lock {}: {}", path.string(), errno_text(errno));
        }
        if (!told) {
          display.note(fmt::format("{}: waiting for another download of the same file ({})", label, path.string()));
          told = true;
        }
        if (interrupt_requested()) {
          return std::unexpected(Error(ErrorKind::interrupted, "interrupted"));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      struct stat held {};
      struct stat named {};
      if (::fstat(fd.get(), &held) == 0 && ::stat(path.c_str(), &named) == 0 && held.st_ino == named.st_ino &&
          held.st_dev == named.st_dev) {
        return fd;
      }
    }
  }
  fs::path m_path;
  UniqueFd m_fd;
  Sha256 m_hash;
  std::uint64_t m_size = 0;
  std::optional<std::uint64_t> m_limit;
};

class TextSink final : public Sink {
public:
  bool write(std::span<const std::byte> bytes) override {
    if (text.size() + bytes.size() > (4u << 20)) {
      return failed("over 4 MiB, which is not a checksum file");
    }
    text.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return true;
  }
  bool restart() override {
    text.clear();
    return true;
  }
  std::string text;
};

std::string where(const std::string& url, const std::string& upstream) {
  return url == upstream ? url : fmt::format("{} (mirror of {})", url, upstream);
}

Error mismatch(const Download& download, const std::string& url, std::string_view what, std::string_view expected,
               std::string_view actual) {
  return Error(ErrorKind::verification,
               fmt::format("{}: {}: {} mismatch: expected {}, got {}; the file was discarded, not cached",
                           download.label, where(url, download.url), what, expected, actual));
}

// Whether a cached file still has the digest it is filed under; a damaged one (a cache
// restored truncated, a disk error, a hand-made copy) is removed so it is downloaded again.
bool intact(const Cache& cache, const std::string& hex, std::string_view label, TransferDisplay& display) {
  auto path = cache.object(hex);
  auto digest = sha256_file(path);
  if (digest && to_hex(digest->digest) == hex) {
    return true;
  }
  std::error_code ec;
  fs::remove(path, ec);
  display.note(fmt::format("{}: the cached {} was damaged ({}); removed it, downloading again", label, path.string(),
                           digest ? "SHA-256 " + to_hex(digest->digest) : digest.error().message()));
  return false;
}

// What a URL last answered (a revalidated download): its validators and the cached object.
struct Answer {
  std::string etag;
  std::string last_modified;
  std::string sha256;
  std::uint64_t size = 0;
};

fs::path answer_path(const Cache& cache, const std::string& url) {
  return cache.root() / "answers" / (to_hex(sha256_of(url)) + ".json");
}

std::optional<Answer> cached_answer(const Cache& cache, const std::string& url) {
  auto text = read_text_file(answer_path(cache, url), 1 << 16);
  auto json = text ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
  if (!json.is_object() || json.value("url", "") != url) {
    return std::nullopt;
  }
  Answer answer{json.value("etag", ""), json.value("last_modified", ""), json.value("sha256", ""),
                json.value("size", std::uint64_t{0})};
  if (answer.sha256.size() != 64 || !cache.has(answer.sha256, answer.size) ||
      (answer.etag.empty() && answer.last_modified.empty())) {
    return std::nullopt;
  }
  return answer;
}

// Keeps what `url` answered for the next run's conditional request; a server that sends no
// validators is asked unconditionally.
void keep_answer(const Cache& cache, const std::string& url, const Attempt& attempt, const Downloaded& downloaded) {
  if (attempt.etag.empty() && attempt.last_modified.empty()) {
    return;
  }
  nlohmann::json json = {{"url", url},         {"etag", attempt.etag}, {"last_modified", attempt.last_modified},
                         {"sha256", downloaded.sha256}, {"size", downloaded.size}};
  std::error_code ec;
  fs::create_directories(answer_path(cache, url).parent_path(), ec);
  (void)write_file_atomic(answer_path(cache, url), json.dump() + "\n");
}

Result<Downloaded> download_one(CURL* curl, const Download& download, const Cache& cache, const FetchOptions& options,
                                TransferDisplay& display) {
  if (download.sha256) {
    if (auto size = cache.has(*download.sha256, download.size);
        size && (!options.verify_hits || intact(cache, *download.sha256, download.label, display))) {
      display.cached();
      return Downloaded{*download.sha256, *size, true};
    }
  }
  auto url = apply_mirrors(options.mirrors, download.url);
  auto key = download.sha256.value_or(to_hex(sha256_of(download.url)));
  auto partial = cache.partial(key);
  auto sink = FileSink::open(partial, download.size, download.label, display);
  if (!sink) {
    return std::unexpected(sink.error());
  }
  // Another download of the same content may have finished while we waited for the lock.
  if (auto size = download.sha256 ? cache.has(*download.sha256, download.size) : std::nullopt) {
    (*sink)->discard();
    display.cached();
    return Downloaded{*download.sha256, *size, true};
  }
  // Without an expected digest nothing could tell an old head from a changed file's tail,
  // so bytes left by an earlier run are not resumed; a retry in this run still resumes.
  if ((download.size && (*sink)->size() > *download.size) || !download.sha256) {
    (*sink)->restart();
  }
  bool from_scratch = false;
  auto earlier = download.revalidate && !download.sha256 ? cached_answer(cache, url) : std::nullopt;
  for (unsigned attempt_number = 0;; ++attempt_number) {
    Attempt attempt;
    attempt.sink = sink->get();
    attempt.offset = (*sink)->size();
    attempt.display = &display;
    attempt.slot = display.start(download.label, url);
    if (earlier) {
      attempt.if_none_match = earlier->etag;
      attempt.if_modified_since = earlier->last_modified;
    }
    auto started = std::chrono::steady_clock::now();
    // A partial that already holds every byte (a run killed before it was cached) needs no transfer.
    Outcome outcome;
    if (!(download.size && attempt.offset == *download.size)) {
      outcome = perform(curl, url, options, attempt);
    }
    if (outcome.code == 416 && attempt.offset > 0) {
      display.fail(attempt.slot);
      display.note(fmt::format("{}: the server refused to resume; starting again", download.label));
      (*sink)->restart();
      continue;
    }
    if (!outcome.error.empty()) {
      display.fail(attempt.slot);
      if (outcome.interrupted) {
        return std::unexpected(
            Error(ErrorKind::interrupted, "interrupted; the partial download is kept for the next run"));
      }
      if (outcome.retry && attempt_number + 1 < options.attempts) {
        display.note(fmt::format("{}: {} from {}; retrying ({} of {}){}", download.label, outcome.error, url,
                                 attempt_number + 2, options.attempts,
                                 (*sink)->size() > 0 ? fmt::format(" from byte {}", (*sink)->size()) : ""));
        if (!back_off(options, attempt_number)) {
          return std::unexpected(Error(ErrorKind::interrupted, "interrupted"));
        }
        continue;
      }
      return std::unexpected(
          Error(kind_of(outcome),
                fmt::format("{}: {}: {}{}", download.label, where(url, download.url), outcome.error,
                            outcome.retry ? fmt::format(" (gave up after {} attempts)", attempt_number + 1) : "")));
    }
    if (earlier && outcome.code == 304) {
      (*sink)->discard();
      display.not_modified(attempt.slot);
      return Downloaded{earlier->sha256, earlier->size, true};
    }
    auto resumed_from = attempt.offset; // 0 when the server sent the whole file
    auto size = (*sink)->size();
    auto digest = (*sink)->finish();
    auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    bool size_wrong = download.size && size != *download.size;
    bool digest_wrong = download.sha256 && digest != *download.sha256;
    if (size_wrong || digest_wrong) {
      display.fail(attempt.slot);
      // Bytes kept from an earlier attempt may be what is wrong: one fresh try settles it.
      if (resumed_from > 0 && !from_scratch) {
        from_scratch = true;
        (*sink)->restart();
        display.note(fmt::format("{}: the resumed file did not verify; downloading it again whole", download.label));
        continue;
      }
      (*sink)->discard();
      if (digest_wrong) {
        return std::unexpected(mismatch(download, url, "SHA-256", *download.sha256, digest));
      }
      return std::unexpected(mismatch(download, url, "size", std::to_string(*download.size), std::to_string(size)));
    }
    if (auto status = (*sink)->sync(); !status) {
      return std::unexpected(status.error());
    }
    if (auto status = cache.adopt(partial, digest); !status) {
      return std::unexpected(status.error());
    }
    display.finish(attempt.slot, size, seconds, resumed_from);
    Downloaded downloaded{digest, size, false};
    if (download.revalidate) {
      keep_answer(cache, url, attempt, downloaded);
    }
    return downloaded;
  }
}

Result<std::string> fetch_text(CURL* curl, const std::string& upstream, const FetchOptions& options) {
  auto url = apply_mirrors(options.mirrors, upstream);
  for (unsigned attempt_number = 0;; ++attempt_number) {
    TextSink sink;
    Attempt attempt;
    attempt.sink = &sink;
    auto outcome = perform(curl, url, options, attempt);
    if (outcome.error.empty()) {
      return std::move(sink.text);
    }
    if (outcome.interrupted) {
      return std::unexpected(Error(ErrorKind::interrupted, "interrupted"));
    }
    if (outcome.retry && attempt_number + 1 < options.attempts) {
      if (!options.quiet) {
        log_warning(
            fmt::format("{}: {}; retrying ({} of {})", url, outcome.error, attempt_number + 2, options.attempts));
      }
      if (!back_off(options, attempt_number)) {
        return std::unexpected(Error(ErrorKind::interrupted, "interrupted"));
      }
      continue;
    }
    return std::unexpected(Error(kind_of(outcome), fmt::format("{}: {}", where(url, upstream), outcome.error)));
  }
}

// Runs `work(curl, i)` for i in [0, count) on `jobs` threads, one connection-reusing curl
// handle per thread.
template <typename Work> void run_parallel(std::size_t count, unsigned jobs, Work work) {
  global_init();
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    CurlHandle handle;
    for (auto i = next++; i < count; i = next++) {
      work(handle.curl, i);
    }
  };
  std::vector<std::jthread> threads;
  auto n = std::max(1u, std::min<unsigned>(jobs, static_cast<unsigned>(count)));
  for (unsigned t = 1; t < n; ++t) {
    threads.emplace_back(worker);
  }
  worker();
}

} // namespace

std::vector<Result<Downloaded>> fetch_all(const std::vector<Download>& downloads, const Cache& cache,
                                          const FetchOptions& options) {
  std::vector<Result<Downloaded>> results(downloads.size(), fail("not fetched"));
  if (auto status = cache.prepare(); !status) {
    std::ranges::fill(results, std::unexpected(status.error()));
    return results;
  }
  TransferDisplay display(options.terminal_progress, options.quiet, downloads.size());
  run_parallel(downloads.size(), options.jobs, [&](CURL* curl, std::size_t i) {
    results[i] = download_one(curl, downloads[i], cache, options, display);
  });
  return results;
}

std::vector<Result<std::string>> fetch_texts(const std::vector<std::string>& urls, const FetchOptions& options) {
  std::vector<Result<std::string>> results(urls.size(), fail("not fetched"));
  run_parallel(urls.size(), options.jobs,
               [&](CURL* curl, std::size_t i) { results[i] = fetch_text(curl, urls[i], options); });
  return results;
}

} // namespace kubexm
