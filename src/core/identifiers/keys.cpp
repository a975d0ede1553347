// The key table. Order is Meta's schema order in the reference, DOB after GEN.

#include "identifiers/keys.hpp"

#include <array>

#include "errors.hpp"
#include "identifiers/normalize.hpp"

namespace connector {
namespace {

constexpr std::array<KeySpec, key_count> kKeys = {{
    {Key::Email, "EMAIL", true, normalize::email, "email email_address e_mail"},
    {Key::Phone, "PHONE", true, normalize::phone, "phone phone_number mobile mobile_phone"},
    {Key::Gender, "GEN", true, normalize::gender, "gen gender sex"},
    {Key::DateOfBirth, "DOB", true, normalize::date_of_birth,
     "dob birth_date date_of_birth birthdate birthday"},
    {Key::BirthYear, "DOBY", true, normalize::birth_year, "doby birth_year"},
    {Key::BirthMonth, "DOBM", true, normalize::birth_month, "dobm birth_month"},
    {Key::BirthDay, "DOBD", true, normalize::birth_day, "dobd birth_day"},
    {Key::FirstName, "FN", true, normalize::first_or_last_name,
     "fn first_name firstname given_name"},
    {Key::LastName, "LN", true, normalize::first_or_last_name,
     "ln last_name lastname surname family_name"},
    {Key::FirstInitial, "FI", true, normalize::first_initial, "fi first_initial"},
    {Key::City, "CT", true, normalize::city, "ct city"},
    {Key::State, "ST", true, normalize::state, "st state province region"},
    {Key::Zip, "ZIP", true, normalize::zip, "zip zip_code zipcode postal_code postcode"},
    {Key::Country, "COUNTRY", true, normalize::country, "country country_code"},
    // Sent unhashed, so never matched by a column's name: only an explicit mapping sends them.
    {Key::MobileAdvertiserId, "MADID", false, normalize::mobile_advertiser_id, ""},
    {Key::ExternId, "EXTERN_ID", false, normalize::extern_id, ""},
}};

constexpr bool table_is_indexed_by_key() {
  for (std::size_t i = 0; i < kKeys.size(); ++i)
    if (static_cast<std::size_t>(kKeys[i].key) != i) return false;
  return true;
}
static_assert(table_is_indexed_by_key(), "kKeys must list the keys in enum order");

bool equals_ignoring_ascii_case(std::string_view name, std::string_view upper) {
  if (name.size() != upper.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - ('a' - 'A'));
    if (c != upper[i]) return false;
  }
  return true;
}

}  // namespace

const KeySpec& key_spec(Key key) noexcept { return kKeys[static_cast<std::size_t>(key)]; }

const KeySpec& key_spec_at(std::size_t index) noexcept { return kKeys[index]; }

std::optional<Key> find_key(std::string_view name) noexcept {
  for (const KeySpec& spec : kKeys)
    if (equals_ignoring_ascii_case(name, spec.name)) return spec.key;
  return std::nullopt;
}

Key parse_key(std::string_view name) {
  if (auto key = find_key(name)) return *key;
  std::string shown(name.substr(0, 64));
  throw InvalidArgument("unknown identifier key \"" + shown + "\"",
                        "Valid keys are " + valid_key_names() + " (in any letter case).");
}

std::string valid_key_names() {
  std::string names;
  for (const KeySpec& spec : kKeys) {
    if (!names.empty()) names += ", ";
    names += spec.name;
  }
  return names;
}

}  // namespace connector
