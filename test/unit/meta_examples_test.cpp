// Meta's published test vectors (docs/graph-api.md section 8): each input must give
// exactly Meta's normalized value and digest.

#include <gtest/gtest.h>

#include "test_support.hpp"

namespace connector::testing {
namespace {

struct MetaExample {
  const char* key;
  const char* input;
  const char* normalized;
  const char* sha256;
};

class MetaExamples : public ::testing::TestWithParam<MetaExample> {};

TEST_P(MetaExamples, NormalizeAndHashAsMetaDoes) {
  const MetaExample& example = GetParam();
  EXPECT_EQ(normalized(example.key, example.input), example.normalized);
  EXPECT_EQ(hashed(example.key, example.input), example.sha256);
}

INSTANTIATE_TEST_SUITE_P(
    Section8, MetaExamples,
    ::testing::Values(
        MetaExample{"EMAIL", "mary@example.com", "mary@example.com",
                    "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79"},
        MetaExample{"PHONE", "15559876543", "15559876543",
                    "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e"},
        MetaExample{"EMAIL", "John_Smith@gmail.com", "john_smith@gmail.com",
                    "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"},
        MetaExample{"PHONE", "+1 (650) 555-1212", "16505551212",
                    "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"},
        MetaExample{"FN", "Mary", "mary",
                    "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"},
        MetaExample{"LN", "Mary", "mary",
                    "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"},
        MetaExample{"FN", "\xEC\xA0\x95", "\xEC\xA0\x95",
                    "8fa8cd9c440be61d0151429310034083132b35975c4bea67fdd74158eb51db14"},
        MetaExample{"FN", "Val\xC3\xA9ry", "val\xC3\xA9ry",
                    "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c"},
        // The same name decomposed (e + U+0301) must give the NFC digest.
        MetaExample{"FN", "Vale\xCC\x81ry", "val\xC3\xA9ry",
                    "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c"},
        MetaExample{"DOB", "2/16/1997", "19970216",
                    "01acdbf6ec7b4f478a225f1a246e5d6767eeab1a7ffa17f025265b5b94f40f0c"},
        MetaExample{"COUNTRY", "United States", "us",
                    "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621"},
        MetaExample{"CT", "paris", "paris",
                    "1670f2e42fefa5044d59a65349e47c566009488fc57d7b4376dd5787b59e3c57"},
        MetaExample{"CT", "London", "london",
                    "6089854c94ca5454b76be6752c562901a985f64c9a946f62976aeab593b83161"},
        MetaExample{"CT", "New York", "newyork",
                    "350c754ba4d38897693aa077ef43072a859d23f613443133fecbbd90a3512ca5"},
        MetaExample{"ST", "Arizona", "az",
                    "9c0ada37bf74aeefae949fdfc90db0cf6eaf90192eff67d65887771f0585e055"},
        MetaExample{"ST", "CA", "ca",
                    "6959097001d10501ac7d54c0bdb8db61420f658f2922cc26e46d536119a31126"},
        MetaExample{"ZIP", "94035-1234", "94035",
                    "1794327a4d443904421f5ca1f3d72d0a62ba2f0770d80755ec2220fc0efb052e"},
        MetaExample{"ZIP", "1987", "1987",
                    "744b93f9950fc38dad705556931ea48193b99dcb191cc9bd77097f65fbe2f0b8"},
        MetaExample{"ZIP", "75018", "75018",
                    "8dc3075ea745609c169d1c120d3fcd1c42673d16f18b423f4374e894d34a098a"},
        MetaExample{"ZIP", "M1 1AE", "m11ae",
                    "1dc694c2070e697769fb959b50671d76cafd430d8ca191fbdd0affcaea344ac5"},
        MetaExample{"GEN", "Female", "f",
                    "252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111"},
        MetaExample{"GEN", "M", "m",
                    "62c66a7a5dd70c3146618063c344e531e6d4b59e379808443ce962b3abd63c5a"}));

TEST(MetaExamples, UsPhoneWithDefaultCountry) {
  EXPECT_EQ(phone_in("(650)555-1212", "US"), "16505551212");
  std::string out;
  ASSERT_TRUE(hash_phone("(650)555-1212", "US", out));
  EXPECT_EQ(out, "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176");
}

TEST(MetaExamples, DateOfBirthPartsAreHashedSeparately) {
  EXPECT_EQ(normalized("DOBY", "1997-02-16"), "1997");
  EXPECT_EQ(normalized("DOBM", "1997-02-16"), "02");
  EXPECT_EQ(normalized("DOBD", "1997-02-16"), "16");
}

}  // namespace
}  // namespace connector::testing
