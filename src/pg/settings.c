/*
 * Settings. Anything that decides where an access token is sent (the API URL,
 * the CA) or where the key that decrypts tokens lives is superuser-only: a
 * role that could change it could send a destination's token to a server of
 * its own.
 */
#include "postgres.h"

#include <limits.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "connector_shim.h"
#include "settings.h"

char	   *connector_key_file = NULL;
char	   *connector_graph_api_url = NULL;
char	   *connector_graph_api_version = NULL;
char	   *connector_ca_file = NULL;
int			connector_connect_timeout_ms = 10000;
int			connector_request_timeout_ms = 120000;
int			connector_batch_size = 10000;
int			connector_max_parallel_requests = 4;
int			connector_max_retries = 7;
int			connector_retry_base_delay_ms = 2000;
int			connector_max_profiles_per_export = 10000000;
char	   *connector_database = NULL;
int			connector_max_concurrent_runs = 2;
int			connector_max_crash_requeues = 1;
int			connector_run_history_minutes = 90 * 24 * 60;
int			connector_max_queued_runs_per_role = 20;
double		connector_mirror_max_removal = 0.5;
int			connector_date_order = DATE_ORDER_MDY;

static const struct config_enum_entry date_order_options[] = {
	{"MDY", DATE_ORDER_MDY, false},
	{"DMY", DATE_ORDER_DMY, false},
	{"mdy", DATE_ORDER_MDY, true},
	{"dmy", DATE_ORDER_DMY, true},
	{NULL, 0, false}
};

/* Developer setting: makes the core throw, to test the error funnel. */
static int	debug_inject_fault = 0;

static const struct config_enum_entry fault_options[] = {
	{"none", 0, false},
	{"out_of_memory", 1, false},
	{"internal_error", 2, false},
	{NULL, 0, false}
};

static void
assign_debug_inject_fault(int newval, void *extra)
{
	connector_inject_fault(newval);
}

void
define_settings(void)
{
	DefineCustomStringVariable("connector.key_file",
							   "File holding the key that encrypts access tokens and app secrets.",
							   "An absolute path outside the data directory; created with mode 0600 when the first secret is stored. No secret can be stored while it is empty.",
							   &connector_key_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("connector.graph_api_url",
							   "Base URL of the Graph API.",
							   "https only; plain http is accepted for a loopback host (a local simulator).",
							   &connector_graph_api_url,
							   "https://graph.facebook.com",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("connector.graph_api_version",
							   "Graph API version used in every request path.",
							   NULL,
							   &connector_graph_api_version,
							   "v26.0",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("connector.ca_file",
							   "CA certificates (PEM) trusted for the Graph API's TLS certificate.",
							   "Empty: the system's trusted CAs.",
							   &connector_ca_file,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("connector.connect_timeout",
							"Time allowed to connect to the Graph API.",
							NULL,
							&connector_connect_timeout_ms,
							10000, 100, 600000,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("connector.request_timeout",
							"Time allowed for one Graph API request, upload included.",
							NULL,
							&connector_request_timeout_ms,
							120000, 1000, 3600000,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("connector.batch_size",
							"Rows per Graph API request of an export (Meta's maximum is 10,000).",
							NULL,
							&connector_batch_size,
							10000, 1, 10000,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("connector.max_parallel_requests",
							"Graph API requests an export keeps in flight at once.",
							NULL,
							&connector_max_parallel_requests,
							4, 1, 64,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("connector.max_retries",
							"Retries of one batch after throttling or temporary failures.",
							NULL,
							&connector_max_retries,
							7, 0, 100,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("connector.retry_base_delay",
							"First retry delay; it doubles per retry, with jitter, up to 15 minutes.",
							"Throttling answers that say how long to wait take precedence.",
							&connector_retry_base_delay_ms,
							2000, 10, 600000,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("connector.max_profiles_per_export",
							"Largest segment an export sends; a larger one fails before anything is sent.",
							NULL,
							&connector_max_profiles_per_export,
							10000000, 1, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	/* A server-start setting can only be defined while the library is preloaded. */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomStringVariable("connector.database",
								   "Database whose queued export runs the background worker starts.",
								   "Needs connector in shared_preload_libraries.",
								   &connector_database,
								   "postgres",
								   PGC_POSTMASTER,
								   0,
								   NULL, NULL, NULL);

	DefineCustomIntVariable("connector.max_concurrent_runs",
							"Export runs the background worker runs at the same time.",
							NULL,
							&connector_max_concurrent_runs,
							2, 1, 64,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomRealVariable("connector.mirror_max_removal",
							 "Largest share of an export's members a mirror run may remove; a run that would remove more fails before sending.",
							 "Captured with the run when it is queued. 1 allows emptying the audience.",
							 &connector_mirror_max_removal,
							 0.5, 0.0, 1.0,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("connector.date_order",
							 "How exports read a date whose first two numbers could each be the month: MDY (month first, Meta's example) or DMY (day first).",
							 "Captured with the run when it is queued; a mapping's own \"date_order\" for a column wins. The SQL functions never read it: fb_normalize_dob takes the order as an argument.",
							 &connector_date_order,
							 DATE_ORDER_MDY,
							 date_order_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("connector.max_queued_runs_per_role",
							"Export runs one role may have waiting in the queue at once.",
							"Beyond it, queueing another fails; runs waited for (wait => true) do not count.",
							&connector_max_queued_runs_per_role,
							20, 1, 100000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("connector.run_history",
							"How long finished export runs are kept; the background worker deletes older ones once a day.",
							"The last run of every export is always kept. -1 keeps every run.",
							&connector_run_history_minutes,
							90 * 24 * 60, -1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);

	DefineCustomIntVariable("connector.max_crash_requeues",
							"Times a run whose worker died is queued again before it fails for good.",
							"A run interrupted by a server restart is always queued again.",
							&connector_max_crash_requeues,
							1, 0, 10,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("connector.debug_inject_fault",
							 "Makes the C++ core throw on its next calls (for tests).",
							 "none, out_of_memory (std::bad_alloc) or internal_error.",
							 &debug_inject_fault,
							 0,
							 fault_options,
							 PGC_SUSET,
							 GUC_NOT_IN_SAMPLE,
							 NULL,
							 assign_debug_inject_fault,
							 NULL);

	MarkGUCPrefixReserved("connector");
}

const char *
key_file_path(void)
{
	if (connector_key_file == NULL || connector_key_file[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("connector.key_file is not set"),
				 errdetail("Access tokens and app secrets are stored encrypted under a key kept in a file outside the data directory, so that a copy of the data directory or a base backup alone does not reveal them."),
				 errhint("As a superuser, choose a path outside the data directory, writable by the server's operating system user: ALTER SYSTEM SET connector.key_file = '/etc/postgresql/connector.key'; SELECT pg_reload_conf(); The file is created with mode 0600 when the first secret is stored.")));
	if (!is_absolute_path(connector_key_file) || path_is_prefix_of_path(DataDir, connector_key_file))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("connector.key_file \"%s\" is not an absolute path outside the data directory",
						connector_key_file),
				 errdetail("A base backup or a copy of the data directory would hold the key next to the secrets it protects."),
				 errhint("Move the key file outside the data directory and set connector.key_file to its absolute path.")));
	return connector_key_file;
}

/*
 * The connector.* settings a waited run takes from the session that waits
 * for it, as "name\tvalue\n" lines: the run behaves as that session.
 */
void
capture_export_settings(char *buffer, size_t size)
{
	static const char *const names[] = {
		"connector.graph_api_url", "connector.graph_api_version", "connector.ca_file",
		"connector.connect_timeout", "connector.request_timeout", "connector.batch_size",
		"connector.max_parallel_requests", "connector.max_retries", "connector.retry_base_delay",
		"connector.max_profiles_per_export", "connector.mirror_max_removal", "connector.date_order",
	};
	StringInfoData settings;
	int			i;

	initStringInfo(&settings);
	for (i = 0; i < lengthof(names); i++)
		appendStringInfo(&settings, "%s\t%s\n", names[i], GetConfigOption(names[i], false, false));
	if (settings.len >= size)
		elog(ERROR, "connector settings too long to hand to the export worker");
	memcpy(buffer, settings.data, settings.len + 1);
}
