#include "export/forget.hpp"

#include "errors.hpp"
#include "export/export_rows.hpp"
#include "export/members.hpp"
#include "identifiers/identifier.hpp"
#include "identifiers/sha256_hex.hpp"

namespace connector {
namespace {

// Reads a member's cell lengths as MemberFormat::encode wrote them (LEB128).
std::string_view cell_at(std::string_view member, std::size_t index) {
  std::size_t at = 0;
  for (std::size_t i = 0;; ++i) {
    std::size_t length = 0;
    for (int shift = 0;; shift += 7) {
      if (at >= member.size() || shift > 28) throw InvalidArgument("malformed audience member");
      auto byte = static_cast<unsigned char>(member[at++]);
      length |= static_cast<std::size_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) break;
    }
    if (length > member.size() - at) throw InvalidArgument("malformed audience member");
    if (i == index) return member.substr(at, length);
    at += length;
  }
}

}  // namespace

ForgottenIdentifier forgotten_identifier(std::string_view key_name, std::string_view value) {
  Key key = parse_key(key_name);
  if (key != Key::Email && key != Key::Phone && key != Key::MobileAdvertiserId &&
      key != Key::ExternId)
    throw InvalidArgument(std::string(key_spec(key).name) + " alone does not name a person",
                          "Forget a person by EMAIL, PHONE, MADID or EXTERN_ID.");
  ForgottenIdentifier identifier{key, {}};
  if (!normalize_identifier(key, value, identifier.normalized))
    throw InvalidArgument("the value is not a valid " + std::string(key_spec(key).name),
                          "fb_normalize('" + std::string(key_spec(key).name) +
                              "', value) shows what it normalizes to.");
  return identifier;
}

std::string forget_body(const ForgottenIdentifier& identifier, std::int64_t session_id) {
  std::string cell = identifier.normalized;
  if (key_spec(identifier.key).hashed) {
    char hex[sha256_hex_length];
    sha256_hex(identifier.normalized, hex);
    cell.assign(hex, sha256_hex_length);
  }
  PayloadWriter writer({std::string(key_spec(identifier.key).name)}, 1);
  writer.add_row([&](std::string& body) {
    body.push_back('[');
    append_json_string(body, cell);
    body.push_back(']');
  });
  return writer.finish(session_id, 1, true, 1);
}

std::string forget_members_body(std::string_view format_json, const std::vector<std::string>& members,
                                std::int64_t session_id) {
  MemberFormat format = MemberFormat::from_description(format_json);
  PayloadWriter writer(format.schema(), members.size());
  for (const std::string& member : members)
    writer.add_row([&](std::string& body) { format.append_row_json(member, body); });
  return writer.finish(session_id, 1, true, static_cast<std::int64_t>(members.size()));
}

ForgetMatcher::ForgetMatcher(std::string_view format_json, const ForgottenIdentifier& identifier) {
  MemberFormat format = MemberFormat::from_description(format_json);
  for (std::size_t i = 0; i < format.schema().size(); ++i)
    if (format.schema()[i] == key_spec(identifier.key).name) {
      cell_ = i;
      form_ = format.forms()[i] == CellForm::Digest ? 'd' : format.forms()[i] == CellForm::Plain ? 'p' : 'h';
    }
  if (cell_ == npos) return;
  wanted_ = identifier.normalized;
  if (form_ == 'd') {
    unsigned char digest[sha256_length];
    sha256(identifier.normalized, digest);
    wanted_.assign(reinterpret_cast<const char*>(digest), sha256_length);
  }
}

bool ForgetMatcher::matches(std::string_view member) const {
  return applies() && !member.empty() && cell_at(member, cell_) == wanted_;
}

}  // namespace connector
