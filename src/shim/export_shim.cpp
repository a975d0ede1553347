// noexcept wrappers for exports: the row encoder and the batch sender.

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "connector_shim.h"
#include "export/export_preview.hpp"
#include "export/export_rows.hpp"
#include "export/forget.hpp"
#include "graph/graph_error.hpp"
#include "export/export_sender.hpp"
#include "export/members.hpp"
#include "graph_config.hpp"
#include "status.hpp"

struct ConnectorExportEncoder {
  connector::ExportMapping mapping;
  std::unique_ptr<connector::RowEncoder> encoder;
  std::unique_ptr<connector::MemberFormat> members;
  std::unique_ptr<connector::SourceRecords> records;
  std::string unhashed_keys;
  std::string resolved_mapping;
  std::vector<std::optional<std::string_view>> values;
  std::vector<std::string> cells;
  std::string member;
  std::string record;

  // Fills `values` from the C arrays.
  void take_values(const char* const* row_values, const size_t* lengths) {
    std::size_t count = mapping.columns.size();
    values.resize(count);
    for (std::size_t i = 0; i < count; ++i)
      values[i] = row_values[i] != nullptr ? std::optional<std::string_view>(
                                                 std::string_view(row_values[i], lengths[i]))
                                           : std::nullopt;
  }

  // Encodes `values` into `member`.
  ConnectorResult encode(const char** out, size_t* out_len, int* skip_reason) {
    auto skipped = encoder->encode(values, cells);
    if (skipped) {
      *skip_reason = static_cast<int>(*skipped);
      return CONNECTOR_NO_VALUE;
    }
    members->encode(cells, member);
    *out = member.data();
    *out_len = member.size();
    return CONNECTOR_VALUE;
  }
};

struct ConnectorExportPreview {
  connector::ExportPreview preview;
  std::string report;
};

struct ConnectorExportSender {
  connector::Credentials credentials;
  std::unique_ptr<connector::UploadEngine> engine;
  std::unique_ptr<connector::ExportSender> sender;
  std::deque<connector::BatchOutcome> unreported;
};

namespace {

using connector::shim::credentials_of;
using connector::shim::guarded;
using connector::shim::settings_of;

connector::UploadOperation operation_of(ConnectorUploadOperation operation) {
  switch (operation) {
    case CONNECTOR_UPLOAD_REMOVE:
      return connector::UploadOperation::Remove;
    case CONNECTOR_UPLOAD_REPLACE:
      return connector::UploadOperation::Replace;
    case CONNECTOR_UPLOAD_ADD:
      break;
  }
  return connector::UploadOperation::Add;
}

// The SQLSTATE a failed batch gives its run: the same table as every other
// Graph API failure (connector::failure_kind, then status.hpp).
const char* sqlstate_of(const connector::BatchOutcome& outcome) {
  return connector::shim::sqlstate_of(connector::failure_kind(outcome.error));
}

void report(const connector::BatchOutcome& outcome, ConnectorBatchResult& result) {
  result.batch_seq = outcome.batch_seq;
  result.rows = static_cast<int64_t>(outcome.rows);
  result.succeeded = outcome.succeeded;
  result.outcome_unknown = outcome.outcome_unknown;
  result.attempts = outcome.attempts;
  result.num_received = outcome.num_received;
  result.num_invalid_entries = outcome.num_invalid_entries;
  result.error_code = outcome.error.code;
  result.error_subcode = outcome.error.subcode;
  result.needs_reauth = !outcome.succeeded && outcome.error_class == connector::ErrorClass::ReAuth;
  connector::shim::copy_text(result.sqlstate, sizeof result.sqlstate,
                             outcome.succeeded ? "00000" : sqlstate_of(outcome));
  std::string message;
  if (!outcome.succeeded) {
    message = std::string("batch ") + std::to_string(outcome.batch_seq) + " failed after " +
              std::to_string(outcome.attempts) + " attempt(s): " + outcome.error.message;
    if (outcome.error.code != 0)
      message +=
          " (Graph API error " + std::to_string(outcome.error.code) +
          (outcome.error.subcode != 0 ? "/" + std::to_string(outcome.error.subcode) : "") +
          (outcome.error.fbtrace_id.empty() ? "" : ", fbtrace_id " + outcome.error.fbtrace_id) +
          ")";
  }
  connector::shim::copy_text(result.message, sizeof result.message, message);
}

}  // namespace

extern "C" ConnectorExportEncoder* connector_export_encoder_new(
    const char* segment, const char* const* column_names, int column_count,
    const char* mapping_json, const char* key_identifier, int day_first,
    ConnectorStatus* status) noexcept {
  std::unique_ptr<ConnectorExportEncoder> encoder;
  ConnectorResult result = guarded(status, [&] {
    std::vector<std::string> columns(column_names, column_names + column_count);
    encoder = std::make_unique<ConnectorExportEncoder>();
    encoder->mapping =
        connector::resolve_mapping(segment, columns, mapping_json != nullptr ? mapping_json : "",
                                   key_identifier != nullptr ? key_identifier : "",
                                   day_first ? connector::normalize::DateOrder::DayFirst
                                             : connector::normalize::DateOrder::MonthFirst);
    encoder->encoder = std::make_unique<connector::RowEncoder>(encoder->mapping);
    encoder->members = std::make_unique<connector::MemberFormat>(encoder->mapping);
    encoder->records = std::make_unique<connector::SourceRecords>(encoder->mapping);
    encoder->unhashed_keys = connector::unhashed_key_names(encoder->mapping);
    encoder->resolved_mapping = connector::describe_mapping(encoder->mapping);
    return CONNECTOR_VALUE;
  });
  return result == CONNECTOR_VALUE ? encoder.release() : nullptr;
}

extern "C" void connector_export_encoder_free(ConnectorExportEncoder* encoder) noexcept {
  delete encoder;
}

extern "C" int connector_export_encoder_column_count(
    const ConnectorExportEncoder* encoder) noexcept {
  return static_cast<int>(encoder->mapping.columns.size());
}

extern "C" int connector_export_encoder_column(const ConnectorExportEncoder* encoder,
                                               int index) noexcept {
  return static_cast<int>(encoder->mapping.columns[static_cast<std::size_t>(index)].column);
}

extern "C" const char* connector_export_encoder_member_format(
    const ConnectorExportEncoder* encoder) noexcept {
  return encoder->members->description().c_str();
}

extern "C" const char* connector_export_encoder_resolved_mapping(
    const ConnectorExportEncoder* encoder) noexcept {
  return encoder->resolved_mapping.c_str();
}

extern "C" const char* connector_export_encoder_unhashed_keys(
    const ConnectorExportEncoder* encoder) noexcept {
  return encoder->unhashed_keys.c_str();
}

static_assert(CONNECTOR_SKIP_REASONS == connector::skip_reason_count);
static_assert(CONNECTOR_SKIP_VALUE_TOO_LONG == static_cast<int>(connector::SkipReason::ValueTooLong));
static_assert(CONNECTOR_SKIP_DUPLICATE == static_cast<int>(connector::SkipReason::Duplicate));
static_assert(CONNECTOR_MAX_VALUE_BYTES == connector::kMaxValueBytes);

extern "C" const char* connector_skip_reason_name(int reason) noexcept {
  return connector::skip_reason_name(static_cast<connector::SkipReason>(reason));
}

extern "C" ConnectorResult connector_export_encode_row(ConnectorExportEncoder* encoder,
                                                       const char* const* values,
                                                       const size_t* lengths, const char** member,
                                                       size_t* member_len, int* skip_reason,
                                                       ConnectorStatus* status) noexcept {
  return guarded(status, [&] {
    encoder->take_values(values, lengths);
    return encoder->encode(member, member_len, skip_reason);
  });
}

extern "C" ConnectorResult connector_export_source_record(ConnectorExportEncoder* encoder,
                                                          const char* const* values,
                                                          const size_t* lengths,
                                                          const char** record, size_t* record_len,
                                                          ConnectorStatus* status) noexcept {
  return guarded(status, [&] {
    encoder->take_values(values, lengths);
    encoder->records->pack(encoder->values, encoder->record);
    *record = encoder->record.data();
    *record_len = encoder->record.size();
    return CONNECTOR_VALUE;
  });
}

static_assert(CONNECTOR_SOURCE_DIGEST_BYTES == connector::kSourceDigestLength);

extern "C" ConnectorResult connector_export_encode_record(ConnectorExportEncoder* encoder,
                                                          const char* record, size_t record_len,
                                                          const char** member, size_t* member_len,
                                                          int* skip_reason,
                                                          ConnectorStatus* status) noexcept {
  return guarded(status, [&] {
    encoder->records->unpack({record, record_len}, encoder->values);
    return encoder->encode(member, member_len, skip_reason);
  });
}

extern "C" int64_t connector_export_rejected_prehashed(
    const ConnectorExportEncoder* encoder) noexcept {
  return encoder->encoder->rejected_prehashed_values();
}

extern "C" ConnectorExportSender* connector_export_sender_new(const ConnectorGraphConfig* graph,
                                                              const ConnectorSenderConfig* config,
                                                              const ConnectorExportEncoder* encoder,
                                                              ConnectorStatus* status) noexcept {
  std::unique_ptr<ConnectorExportSender> sender;
  ConnectorResult result = guarded(status, [&] {
    sender = std::make_unique<ConnectorExportSender>();
    sender->credentials = credentials_of(*graph);
    connector::EngineSettings engine;
    engine.max_in_flight = config->max_in_flight;
    engine.max_attempts = config->max_attempts;
    engine.base_delay_ms = config->base_delay_ms;
    sender->engine = std::make_unique<connector::UploadEngine>(
        settings_of(*graph), sender->credentials, engine, graph->should_abort);
    connector::SenderSettings settings;
    settings.operation = operation_of(config->operation);
    settings.audience_id = config->audience_id;
    settings.session_id = config->session_id;
    settings.estimated_total = config->estimated_total;
    settings.batch_size = static_cast<std::size_t>(config->batch_size);
    sender->sender = std::make_unique<connector::ExportSender>(
        *sender->engine, *encoder->members, encoder->mapping.schema, settings);
    return CONNECTOR_VALUE;
  });
  return result == CONNECTOR_VALUE ? sender.release() : nullptr;
}

extern "C" void connector_export_sender_free(ConnectorExportSender* sender) noexcept {
  delete sender;
}

extern "C" bool connector_export_sender_accepts_rows(const ConnectorExportSender* sender) noexcept {
  return sender->sender->accepts_rows();
}

extern "C" ConnectorResult connector_export_sender_add_member(ConnectorExportSender* sender,
                                                              const char* member,
                                                              size_t member_len,
                                                              ConnectorStatus* status) noexcept {
  return guarded(status, [&] {
    sender->sender->add_member({member, member_len});
    return CONNECTOR_VALUE;
  });
}

extern "C" ConnectorResult connector_export_sender_finish(ConnectorExportSender* sender,
                                                          ConnectorStatus* status) noexcept {
  return guarded(status, [&] {
    sender->sender->finish();
    return CONNECTOR_VALUE;
  });
}

extern "C" ConnectorResult connector_export_sender_poll(ConnectorExportSender* sender,
                                                        int timeout_ms,
                                                        ConnectorBatchResult* results,
                                                        int max_results, int* result_count,
                                                        ConnectorStatus* status) noexcept {
  *result_count = 0;
  return guarded(status, [&] {
    if (sender->unreported.empty())
      for (auto& outcome : sender->sender->poll(timeout_ms))
        sender->unreported.push_back(std::move(outcome));
    while (*result_count < max_results && !sender->unreported.empty()) {
      report(sender->unreported.front(), results[(*result_count)++]);
      sender->unreported.pop_front();
    }
    return CONNECTOR_VALUE;
  });
}

extern "C" bool connector_export_sender_done(const ConnectorExportSender* sender) noexcept {
  return sender->unreported.empty() && sender->sender->done();
}

extern "C" ConnectorResult connector_close_replace_session(const ConnectorGraphConfig* graph,
                                                           const ConnectorExportEncoder* encoder,
                                                           const char* audience_id,
                                                           int64_t session_id, const char* member,
                                                           size_t member_len,
                                                           ConnectorStatus* status) noexcept {
  return guarded(status, [&] {
    connector::Credentials credentials = credentials_of(*graph);
    connector::EngineSettings settings;
    settings.max_in_flight = 1;
    settings.max_attempts = 3;
    connector::UploadEngine engine(settings_of(*graph), credentials, settings, graph->should_abort);
    // Any batch_seq but 1 continues a session (reference 3.2, R4); this one is the last.
    constexpr std::uint64_t kClosingBatch = 1u << 30;
    connector::PayloadWriter writer(encoder->mapping.schema, 1);
    writer.add_row([&](std::string& body) {
      encoder->members->append_row_json({member, member_len}, body);
    });
    connector::UploadBatch batch;
    batch.batch_seq = kClosingBatch;
    batch.last = true;
    batch.rows = 1;
    batch.body = writer.finish(session_id, kClosingBatch, true, 1);
    engine.submit(connector::UploadOperation::Replace, audience_id, std::move(batch));
    while (!engine.idle()) {
      for (const auto& outcome : engine.poll(100)) {
        bool already_closed = outcome.error.code == 2650 && (outcome.error.subcode == 1870159 ||
                                                             outcome.error.subcode == 1870147 ||
                                                             outcome.error.subcode == 1870158);
        if (!outcome.succeeded && !already_closed)
          throw connector::ExternalError(
              connector::ExternalError::Kind::Temporary,
              "could not close replace session " + std::to_string(session_id) + " of audience " +
                  audience_id + " left open by an interrupted run: " + outcome.error.message,
              "Meta closes it by itself 90 minutes after it started; run the export again then.");
      }
    }
    return CONNECTOR_VALUE;
  });
}

extern "C" ConnectorExportPreview* connector_export_preview_new(const ConnectorExportEncoder* encoder,
                                                                int sample_rows,
                                                                ConnectorStatus* status) noexcept {
  std::unique_ptr<ConnectorExportPreview> preview;
  ConnectorResult result = guarded(status, [&] {
    preview.reset(new ConnectorExportPreview{
        connector::ExportPreview(encoder->mapping, static_cast<std::size_t>(std::max(sample_rows, 0))),
        {}});
    return CONNECTOR_VALUE;
  });
  return result == CONNECTOR_VALUE ? preview.release() : nullptr;
}

extern "C" ConnectorResult connector_export_preview_add(ConnectorExportPreview* preview,
                                                        const ConnectorExportEncoder* encoder,
                                                        ConnectorResult encoded, int skip_reason,
                                                        ConnectorStatus* status) noexcept {
  return guarded(status, [&] {
    std::optional<connector::SkipReason> skipped;
    if (encoded == CONNECTOR_NO_VALUE) skipped = static_cast<connector::SkipReason>(skip_reason);
    static const std::vector<std::string> no_cells;
    preview->preview.add_row(skipped, encoder != nullptr ? encoder->cells : no_cells);
    return CONNECTOR_VALUE;
  });
}

extern "C" const char* connector_export_preview_report(ConnectorExportPreview* preview,
                                                       const ConnectorPreviewSettings* settings,
                                                       ConnectorStatus* status) noexcept {
  ConnectorResult result = guarded(status, [&] {
    connector::PreviewSettings core;
    core.segment = settings->segment;
    core.batch_size = settings->batch_size;
    core.max_parallel_requests = settings->max_parallel_requests;
    core.max_profiles = settings->max_profiles;
    core.read_seconds = settings->read_seconds;
    core.seconds_per_batch = settings->seconds_per_batch;
    core.estimate_basis = settings->estimate_basis;
    preview->report = preview->preview.report(core);
    return CONNECTOR_VALUE;
  });
  return result == CONNECTOR_VALUE ? preview->report.c_str() : nullptr;
}

extern "C" void connector_export_preview_free(ConnectorExportPreview* preview) noexcept {
  delete preview;
}

struct ConnectorForgotten {
  connector::ForgottenIdentifier identifier;
};

struct ConnectorForgetMatcher {
  connector::ForgetMatcher matcher;
};

extern "C" ConnectorForgotten* connector_forgotten_new(const char* key, const char* value,
                                                       ConnectorStatus* status) noexcept {
  std::unique_ptr<ConnectorForgotten> forgotten;
  ConnectorResult result = guarded(status, [&] {
    forgotten.reset(new ConnectorForgotten{connector::forgotten_identifier(key, value)});
    return CONNECTOR_VALUE;
  });
  return result == CONNECTOR_VALUE ? forgotten.release() : nullptr;
}

extern "C" void connector_forgotten_free(ConnectorForgotten* forgotten) noexcept { delete forgotten; }

namespace {

// Sends one removal body; CONNECTOR_NO_VALUE when the audience is gone at Meta.
ConnectorResult remove_at_meta(const ConnectorGraphConfig& graph, const char* audience_id,
                               std::string body) {
  connector::Credentials credentials = credentials_of(graph);
  connector::EngineSettings settings;
  settings.max_in_flight = 1;
  settings.max_attempts = 3;
  connector::UploadEngine engine(settings_of(graph), credentials, settings, graph.should_abort);
  connector::UploadBatch batch;
  batch.batch_seq = 1;
  batch.last = true;
  batch.rows = 1;
  batch.body = std::move(body);
  engine.submit(connector::UploadOperation::Remove, audience_id, std::move(batch));
  ConnectorResult result = CONNECTOR_VALUE;
  while (!engine.idle()) {
    for (const auto& outcome : engine.poll(100)) {
      if (outcome.succeeded) continue;
      // An audience deleted at Meta holds nobody any more.
      if (connector::is_missing_object(outcome.error)) {
        result = CONNECTOR_NO_VALUE;
        continue;
      }
      throw connector::ExternalError(
          connector::ExternalError::Kind::Temporary,
          "could not remove the person from audience " + std::string(audience_id) + ": " +
              outcome.error.message,
          "Call fb_forget again: removing a person twice is harmless.");
    }
  }
  return result;
}

}  // namespace

extern "C" ConnectorResult connector_forget_in_audience(const ConnectorGraphConfig* graph,
                                                        const ConnectorForgotten* forgotten,
                                                        const char* audience_id, int64_t session_id,
                                                        ConnectorStatus* status) noexcept {
  return guarded(status, [&] {
    return remove_at_meta(*graph, audience_id, connector::forget_body(forgotten->identifier, session_id));
  });
}

extern "C" ConnectorResult connector_forget_members_in_audience(
    const ConnectorGraphConfig* graph, const char* member_format, const char* const* members,
    const size_t* lengths, int count, const char* audience_id, int64_t session_id,
    ConnectorStatus* status) noexcept {
  return guarded(status, [&] {
    std::vector<std::string> rows;
    for (int i = 0; i < count; ++i) rows.emplace_back(members[i], lengths[i]);
    return remove_at_meta(*graph, audience_id,
                          connector::forget_members_body(member_format, rows, session_id));
  });
}

extern "C" ConnectorForgetMatcher* connector_forget_matcher_new(const ConnectorForgotten* forgotten,
                                                                const char* member_format,
                                                                ConnectorStatus* status) noexcept {
  std::unique_ptr<ConnectorForgetMatcher> matcher;
  ConnectorResult result = guarded(status, [&] {
    matcher.reset(new ConnectorForgetMatcher{connector::ForgetMatcher(member_format, forgotten->identifier)});
    return CONNECTOR_VALUE;
  });
  return result == CONNECTOR_VALUE ? matcher.release() : nullptr;
}

extern "C" bool connector_forget_matcher_applies(const ConnectorForgetMatcher* matcher) noexcept {
  return matcher->matcher.applies();
}

extern "C" ConnectorResult connector_forget_matches(const ConnectorForgetMatcher* matcher,
                                                    const char* member, size_t member_len,
                                                    ConnectorStatus* status) noexcept {
  return guarded(status, [&] {
    return matcher->matcher.matches({member, member_len}) ? CONNECTOR_VALUE : CONNECTOR_NO_VALUE;
  });
}

extern "C" void connector_forget_matcher_free(ConnectorForgetMatcher* matcher) noexcept { delete matcher; }
