// Language codes (label unit): the BCP-47 shapes accepted and refused, hints matched to the served
// languages by primary subtag, and the language results report.
#include "server/languages.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace speechllm::server {
namespace {

using ::testing::HasSubstr;

TEST(LanguagesTest, WellFormedCodesAreAcceptedAndOthersRefused) {
  for (const char* code : {"en", "EN", "en-US", "zh-Hans-CN", "yue", "es-419", "de-CH-1996"}) {
    EXPECT_TRUE(CheckLanguageCode(code).ok()) << code;
  }
  for (const char* code : {"", "e", "en_US", "en-", "-en", "1e", "en-toolongsubtag", "en US",
                           "e\xc3\xa9", "abcdefghi"}) {
    const absl::Status status = CheckLanguageCode(code);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << code;
    EXPECT_THAT(status.message(), HasSubstr("is not a BCP-47 language code")) << code;
  }
  EXPECT_FALSE(CheckLanguageCode(std::string(36, 'a')).ok());
}

TEST(LanguagesTest, HintsMustNameAServedLanguageAndTheFirstIsReported) {
  const std::vector<std::string> english = {"en"};
  EXPECT_EQ(*ResolveLanguage({}, english), "en");
  EXPECT_EQ(*ResolveLanguage({"en-GB"}, english), "en-GB");
  EXPECT_EQ(*ResolveLanguage({"EN", "en-US"}, english), "EN");
  EXPECT_EQ(*ResolveLanguage({}, {"en", "zh"}), "") << "two served and no hint: not detected";
  EXPECT_EQ(*ResolveLanguage({"zh-CN"}, {"en-US", "zh"}), "zh-CN");
  EXPECT_EQ(*ResolveLanguage({"en"}, {"en-US"}), "en") << "matched by primary subtag";
  const absl::StatusOr<std::string> french = ResolveLanguage({"en", "fr"}, english);
  EXPECT_EQ(french.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(french.status().message(), HasSubstr("this server transcribes en, not \"fr\""));
  EXPECT_EQ(ResolveLanguage({"en_US"}, english).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace speechllm::server
