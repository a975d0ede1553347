/*
 * The boundary between PostgreSQL's C and the C++ core. Every function here is
 * noexcept: a C++ exception never crosses into C. A function that fails fills
 * a ConnectorStatus and returns; the C caller raises the PostgreSQL error after
 * the call has returned, when no C++ frame is live any more.
 */
#ifndef CONNECTOR_SHIM_H
#define CONNECTOR_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define CONNECTOR_NOEXCEPT noexcept
extern "C" {
#else
#define CONNECTOR_NOEXCEPT
#endif

typedef struct ConnectorStatus
{
	int			code;			/* 0 when the call succeeded */
	char		sqlstate[6];	/* five characters and a terminator */
	char		message[512];
	char		detail[512];	/* empty when there is none */
	char		hint[512];		/* empty when there is none */
} ConnectorStatus;

/* What a normalizing call found: a value, no valid value (SQL NULL), or an error. */
typedef enum ConnectorResult
{
	CONNECTOR_VALUE = 0,
	CONNECTOR_NO_VALUE = 1,
	CONNECTOR_ERROR = 2
} ConnectorResult;

/* Finds an identifier key by name, in any letter case; *key_id is opaque to C. */
ConnectorResult connector_find_key(const char *name, size_t name_len,
								   int *key_id, ConnectorStatus *status) CONNECTOR_NOEXCEPT;

/*
 * Normalize or hash one value. On CONNECTOR_VALUE, *out points to the result,
 * valid until the next call in this process; it is not NUL-terminated.
 */
ConnectorResult connector_normalize(int key_id, const char *value, size_t value_len,
									const char **out, size_t *out_len,
									ConnectorStatus *status) CONNECTOR_NOEXCEPT;
ConnectorResult connector_hash(int key_id, const char *value, size_t value_len,
							   const char **out, size_t *out_len,
							   ConnectorStatus *status) CONNECTOR_NOEXCEPT;
/* DOB with whole dates read in date_order ("MDY" or "DMY"; another is an error). */
ConnectorResult connector_normalize_dob(const char *value, size_t value_len,
										const char *date_order, size_t date_order_len,
										const char **out, size_t *out_len,
										ConnectorStatus *status) CONNECTOR_NOEXCEPT;
ConnectorResult connector_normalize_phone(const char *value, size_t value_len,
										  const char *country, size_t country_len,
										  const char **out, size_t *out_len,
										  ConnectorStatus *status) CONNECTOR_NOEXCEPT;
ConnectorResult connector_hash_phone(const char *value, size_t value_len,
									 const char *country, size_t country_len,
									 const char **out, size_t *out_len,
									 ConnectorStatus *status) CONNECTOR_NOEXCEPT;

/*
 * Secrets at rest (AES-256-GCM). The key lives in key_path, and every sealed
 * value names the key that sealed it by fingerprint. Sealing creates the key
 * file (mode 0600) only when create_key_if_missing is true: pass true only
 * while no sealed secret is stored, so that a lost key file is an error and
 * never a silent second key. Opening never creates it, and tells a missing key
 * file, a key file holding another key and an altered value apart.
 * `context` binds a sealed value to where it is stored; `description` names
 * the secret in errors (the access token of destination "meta_main"). The
 * opened plaintext stays in the shim until connector_forget_secret() wipes it.
 */
ConnectorResult connector_seal_secret(const char *key_path, bool create_key_if_missing,
									  const char *plaintext, size_t plaintext_len,
									  const char *context, const char **out,
									  size_t *out_len, ConnectorStatus *status) CONNECTOR_NOEXCEPT;
ConnectorResult connector_open_secret(const char *key_path, const char *sealed,
									  size_t sealed_len, const char *context,
									  const char *description, const char **out,
									  size_t *out_len, ConnectorStatus *status) CONNECTOR_NOEXCEPT;
void		connector_forget_secret(void) CONNECTOR_NOEXCEPT;

/* Everything a Graph API call needs; the strings belong to the caller. */
typedef struct ConnectorGraphConfig
{
	const char *base_url;
	const char *api_version;
	const char *ca_file;		/* "" for the system's trusted CAs */
	long		connect_timeout_ms;
	long		request_timeout_ms;
	const char *access_token;
	const char *app_secret;		/* "" when none is set */
	/*
	 * Polled during transfers, from inside C++ (libcurl callbacks and the
	 * upload engine's loop): it must only read flags. It must never raise a
	 * PostgreSQL error, call CHECK_FOR_INTERRUPTS or allocate with palloc.
	 */
	bool		(*should_abort) (void);
} ConnectorGraphConfig;

/* The token works, has ads_management, the account is active and its terms accepted. */
ConnectorResult connector_verify_account(const ConnectorGraphConfig *config,
										 const char *destination, const char *ad_account_id,
										 ConnectorStatus *status) CONNECTOR_NOEXCEPT;

typedef struct ConnectorAudience
{
	const char *id;
	const char *name;
	const char *subtype;
	const char *description;
	int64_t		approximate_count_lower_bound;	/* -1 when unknown */
	int64_t		approximate_count_upper_bound;
	int			operation_status_code;
	const char *operation_status;
	int			delivery_status_code;
	const char *delivery_status;
} ConnectorAudience;

typedef struct ConnectorAudienceList ConnectorAudienceList;

/* NULL on error. The strings of each audience live as long as the list. */
ConnectorAudienceList *connector_list_audiences(const ConnectorGraphConfig *config,
												const char *destination,
												const char *ad_account_id,
												ConnectorStatus *status) CONNECTOR_NOEXCEPT;
/* One audience as Meta reports it now, as a list of one; NULL on error. */
ConnectorAudienceList *connector_read_audience(const ConnectorGraphConfig *config,
											   const char *destination,
											   const char *audience_id,
											   ConnectorStatus *status) CONNECTOR_NOEXCEPT;
size_t		connector_audience_count(const ConnectorAudienceList *list) CONNECTOR_NOEXCEPT;
ConnectorAudience connector_audience_at(const ConnectorAudienceList *list,
										size_t index) CONNECTOR_NOEXCEPT;
void		connector_free_audience_list(ConnectorAudienceList *list) CONNECTOR_NOEXCEPT;

ConnectorResult connector_create_audience(const ConnectorGraphConfig *config,
										  const char *destination, const char *ad_account_id,
										  const char *name, const char *description,
										  const char **audience_id, size_t *audience_id_len,
										  ConnectorStatus *status) CONNECTOR_NOEXCEPT;
ConnectorResult connector_delete_audience(const ConnectorGraphConfig *config,
										  const char *destination, const char *audience_id,
										  ConnectorStatus *status) CONNECTOR_NOEXCEPT;
/* Raises 42501 unless the audience belongs to the ad account (digits, without act_). */
ConnectorResult connector_check_audience_account(const ConnectorGraphConfig *config,
												 const char *destination, const char *audience_id,
												 const char *ad_account_id,
												 ConnectorStatus *status) CONNECTOR_NOEXCEPT;

/*
 * Exports. An encoder resolves a segment's mapping once (every mistake is an
 * error before anything is sent) and turns each row into a payload row.
 */
typedef struct ConnectorExportEncoder ConnectorExportEncoder;

/*
 * NULL on error. mapping_json and key_identifier may be NULL. day_first: the
 * date columns the mapping gives no date_order read 04/01/1950 as 4 January.
 */
ConnectorExportEncoder *connector_export_encoder_new(const char *segment,
													 const char *const *column_names,
													 int column_count,
													 const char *mapping_json,
													 const char *key_identifier,
													 int day_first,
													 ConnectorStatus *status) CONNECTOR_NOEXCEPT;
void		connector_export_encoder_free(ConnectorExportEncoder *encoder) CONNECTOR_NOEXCEPT;
/* The mapped columns: how many, and each one's position among the segment's columns. */
int			connector_export_encoder_column_count(const ConnectorExportEncoder *encoder) CONNECTOR_NOEXCEPT;
int			connector_export_encoder_column(const ConnectorExportEncoder *encoder, int index) CONNECTOR_NOEXCEPT;
/* The members' format: Meta's schema and each cell's form, e.g. {"schema":["EMAIL"],"forms":"h"}. */
const char *connector_export_encoder_member_format(const ConnectorExportEncoder *encoder) CONNECTOR_NOEXCEPT;
/*
 * Which column feeds which key and how it was chosen, as a JSON object:
 * {"EMAIL": {"column": "email", "by": "name"}, "FN": {"column": "first", "by": "mapping"}}.
 */
const char *connector_export_encoder_resolved_mapping(const ConnectorExportEncoder *encoder) CONNECTOR_NOEXCEPT;
/* The mapped keys sent unhashed (EXTERN_ID, MADID), e.g. "EXTERN_ID, MADID"; "" when none. */
const char *connector_export_encoder_unhashed_keys(const ConnectorExportEncoder *encoder) CONNECTOR_NOEXCEPT;

#define CONNECTOR_SKIP_REASONS 10
#define CONNECTOR_SKIP_VALUE_TOO_LONG 4
#define CONNECTOR_SKIP_DUPLICATE 9
/* A row with a value longer than this (UTF-8 bytes) is skipped as value_too_long. */
#define CONNECTOR_MAX_VALUE_BYTES 1024
const char *connector_skip_reason_name(int reason) CONNECTOR_NOEXCEPT;

/*
 * One row, values in mapped-column order (NULL pointer: SQL NULL). On
 * CONNECTOR_VALUE *member is the audience member it makes: its identifiers
 * normalized and packed, hashed only when it is sent (valid until the next
 * call); on CONNECTOR_NO_VALUE the row is skipped for *skip_reason.
 */
ConnectorResult connector_export_encode_row(ConnectorExportEncoder *encoder,
											const char *const *values, const size_t *lengths,
											const char **member, size_t *member_len,
											int *skip_reason,
											ConnectorStatus *status) CONNECTOR_NOEXCEPT;

/*
 * fb_forget: a person named by one identifier (EMAIL, PHONE, MADID or
 * EXTERN_ID, normalized as fb_normalize does), removed from an audience with
 * a batch of one row, and looked for in the members of a ledger.
 */
typedef struct ConnectorForgotten ConnectorForgotten;
typedef struct ConnectorForgetMatcher ConnectorForgetMatcher;

/* NULL on error: another key, or a value that is not valid. */
ConnectorForgotten *connector_forgotten_new(const char *key, const char *value,
											ConnectorStatus *status) CONNECTOR_NOEXCEPT;
void		connector_forgotten_free(ConnectorForgotten *forgotten) CONNECTOR_NOEXCEPT;
/* CONNECTOR_VALUE removed; CONNECTOR_NO_VALUE the audience is gone at Meta; CONNECTOR_ERROR. */
ConnectorResult connector_forget_in_audience(const ConnectorGraphConfig *graph,
											 const ConnectorForgotten *forgotten,
											 const char *audience_id, int64_t session_id,
											 ConnectorStatus *status) CONNECTOR_NOEXCEPT;
/*
 * Removes, as they were sent, members of a ledger packed in member_format;
 * results as connector_forget_in_audience.
 */
ConnectorResult connector_forget_members_in_audience(const ConnectorGraphConfig *graph,
													 const char *member_format,
													 const char *const *members,
													 const size_t *lengths, int count,
													 const char *audience_id, int64_t session_id,
													 ConnectorStatus *status) CONNECTOR_NOEXCEPT;
/* For members packed in member_format (a ledger_format); NULL on error. */
ConnectorForgetMatcher *connector_forget_matcher_new(const ConnectorForgotten *forgotten,
													 const char *member_format,
													 ConnectorStatus *status) CONNECTOR_NOEXCEPT;
/* False when that format has no cell for the key: nothing of the person there. */
bool		connector_forget_matcher_applies(const ConnectorForgetMatcher *matcher) CONNECTOR_NOEXCEPT;
/* CONNECTOR_VALUE when the member is the person's, CONNECTOR_NO_VALUE when not. */
ConnectorResult connector_forget_matches(const ConnectorForgetMatcher *matcher, const char *member,
										 size_t member_len, ConnectorStatus *status) CONNECTOR_NOEXCEPT;
void		connector_forget_matcher_free(ConnectorForgetMatcher *matcher) CONNECTOR_NOEXCEPT;

/*
 * A preview of an export (fb_preview_export): fed each row right after
 * connector_export_encode_row encoded it, then a JSON report.
 */
typedef struct ConnectorExportPreview ConnectorExportPreview;

typedef struct ConnectorPreviewSettings
{
	const char *segment;
	int64_t		batch_size;
	int			max_parallel_requests;
	int64_t		max_profiles;
	double		read_seconds;
	double		seconds_per_batch;
	const char *estimate_basis;
} ConnectorPreviewSettings;

/* NULL on error; sample_rows exportable rows are kept, normalized. */
ConnectorExportPreview *connector_export_preview_new(const ConnectorExportEncoder *encoder,
													 int sample_rows,
													 ConnectorStatus *status) CONNECTOR_NOEXCEPT;
/*
 * The row connector_export_encode_row just encoded, with what it returned;
 * encoder NULL: a row skipped before it was encoded (value_too_long).
 */
ConnectorResult connector_export_preview_add(ConnectorExportPreview *preview,
											 const ConnectorExportEncoder *encoder,
											 ConnectorResult encoded, int skip_reason,
											 ConnectorStatus *status) CONNECTOR_NOEXCEPT;
/* The report as a JSON object, valid until the preview is freed; NULL on error. */
const char *connector_export_preview_report(ConnectorExportPreview *preview,
											const ConnectorPreviewSettings *settings,
											ConnectorStatus *status) CONNECTOR_NOEXCEPT;
void		connector_export_preview_free(ConnectorExportPreview *preview) CONNECTOR_NOEXCEPT;

/*
 * A row's source record: CONNECTOR_SOURCE_DIGEST_BYTES of digest of its
 * values and the export's configuration, then the values, so that sorting
 * records groups a row with its entry in the ledger (valid until the next
 * call).
 */
#define CONNECTOR_SOURCE_DIGEST_BYTES 16
ConnectorResult connector_export_source_record(ConnectorExportEncoder *encoder,
											   const char *const *values, const size_t *lengths,
											   const char **record, size_t *record_len,
											   ConnectorStatus *status) CONNECTOR_NOEXCEPT;
/* connector_export_encode_row for the row of a source record. */
ConnectorResult connector_export_encode_record(ConnectorExportEncoder *encoder,
											   const char *record, size_t record_len,
											   const char **member, size_t *member_len,
											   int *skip_reason,
											   ConnectorStatus *status) CONNECTOR_NOEXCEPT;
int64_t		connector_export_rejected_prehashed(const ConnectorExportEncoder *encoder) CONNECTOR_NOEXCEPT;

typedef enum ConnectorUploadOperation
{
	CONNECTOR_UPLOAD_ADD = 0,
	CONNECTOR_UPLOAD_REMOVE = 1,
	CONNECTOR_UPLOAD_REPLACE = 2
} ConnectorUploadOperation;

typedef struct ConnectorSenderConfig
{
	ConnectorUploadOperation operation;
	const char *audience_id;
	int64_t		session_id;
	int64_t		estimated_total;
	int			batch_size;
	int			max_in_flight;
	int			max_attempts;
	int64_t		base_delay_ms;
} ConnectorSenderConfig;

/* What became of one batch, as the sender reports it. */
typedef struct ConnectorBatchResult
{
	uint64_t	batch_seq;
	int64_t		rows;
	bool		succeeded;
	bool		outcome_unknown;
	int			attempts;
	int64_t		num_received;
	int64_t		num_invalid_entries;
	int			error_code;		/* Meta's code and subcode when it failed */
	int			error_subcode;
	bool		needs_reauth;	/* the token was refused */
	char		sqlstate[6];
	char		message[512];
} ConnectorBatchResult;

typedef struct ConnectorExportSender ConnectorExportSender;

/* NULL on error. The encoder gives the schema and must outlive the sender. */
ConnectorExportSender *connector_export_sender_new(const ConnectorGraphConfig *graph,
												   const ConnectorSenderConfig *config,
												   const ConnectorExportEncoder *encoder,
												   ConnectorStatus *status) CONNECTOR_NOEXCEPT;
void		connector_export_sender_free(ConnectorExportSender *sender) CONNECTOR_NOEXCEPT;
bool		connector_export_sender_accepts_rows(const ConnectorExportSender *sender) CONNECTOR_NOEXCEPT;
/* A member made by connector_export_encode_row; hashed into a payload row here. */
ConnectorResult connector_export_sender_add_member(ConnectorExportSender *sender, const char *member,
												   size_t member_len,
												   ConnectorStatus *status) CONNECTOR_NOEXCEPT;
ConnectorResult connector_export_sender_finish(ConnectorExportSender *sender,
											   ConnectorStatus *status) CONNECTOR_NOEXCEPT;
/* Fills up to max_results results; *result_count says how many. */
ConnectorResult connector_export_sender_poll(ConnectorExportSender *sender, int timeout_ms,
											 ConnectorBatchResult *results, int max_results,
											 int *result_count,
											 ConnectorStatus *status) CONNECTOR_NOEXCEPT;
bool		connector_export_sender_done(const ConnectorExportSender *sender) CONNECTOR_NOEXCEPT;

/*
 * Closes a replace session an interrupted run left open (Meta keeps it open
 * for 90 minutes and refuses another replace meanwhile), with one final batch
 * holding one member. A session already finished, timed out or never opened
 * counts as closed.
 */
ConnectorResult connector_close_replace_session(const ConnectorGraphConfig *graph,
												const ConnectorExportEncoder *encoder,
												const char *audience_id, int64_t session_id,
												const char *member, size_t member_len,
												ConnectorStatus *status) CONNECTOR_NOEXCEPT;

/* Test hook: 0 none, 1 the core throws std::bad_alloc, 2 it throws std::logic_error. */
void		connector_inject_fault(int fault) CONNECTOR_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif							/* CONNECTOR_SHIM_H */
