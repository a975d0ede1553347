// fb_forget: one person, named by one identifier, taken out of the audiences
// of a destination (a removal batch of one row) and out of the mirror ledgers
// (their entries keep the source digest with no member: a tombstone, so that
// an unchanged source row is not sent again, while a new or changed one is).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "identifiers/keys.hpp"

namespace connector {

// The identifier, normalized as fb_normalize does, for the keys a person can
// be found by alone: EMAIL, PHONE, MADID, EXTERN_ID. Throws InvalidArgument
// naming the fix for another key or a value that is not valid.
struct ForgottenIdentifier {
  Key key;
  std::string normalized;
};
ForgottenIdentifier forgotten_identifier(std::string_view key, std::string_view value);

// The JSON body of the removal: one row, the value hashed unless the key is
// sent plain, in a session of its own.
std::string forget_body(const ForgottenIdentifier& identifier, std::int64_t session_id);

// The JSON body that removes `members` (packed in the format `format_json`
// describes) as they were sent: the exact rows, whatever Meta matches them to.
std::string forget_members_body(std::string_view format_json, const std::vector<std::string>& members,
                                std::int64_t session_id);

// Whether members packed in the format `format_json` (MemberFormat's
// description) hold the identifier, and in which cell.
class ForgetMatcher {
 public:
  ForgetMatcher(std::string_view format_json, const ForgottenIdentifier& identifier);
  bool applies() const noexcept { return cell_ != npos; }
  // Throws InvalidArgument on a malformed member.
  bool matches(std::string_view member) const;

 private:
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  std::size_t cell_ = npos;
  char form_ = 'h';       // 'h' normalized, 'd' a 32-byte digest, 'p' plain
  std::string wanted_;  // what the cell holds for this person
};

}  // namespace connector
