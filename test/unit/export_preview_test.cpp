// fb_preview_export's report: counts, each key's column and valid share, the
// batches and the estimate, and sample rows normalized, never hashed.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "export/export_mapping.hpp"
#include "export/export_preview.hpp"
#include "export/export_rows.hpp"

namespace connector {
namespace {

using Values = std::vector<std::optional<std::string_view>>;

TEST(ExportPreview, CountsKeysBatchesAndSampleRows) {
  auto mapping = resolve_mapping("crm.vip", {"email", "phone", "fname"}, R"({"FN": "fname"})", "");
  RowEncoder encoder(mapping);
  ExportPreview preview(mapping, 2);
  std::vector<std::string> cells;
  for (const Values& row : {Values{" Mary@Example.com ", "+1 650 555 1234", "Mary"},
                            Values{"not an address", std::nullopt, "Jörg"},
                            Values{std::nullopt, "+44 (0)7700 900123", std::nullopt},
                            Values{"x@example.com", std::nullopt, std::nullopt}})
    preview.add_row(encoder.encode(row, cells), cells);
  PreviewSettings settings;
  settings.segment = "crm.vip";
  settings.batch_size = 2;
  settings.max_parallel_requests = 1;
  settings.read_seconds = 0.5;
  settings.seconds_per_batch = 2;
  settings.estimate_basis = "assumed";
  auto report = nlohmann::json::parse(preview.report(settings));
  EXPECT_EQ(report["rows_read"], 4);
  EXPECT_EQ(report["rows_exportable"], 3);
  EXPECT_EQ(report["rows_skipped"], nlohmann::json::parse(R"({"invalid_email": 1})"));
  EXPECT_EQ(report["keys"]["EMAIL"], nlohmann::json::parse(
                                         R"({"column": "email", "by": "name", "valid_share": 0.5})"));
  EXPECT_EQ(report["keys"]["FN"]["by"], "mapping");
  EXPECT_EQ(report["keys"]["FN"]["valid_share"], 0.5);
  EXPECT_EQ(report["batches"], 2);
  EXPECT_EQ(report["estimated_seconds"], 4.5);  // the read, then two batches one at a time
  ASSERT_EQ(report["sample"].size(), 2u);
  EXPECT_EQ(report["sample"][0], nlohmann::json::parse(
                                     R"({"EMAIL": "mary@example.com", "PHONE": "16505551234", "FN": "mary"})"));
  EXPECT_EQ(report["sample"][1], nlohmann::json::parse(
                                     R"({"EMAIL": null, "PHONE": "447700900123", "FN": null})"));
}

TEST(ExportPreview, APrehashedColumnIsShownAsItsHexAndADateAsItsParts) {
  std::string digest(64, 'a');
  auto mapping = resolve_mapping(
      "s", {"email_sha", "born"},
      R"({"EMAIL": {"column": "email_sha", "prehashed": true}, "DOB": "born"})", "");
  RowEncoder encoder(mapping);
  ExportPreview preview(mapping, 1);
  std::vector<std::string> cells;
  preview.add_row(encoder.encode(Values{digest, "1950-04-01"}, cells), cells);
  auto report = nlohmann::json::parse(preview.report(PreviewSettings{}));
  EXPECT_EQ(report["sample"][0]["EMAIL"], digest);
  EXPECT_EQ(report["sample"][0]["DOBY"], "1950");
  EXPECT_EQ(report["keys"]["DOBD"]["column"], "born");
}

}  // namespace
}  // namespace connector
