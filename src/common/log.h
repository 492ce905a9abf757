/*
 * The daemons' own log: one line per event on stderr with time, level,
 * subsystem and message.  Build output is data and never goes here.
 * Level from KILN_LOG (debug|info|warn|error), default info.
 */
#ifndef KILN_LOG_H
#define KILN_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
/* Reads KILN_LOG from the environment. */
void log_init_from_env(void);
int log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *subsys, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Each file sets LOG_SUBSYS before including this header, or gets "kiln". */
#ifndef LOG_SUBSYS
#define LOG_SUBSYS "kiln"
#endif

#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_enabled(LOG_DEBUG))                                                        \
			log_msg(LOG_DEBUG, LOG_SUBSYS, __VA_ARGS__);                               \
	} while (0)
#define log_info(...) log_msg(LOG_INFO, LOG_SUBSYS, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, LOG_SUBSYS, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, LOG_SUBSYS, __VA_ARGS__)

/* Log with ": <error text>" appended; evaluate to r (which is negative). */
int log_errno_msg(enum log_level level, const char *subsys, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#define log_error_errno(r, ...) log_errno_msg(LOG_ERROR, LOG_SUBSYS, (r), __VA_ARGS__)
#define log_warn_errno(r, ...) log_errno_msg(LOG_WARN, LOG_SUBSYS, (r), __VA_ARGS__)

#endif
