// Micro-benchmarks of the core's per-value cost, run by hand:
//   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build --target core_bench
//   build/core_bench
// The SQL-level comparison with PostgreSQL's built-in functions is
// test/bench/hash_bench.sh.

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "export/export_rows.hpp"
#include "export/members.hpp"
#include "identifiers/identifier.hpp"
#include "identifiers/keys.hpp"
#include "identifiers/sha256_hex.hpp"

namespace {

using connector::Key;

std::vector<std::string> sample(const char* pattern, int count) {
  std::vector<std::string> values;
  for (int i = 0; i < count; ++i) values.push_back(std::string(pattern) + std::to_string(i));
  return values;
}

void hash_values(benchmark::State& state, Key key, const std::vector<std::string>& values) {
  std::string out;
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(connector::hash_identifier(key, values[i++ % values.size()], out));
    benchmark::DoNotOptimize(out.data());
  }
}

void BM_Sha256Hex(benchmark::State& state) {
  std::string value = "john_smith.someone@example-mail.com";
  char hex[connector::sha256_hex_length];
  for (auto _ : state) {
    connector::sha256_hex(value, hex);
    benchmark::DoNotOptimize(hex);
  }
}
BENCHMARK(BM_Sha256Hex);

void BM_HashEmail(benchmark::State& state) {
  static auto values = [] {
    std::vector<std::string> emails;
    for (int i = 0; i < 1000; ++i)
      emails.push_back(" Customer." + std::to_string(i) + "@Example.com");
    return emails;
  }();
  hash_values(state, Key::Email, values);
}
BENCHMARK(BM_HashEmail);

void BM_HashFirstNameAscii(benchmark::State& state) {
  static auto values = sample("Mary-Jane ", 1000);
  hash_values(state, Key::FirstName, values);
}
BENCHMARK(BM_HashFirstNameAscii);

void BM_HashFirstNameNonAscii(benchmark::State& state) {
  static auto values = sample("VAL\xC3\x89RY ", 1000);
  hash_values(state, Key::FirstName, values);
}
BENCHMARK(BM_HashFirstNameNonAscii);

void BM_HashPhoneInternational(benchmark::State& state) {
  static auto values = sample("+44 20 7946 0", 1000);
  hash_values(state, Key::Phone, values);
}
BENCHMARK(BM_HashPhoneInternational);

void BM_HashPhoneWithDefaultCountry(benchmark::State& state) {
  static auto values = sample("020 7946 0", 1000);
  std::string out;
  std::size_t i = 0;
  for (auto _ : state)
    benchmark::DoNotOptimize(connector::hash_phone(values[i++ % values.size()], "GB", out));
}
BENCHMARK(BM_HashPhoneWithDefaultCountry);

void BM_HashCountryName(benchmark::State& state) {
  static std::vector<std::string> values = {"United States", "Germany", "UK", "France", "Japan"};
  hash_values(state, Key::Country, values);
}
BENCHMARK(BM_HashCountryName);

void BM_HashDateOfBirth(benchmark::State& state) {
  static std::vector<std::string> values = {"1997-02-16", "2/16/1997", "16.02.1997"};
  hash_values(state, Key::DateOfBirth, values);
}
BENCHMARK(BM_HashDateOfBirth);

// A segment row of 8 keys, and its mapping.
const connector::ExportMapping& eight_key_mapping() {
  static const connector::ExportMapping mapping = connector::resolve_mapping(
      "bench", {"email", "phone", "first_name", "last_name", "city", "state", "zip", "country"}, "",
      "");
  return mapping;
}

const std::vector<std::optional<std::string_view>>& eight_key_row() {
  static const std::vector<std::optional<std::string_view>> row = {
      "customer.42@example-mail.com", "+1 650 555 0142", "Mary", "Smith", "Menlo Park",
      "California", "94025", "US"};
  return row;
}

// One segment row of 8 keys to its member, then its payload JSON, as an
// export does for each row it sends.
void BM_EncodeRowOfEightKeys(benchmark::State& state) {
  const connector::ExportMapping& mapping = eight_key_mapping();
  connector::RowEncoder encoder(mapping);
  connector::MemberFormat format(mapping);
  const std::vector<std::optional<std::string_view>>& row = eight_key_row();
  std::vector<std::string> cells;
  std::string member, json;
  for (auto _ : state) {
    benchmark::DoNotOptimize(encoder.encode(row, cells));
    format.encode(cells, member);
    json.clear();
    format.append_row_json(member, json);
    benchmark::DoNotOptimize(json.data());
  }
}
BENCHMARK(BM_EncodeRowOfEightKeys);

// What a mirror run does for a row its ledger already holds: its source
// record, and nothing more.
void BM_SourceRecordOfEightKeys(benchmark::State& state) {
  const connector::ExportMapping& mapping = eight_key_mapping();
  connector::SourceRecords records(mapping);
  const std::vector<std::optional<std::string_view>>& row = eight_key_row();
  std::string record;
  for (auto _ : state) {
    records.pack(row, record);
    benchmark::DoNotOptimize(record.data());
  }
}
BENCHMARK(BM_SourceRecordOfEightKeys);

}  // namespace

BENCHMARK_MAIN();
