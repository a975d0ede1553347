/*
 * connector's settings (GUCs), defined once in _PG_init.
 */
#ifndef CONNECTOR_SETTINGS_H
#define CONNECTOR_SETTINGS_H

extern char *connector_key_file;
extern char *connector_graph_api_url;
extern char *connector_graph_api_version;
extern char *connector_ca_file;
extern int	connector_connect_timeout_ms;
extern int	connector_request_timeout_ms;
extern int	connector_batch_size;
extern int	connector_max_parallel_requests;
extern int	connector_max_retries;
extern int	connector_retry_base_delay_ms;
extern int	connector_max_profiles_per_export;
extern char *connector_database;
extern int	connector_max_concurrent_runs;
extern int	connector_max_crash_requeues;
extern int	connector_max_queued_runs_per_role;
extern int	connector_run_history_minutes;	/* -1: keep every run */
extern double connector_mirror_max_removal;

/* connector.date_order: how exports read a date like 04/01/1950. */
typedef enum DateOrderSetting
{
	DATE_ORDER_MDY,
	DATE_ORDER_DMY,
} DateOrderSetting;
extern int	connector_date_order;

extern void define_settings(void);

/* connector.key_file; raises an error naming the fix while it is unset or inside the data directory. */
extern const char *key_file_path(void);

/* The connector.* settings a waited run takes from the session that waits. */
extern void capture_export_settings(char *buffer, size_t size);

#endif							/* CONNECTOR_SETTINGS_H */
