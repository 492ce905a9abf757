/*
 * Daemon logging to stderr; see log.h.
 */
#include "common/log.h"
#include "common/err.h"
#include "common/buf.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/time.h>

/* the longest message text kept whole; longer ones end in a visible marker */
#define LOG_MSG_MAX 8192
/* the longest error text (err_str()) appended after ': ' */
#define LOG_SUFFIX_MAX 512

static enum log_level log_level = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
	log_level = level;
}

void log_init_from_env(void)
{
	const char *s = getenv("KILN_LOG");
	if (!s)
		return;
	for (int i = 0; i <= LOG_ERROR; i++)
		if (!strcmp(s, level_names[i]))
			log_level = (enum log_level)i;
}

int log_enabled(enum log_level level)
{
	return level >= log_level;
}

static void log_vmsg(enum log_level level, const char *subsys, const char *suffix, const char *fmt,
		     va_list ap)
{
	if (!log_enabled(level))
		return;
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	char when[32];
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

	/* A message past LOG_MSG_MAX is cut visibly, never silently: the text is
	 * formatted into a fixed array (vsnprintf tells the whole length). */
	char msg[LOG_MSG_MAX];
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t mlen = n < 0 ? 0 : (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;

	/* room for the prefix (time, level, subsys: under 128), every byte escaped
	 * (4x), the cut marker and the suffix */
	struct buf b;
	buf_init(&b, 4 * LOG_MSG_MAX + 1024);
	int r = buf_addf(&b, "%s.%03ldZ %-5s %s: ", when, (long)(tv.tv_usec / 1000),
			 level_names[level], subsys);
	/* escape control characters so user-controlled text cannot forge lines */
	for (size_t i = 0; r >= 0 && i < mlen; i++) {
		unsigned char c = (unsigned char)msg[i];
		if (c < 0x20 || c == 0x7f)
			r = buf_addf(&b, "\\x%02x", c);
		else
			r = buf_addch(&b, (char)c);
	}
	if (r >= 0 && n < 0)
		r = buf_adds(&b, "(unformattable log message)");
	if (r >= 0 && n >= 0 && (size_t)n > mlen)
		r = buf_addf(&b, "... [%d bytes, cut]", n);
	if (r >= 0 && suffix) /* err_str() text: short; the cap keeps the room sum true */
		r = buf_addf(&b, ": %.*s", LOG_SUFFIX_MAX, suffix);
	if (r >= 0)
		r = buf_addch(&b, '\n');
	/* the room above holds the longest line this function can build */
	assert(r >= 0);
	(void)r;
	fwrite(b.ptr, 1, b.len, stderr);
	buf_release(&b);
}

void log_msg(enum log_level level, const char *subsys, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, subsys, NULL, fmt, ap);
	va_end(ap);
}

int log_errno_msg(enum log_level level, const char *subsys, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, subsys, err_str(r), fmt, ap);
	va_end(ap);
	return r;
}
