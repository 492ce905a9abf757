/*
 * Daemon logging to stderr; see log.h.
 */
#define KILN_BUF_LAX 1 /* issue 8: buf results not yet checked in this file */
#include "common/log.h"
#include "common/err.h"
#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/time.h>

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

static void log_vmsg(enum log_level level, const char *subsys, const char *suffix,
		     const char *fmt, va_list ap)
{
	if (!log_enabled(level))
		return;
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	char when[32];
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

	struct buf b;
	buf_init(&b, 16384);
	buf_addf(&b, "%s.%03ldZ %-5s %s: ", when, (long)(tv.tv_usec / 1000), level_names[level],
		 subsys);
	struct buf msg;
	buf_init(&msg, 8192);
	buf_vaddf(&msg, fmt, ap);
	/* escape control characters so user-controlled text cannot forge lines */
	for (size_t i = 0; i < msg.len; i++) {
		unsigned char c = (unsigned char)msg.ptr[i];
		if (c < 0x20 || c == 0x7f)
			buf_addf(&b, "\\x%02x", c);
		else
			buf_addch(&b, (char)c);
	}
	if (suffix)
		buf_addf(&b, ": %s", suffix);
	buf_addch(&b, '\n');
	fwrite(b.ptr, 1, b.len, stderr);
	buf_release(&msg);
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
