/*
 * Logging for sottod: to stderr (always) and to syslog (when enabled).
 * Messages never contain key material or message contents.  Not thread-safe:
 * sottod logs from its one event-loop thread.
 */
#ifndef SOTTO_LOG_H
#define SOTTO_LOG_H

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Set the program name, the threshold and whether to copy to syslog. */
void log_open(const char *progname, enum log_level level, int use_syslog);
void log_set_level(enum log_level level);
int log_debug_enabled(void);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
