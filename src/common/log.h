/*
 * The daemons' own log: one line per event on stderr with time, level,
 * subsystem and message.  Build output is data and never goes here.
 * Level from KILN_LOG (debug|info|warn|error), default info.
 *
 * Two formats (slice "operator"; docs/OPERATING.md "Logs"):
 *   text  2026-01-02T03:04:05.678Z info  master: build=12 builder=b ...: message
 *   json  {"ts":"2026-01-02T03:04:05.678Z","level":"info","subsys":"master",
 *          "msg":"build=12 builder=b ...","build":12,"builder":"b"}
 * A line about a build, a worker, a builder or a request carries
 * build=N, worker=NAME, builder=NAME, request=N in its text; the JSON
 * format also gives them as members (numbers for build and request).
 */
#ifndef KILN_LOG_H
#define KILN_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

void log_set_level(enum log_level level);
void log_set_format(enum log_format format);
/* "text" or "json": 0, else -1 (nothing changed). */
int log_set_format_name(const char *name);
/* Reads KILN_LOG from the environment. */
void log_init_from_env(void);
int log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *subsys, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Each file sets LOG_SUBSYS before including this header, or gets "kiln". */
#ifndef LOG_SUBSYS
#define LOG_SUBSYS "kiln"
struct buf;
struct timeval;
/*
 * Formats one log line, '\n' included, into out (what log_msg writes):
 * msg is mlen bytes of the message; full_len its whole length before a cut
 * (> mlen: a visible cut marker is added; < 0: the message could not be
 * formatted); suffix, if not NULL, the error text appended after ": ".
 * Errors: out's cap.  For the unit tests and log_msg.
 */
int log_format_line(struct buf *out, enum log_format format, const struct timeval *tv,
		    enum log_level level, const char *subsys, const char *msg, size_t mlen,
		    int full_len, const char *suffix);

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

struct buf;
struct timeval;
/*
 * Formats one log line, '\n' included, into out (what log_msg writes):
 * msg is mlen bytes of the message; full_len its whole length before a cut
 * (> mlen: a visible cut marker is added; < 0: the message could not be
 * formatted); suffix, if not NULL, the error text appended after ": ".
 * Errors: out's cap.  For the unit tests and log_msg.
 */
int log_format_line(struct buf *out, enum log_format format, const struct timeval *tv,
		    enum log_level level, const char *subsys, const char *msg, size_t mlen,
		    int full_len, const char *suffix);

#endif
