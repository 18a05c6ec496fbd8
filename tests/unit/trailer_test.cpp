#include "bundle/trailer.hpp"
#include "tests/unit/test_util.hpp"

#include <cstring>
#include <fcntl.h>
#include <gtest/gtest.h>

namespace kubexm {
namespace {

Trailer sample(std::uint64_t offset, std::uint64_t length) {
  Trailer trailer;
  trailer.payload_offset = offset;
  trailer.payload_length = length;
  trailer.payload_sha256 = sha256_of("payload");
  trailer.bundle_digest = sha256_of("sums");
  return trailer;
}

TEST(Trailer, RoundTrips) {
  auto bytes = encode_trailer(sample(1000, 500));
  EXPECT_EQ(std::memcmp(bytes.data(), "KXMDIST\x01", 8), 0);
  auto decoded = decode_trailer(bytes, 1000 + 500 + k_trailer_size);
  ASSERT_TRUE(decoded && *decoded);
  EXPECT_EQ((*decoded)->payload_offset, 1000u);
  EXPECT_EQ((*decoded)->payload_length, 500u);
  EXPECT_EQ((*decoded)->payload_sha256, sha256_of("payload"));
  EXPECT_EQ((*decoded)->bundle_digest, sha256_of("sums"));
}

TEST(Trailer, NoMagicMeansNoTrailer) {
  std::array<std::byte, k_trailer_size> zeros{};
  auto decoded = decode_trailer(zeros, 4096);
  ASSERT_TRUE(decoded);
  EXPECT_FALSE(decoded->has_value());
}

TEST(Trailer, LyingLengthsAreRejected) {
  auto bytes = encode_trailer(sample(1000, 500));
  for (std::uint64_t size : {std::uint64_t{1627}, std::uint64_t{1629}, std::uint64_t{100}, std::uint64_t{0}}) {
    auto decoded = decode_trailer(bytes, size);
    ASSERT_FALSE(decoded) << size;
    EXPECT_EQ(decoded.error().kind(), ErrorKind::verification);
  }
}

TEST(Trailer, CorruptFieldsFailTheCheck) {
  auto bytes = encode_trailer(sample(1000, 500));
  bytes[20] ^= std::byte{1};
  auto decoded = decode_trailer(bytes, 1628);
  ASSERT_FALSE(decoded);
  EXPECT_NE(decoded.error().message().find("corrupt"), std::string::npos);
}

class BundleFileTest : public ::testing::Test {
protected:
  test::TempDir dir;
};

TEST_F(BundleFileTest, ShortAndForeignFilesAreExplained) {
  test::write_file(dir / "short", "ab");
  auto opened = open_bundle_file(dir / "short");
  ASSERT_FALSE(opened);
  EXPECT_NE(opened.error().message().find("not a kubexm-dist archive"), std::string::npos);

  test::write_file(dir / "text", std::string(500, 'x'));
  EXPECT_FALSE(open_bundle_file(dir / "text"));
}

TEST_F(BundleFileTest, AnElfWithoutPayloadSaysNoBundleAttached) {
  auto self = std::filesystem::read_symlink("/proc/self/exe");
  auto opened = open_bundle_file(self);
  ASSERT_FALSE(opened);
  EXPECT_NE(opened.error().message().find("this install has no bundle attached"), std::string::npos)
      << opened.error().message();
}

TEST_F(BundleFileTest, ElfEndIsTheFileSizeOfAnExecutable) {
  auto self = std::filesystem::read_symlink("/proc/self/exe");
  auto fd = open_read(self);
  ASSERT_TRUE(fd);
  auto end = elf_image_end(fd->get());
  ASSERT_TRUE(end);
  EXPECT_EQ(*end, std::filesystem::file_size(self));
  EXPECT_TRUE(elf_machine(fd->get()).has_value());
}

} // namespace
} // namespace kubexm
