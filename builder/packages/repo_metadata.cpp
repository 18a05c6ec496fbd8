#include "builder/packages/repo_metadata.hpp"

#include "bundle/sha256.hpp"

#include <algorithm>
#include <archive.h>
#include <archive_entry.h>
#include <charconv>
#include <memory>
#include <regex>

namespace kubexm {

namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\r')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

// Calls `line` for every line of `text`, without its newline.
template <typename F> void for_each_line(std::string_view text, F line) {
  for (std::size_t begin = 0; begin < text.size();) {
    auto end = text.find('\n', begin);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    line(text.substr(begin, end - begin));
    begin = end + 1;
  }
}

bool is_hex64(std::string_view text) {
  return text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

std::optional<std::uint64_t> to_number(std::string_view text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

// The text between `open` and `close` after `from`, or empty.
std::string_view between(std::string_view text, std::string_view open, std::string_view close, std::size_t from = 0) {
  auto start = text.find(open, from);
  if (start == std::string_view::npos) {
    return {};
  }
  start += open.size();
  auto end = text.find(close, start);
  return end == std::string_view::npos ? std::string_view() : text.substr(start, end - start);
}

// The value of attribute `name` in the first tag starting with `tag`.
std::string_view attribute(std::string_view text, std::string_view tag, std::string_view name) {
  auto at = text.find(tag);
  if (at == std::string_view::npos) {
    return {};
  }
  auto end = text.find('>', at);
  auto element = text.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
  auto key = fmt::format(" {}=\"", name);
  return between(element, key, "\"");
}

// Calls `element` for every "<package ...>...</package>" in `text`.
template <typename F> void for_each_package(std::string_view text, F element) {
  constexpr std::string_view open = "<package ";
  constexpr std::string_view close = "</package>";
  for (auto at = text.find(open); at != std::string_view::npos; at = text.find(open, at)) {
    auto end = text.find(close, at);
    if (end == std::string_view::npos) {
      return;
    }
    element(text.substr(at, end + close.size() - at));
    at = end + close.size();
  }
}

// libarchive's message, which may be null.
std::string archive_text(struct archive* archive) {
  const char* text = archive_error_string(archive);
  return text != nullptr ? text : "unknown error";
}

// An attribute or element text with its XML entities replaced (&amp; -> &, ...).
std::string xml_unescape(std::string_view text) {
  static constexpr std::pair<std::string_view, char> k_entities[] = {
      {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    auto entity = std::ranges::find_if(k_entities, [&](const auto& e) { return text.substr(i).starts_with(e.first); });
    if (text[i] == '&' && entity != std::end(k_entities)) {
      out += entity->second;
      i += entity->first.size();
    } else {
      out += text[i++];
    }
  }
  return out;
}

std::string xml_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    default:
      out += c;
    }
  }
  return out;
}

} // namespace

Result<std::map<std::string, IndexedFile>> parse_release(std::string_view text, std::string_view what) {
  std::map<std::string, IndexedFile> files;
  bool in_sha256 = false;
  bool in_signature = false;
  std::vector<std::string> bad;
  for_each_line(text, [&](std::string_view line) {
    if (line.starts_with("-----BEGIN PGP SIGNATURE")) {
      in_signature = true;
    }
    if (in_signature || line.empty()) {
      return;
    }
    if (line.front() != ' ') {
      in_sha256 = trim(line) == "SHA256:";
      return;
    }
    if (!in_sha256) {
      return;
    }
    auto fields = trim(line);
    auto first = fields.find(' ');
    auto rest = first == std::string_view::npos ? std::string_view() : trim(fields.substr(first));
    auto second = rest.find(' ');
    auto size = second == std::string_view::npos ? std::nullopt : to_number(rest.substr(0, second));
    auto path = second == std::string_view::npos ? std::string_view() : trim(rest.substr(second));
    auto hash = fields.substr(0, first);
    if (!is_hex64(hash) || !size || path.empty()) {
      bad.emplace_back(fields.substr(0, 100));
      return;
    }
    files[std::string(path)] = {std::string(path), std::string(hash), *size};
  });
  if (!bad.empty()) {
    return fail("{}: malformed SHA256 lines: {}", what, fmt::join(bad, "; "));
  }
  if (files.empty()) {
    return fail("{}: no SHA256 section: not a Release file", what);
  }
  return files;
}

Result<std::vector<RepomdEntry>> parse_repomd(std::string_view text, std::string_view what) {
  if (text.find("<repomd") == std::string_view::npos) {
    return fail("{}: not a repomd.xml (no <repomd> element)", what);
  }
  std::vector<RepomdEntry> entries;
  constexpr std::string_view open = "<data type=\"";
  for (auto at = text.find(open); at != std::string_view::npos; at = text.find(open, at + 1)) {
    auto end = text.find("</data>", at);
    if (end == std::string_view::npos) {
      return fail("{}: a <data> element is not closed", what);
    }
    auto data = text.substr(at, end - at);
    RepomdEntry entry;
    entry.type = std::string(between(data, open, "\""));
    auto checksum_type = attribute(data, "<checksum", "type");
    auto checksum = between(data, ">", "</checksum>", data.find("<checksum"));
    auto size = to_number(between(data, "<size>", "</size>"));
    entry.file.path = std::string(attribute(data, "<location", "href"));
    if (checksum_type != "sha256") {
      return fail("{}: {} has a {} checksum; only sha256 repositories are supported", what, entry.type,
                  checksum_type.empty() ? "missing" : checksum_type);
    }
    if (!is_hex64(checksum) || entry.file.path.empty()) {
      return fail("{}: the <data type=\"{}\"> element lacks a checksum or location", what, entry.type);
    }
    entry.file.sha256 = std::string(checksum);
    entry.file.size = size.value_or(0);
    entries.push_back(std::move(entry));
  }
  if (entries.empty()) {
    return fail("{}: no <data> elements", what);
  }
  return entries;
}

Result<std::string> read_maybe_compressed(const std::filesystem::path& path, std::string_view what) {
  std::unique_ptr<struct archive, decltype(&archive_read_free)> archive(archive_read_new(), archive_read_free);
  archive_read_support_filter_all(archive.get());
  archive_read_support_format_raw(archive.get());
  archive_read_support_format_empty(archive.get()); // an empty index, compressed or not
  if (archive_read_open_filename(archive.get(), path.c_str(), 1 << 20) != ARCHIVE_OK) {
    return fail("{}: cannot read {}: {}", what, path.string(), archive_text(archive.get()));
  }
  archive_entry* entry = nullptr;
  int rc = archive_read_next_header(archive.get(), &entry);
  if (rc == ARCHIVE_EOF) {
    return std::string(); // an empty index: archives publish them for empty components
  }
  if (rc != ARCHIVE_OK) {
    return fail("{}: cannot read {}: {}", what, path.string(), archive_text(archive.get()));
  }
  std::string text;
  std::vector<char> buffer(1 << 20);
  for (;;) {
    auto got = archive_read_data(archive.get(), buffer.data(), buffer.size());
    if (got < 0) {
      return fail("{}: cannot decompress {}: {}", what, path.string(), archive_text(archive.get()));
    }
    if (got == 0) {
      break;
    }
    text.append(buffer.data(), static_cast<std::size_t>(got));
  }
  return text;
}

std::vector<DebStanza> parse_packages_index(std::string_view text) {
  std::vector<DebStanza> stanzas;
  std::size_t begin = 0;
  while (begin < text.size()) {
    while (begin < text.size() && text[begin] == '\n') {
      ++begin;
    }
    auto end = text.find("\n\n", begin);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    DebStanza stanza;
    stanza.text = text.substr(begin, end - begin);
    if (!stanza.text.empty() && stanza.text.back() == '\n') {
      stanza.text.remove_suffix(1);
    }
    for_each_line(stanza.text, [&](std::string_view line) {
      auto colon = line.find(':');
      if (line.empty() || line.front() == ' ' || colon == std::string_view::npos) {
        return;
      }
      auto key = line.substr(0, colon);
      auto value = trim(line.substr(colon + 1));
      if (key == "Package") {
        stanza.name = value;
      } else if (key == "Version") {
        stanza.version = value;
      } else if (key == "Architecture") {
        stanza.arch = value;
      } else if (key == "Filename") {
        stanza.filename = value;
      } else if (key == "Size") {
        stanza.size = to_number(value).value_or(0);
      } else if (key == "Essential") {
        stanza.essential = value == "yes";
      } else if (key == "Priority") {
        stanza.required = value == "required";
      }
    });
    if (!stanza.name.empty()) {
      stanzas.push_back(stanza);
    }
    begin = end;
  }
  return stanzas;
}

std::string rewrite_stanza(const DebStanza& stanza, std::string_view filename) {
  std::string out;
  for_each_line(stanza.text, [&](std::string_view line) {
    if (line.starts_with("Filename:")) {
      out += fmt::format("Filename: {}\n", filename);
    } else {
      out.append(line).push_back('\n');
    }
  });
  return out;
}

std::vector<RpmElement> parse_primary(std::string_view text) {
  std::vector<RpmElement> elements;
  for_each_package(text, [&](std::string_view package) {
    RpmElement element;
    element.text = package;
    element.name = between(package, "<name>", "</name>");
    element.arch = between(package, "<arch>", "</arch>");
    element.location = xml_unescape(attribute(package, "<location", "href"));
    element.pkgid = between(package, ">", "</checksum>", package.find("<checksum"));
    elements.push_back(element);
  });
  return elements;
}

std::vector<RpmElement> parse_filelists(std::string_view text) {
  std::vector<RpmElement> elements;
  for_each_package(text, [&](std::string_view package) {
    RpmElement element;
    element.text = package;
    element.name = attribute(package, "<package", "name");
    element.arch = attribute(package, "<package", "arch");
    element.pkgid = attribute(package, "<package", "pkgid");
    elements.push_back(element);
  });
  return elements;
}

std::string rewrite_location(const RpmElement& element, std::string_view location) {
  auto text = element.text;
  auto at = text.find("<location");
  auto end = at == std::string_view::npos ? at : text.find("/>", at);
  if (end == std::string_view::npos) {
    return std::string(text);
  }
  return fmt::format("{}<location href=\"{}\"/>{}", text.substr(0, at), xml_escape(location), text.substr(end + 2));
}

std::vector<std::string> comps_mandatory(std::string_view comps, std::string_view group) {
  std::vector<std::string> names;
  constexpr std::string_view open = "<group>";
  for (auto at = comps.find(open); at != std::string_view::npos; at = comps.find(open, at + 1)) {
    auto end = comps.find("</group>", at);
    auto element = comps.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
    if (trim(between(element, "<id>", "</id>")) != group) {
      continue;
    }
    static const std::regex mandatory("<packagereq[^>]*type=\"mandatory\"[^>]*>([^<]+)</packagereq>");
    std::string copy(element);
    for (std::sregex_iterator it(copy.begin(), copy.end(), mandatory), last; it != last; ++it) {
      names.emplace_back(trim((*it)[1].str()));
    }
  }
  return names;
}

std::string primary_document(const std::vector<std::string>& elements) {
  return fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<metadata xmlns=\"http://linux.duke.edu/metadata/common\" "
                     "xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"{}\">\n{}</metadata>\n",
                     elements.size(), fmt::join(elements, "\n"));
}

std::string filelists_document(const std::vector<std::string>& elements) {
  return fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<filelists xmlns=\"http://linux.duke.edu/metadata/filelists\" packages=\"{}\">\n{}"
                     "</filelists>\n",
                     elements.size(), fmt::join(elements, "\n"));
}

std::string repomd_document(std::string_view primary, std::string_view filelists, std::int64_t timestamp) {
  auto data = [&](std::string_view type, std::string_view text) {
    auto digest = to_hex(sha256_of(text));
    return fmt::format("  <data type=\"{0}\">\n"
                       "    <checksum type=\"sha256\">{1}</checksum>\n"
                       "    <open-checksum type=\"sha256\">{1}</open-checksum>\n"
                       "    <location href=\"repodata/{0}.xml\"/>\n"
                       "    <timestamp>{2}</timestamp>\n"
                       "    <size>{3}</size>\n"
                       "    <open-size>{3}</open-size>\n"
                       "  </data>\n",
                       type, digest, timestamp, text.size());
  };
  return fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<repomd xmlns=\"http://linux.duke.edu/metadata/repo\" "
                     "xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n"
                     "  <revision>{}</revision>\n{}{}</repomd>\n",
                     timestamp, data("primary", primary), data("filelists", filelists));
}

std::string flat_release_document(std::string_view packages, std::string_view origin) {
  return fmt::format("Origin: {}\nLabel: {}\nSHA256:\n {} {} Packages\n", origin, origin, to_hex(sha256_of(packages)),
                     packages.size());
}

} // namespace kubexm
