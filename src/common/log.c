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

#include "common/xalloc.h"

/* the longest message text kept whole; longer ones end in a visible marker */
#define LOG_MSG_MAX 8192
/* the longest error text (err_str()) appended after ': ' */
#define LOG_SUFFIX_MAX 512

/* the longest build/worker/... value copied into a JSON member */
#define LOG_FIELD_MAX 256

static enum log_level log_level = LOG_INFO;
static enum log_format log_format = LOG_FORMAT_TEXT;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
	log_level = level;
}

void log_set_format(enum log_format format)
{
	log_format = format;
}

int log_set_format_name(const char *name)
{
	if (!strcmp(name, "text"))
		log_format = LOG_FORMAT_TEXT;
	else if (!strcmp(name, "json"))
		log_format = LOG_FORMAT_JSON;
	else
		return -1;
	return 0;
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

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f; /* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* Appends s[0..len) as the inside of a JSON string: control characters
 * escaped, invalid UTF-8 bytes as U+FFFD (the line stays valid JSON). */
static int json_add_escaped(struct buf *b, const char *s, size_t len)
{
	int r = 0;
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; r >= 0 && i < len;) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			r = buf_addf(b, "\\%c", c);
			i++;
		} else if (c == '\n') {
			r = buf_adds(b, "\\n");
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			r = buf_addf(b, "\\u%04x", c);
			i++;
		} else if (c < 0x80) {
			r = buf_addch(b, (char)c);
			i++;
		} else {
			size_t n = utf8_len(p + i, len - i);
			if (n) {
				r = buf_add(b, p + i, n);
				i += n;
			} else {
				r = buf_adds(b, "\\ufffd");
				i++;
			}
		}
	}
	return r;
}

/* The keys of a message's "key=value" words copied into JSON members;
 * numeric ones become numbers. */
static const struct {
	const char *key;
	bool number;
} log_fields[] = {
	{"build", true},
	{"request", true},
	{"builder", false},
	{"worker", false},
};

/* Appends ,"key":value for the first key=value word of each log_fields key. */
static int json_add_fields(struct buf *b, const char *msg, size_t mlen)
{
	int r = 0;
	for (size_t f = 0; r >= 0 && f < ARRAY_SIZE(log_fields); f++) {
		size_t kl = strlen(log_fields[f].key);
		for (size_t i = 0; i + kl < mlen; i++) {
			if ((i > 0 && msg[i - 1] != ' ' && msg[i - 1] != '(') ||
			    strncmp(msg + i, log_fields[f].key, kl) || msg[i + kl] != '=')
				continue;
			const char *v = msg + i + kl + 1;
			size_t vl = 0;
			while (v + vl < msg + mlen && !strchr(" :,;)", v[vl]))
				vl++;
			if (vl == 0)
				continue;
			if (vl > LOG_FIELD_MAX)
				vl = LOG_FIELD_MAX;
			bool digits = vl < 19;
			for (size_t k = 0; digits && k < vl; k++)
				digits = v[k] >= '0' && v[k] <= '9';
			if (log_fields[f].number && digits && (v[0] != '0' || vl == 1)) {
				r = buf_addf(b, ",\"%s\":%.*s", log_fields[f].key, (int)vl, v);
			} else if (!log_fields[f].number) {
				r = buf_addf(b, ",\"%s\":\"", log_fields[f].key);
				if (r >= 0)
					r = json_add_escaped(b, v, vl);
				if (r >= 0)
					r = buf_addch(b, '"');
			}
			break;
		}
	}
	return r;
}

int log_format_line(struct buf *b, enum log_format format, const struct timeval *tv,
		    enum log_level level, const char *subsys, const char *msg, size_t mlen,
		    int full_len, const char *suffix)
{
	struct tm tm;
	time_t sec = tv->tv_sec;
	gmtime_r(&sec, &tm);
	char when[32];
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	int r;

	if (format == LOG_FORMAT_JSON) {
		r = buf_addf(b, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"subsys\":\"", when,
			     (long)(tv->tv_usec / 1000), level_names[level]);
		if (r >= 0)
			r = json_add_escaped(b, subsys, strlen(subsys));
		if (r >= 0)
			r = buf_adds(b, "\",\"msg\":\"");
		if (r >= 0)
			r = json_add_escaped(b, msg, mlen);
		if (r >= 0 && full_len < 0)
			r = buf_adds(b, "(unformattable log message)");
		if (r >= 0 && full_len >= 0 && (size_t)full_len > mlen)
			r = buf_addf(b, "... [%d bytes, cut]", full_len);
		if (r >= 0 && suffix) {
			r = buf_adds(b, ": ");
			if (r >= 0)
				r = json_add_escaped(b, suffix, strnlen(suffix, LOG_SUFFIX_MAX));
		}
		if (r >= 0)
			r = buf_addch(b, '"');
		if (r >= 0)
			r = json_add_fields(b, msg, mlen);
		if (r >= 0)
			r = buf_adds(b, "}\n");
		return r;
	}

	r = buf_addf(b, "%s.%03ldZ %-5s %s: ", when, (long)(tv->tv_usec / 1000), level_names[level],
		     subsys);
	/* escape control characters so user-controlled text cannot forge lines */
	for (size_t i = 0; r >= 0 && i < mlen; i++) {
		unsigned char c = (unsigned char)msg[i];
		if (c < 0x20 || c == 0x7f)
			r = buf_addf(b, "\\x%02x", c);
		else
			r = buf_addch(b, (char)c);
	}
	if (r >= 0 && full_len < 0)
		r = buf_adds(b, "(unformattable log message)");
	if (r >= 0 && full_len >= 0 && (size_t)full_len > mlen)
		r = buf_addf(b, "... [%d bytes, cut]", full_len);
	if (r >= 0 && suffix) /* err_str() text: short; the cap keeps the room sum true */
		r = buf_addf(b, ": %.*s", LOG_SUFFIX_MAX, suffix);
	if (r >= 0)
		r = buf_addch(b, '\n');
	return r;
}

static void log_vmsg(enum log_level level, const char *subsys, const char *suffix, const char *fmt,
		     va_list ap)
{
	if (!log_enabled(level))
		return;
	struct timeval tv;
	gettimeofday(&tv, NULL);

	/* A message past LOG_MSG_MAX is cut visibly, never silently: the text is
	 * formatted into a fixed array (vsnprintf tells the whole length). */
	char msg[LOG_MSG_MAX];
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t mlen = n < 0 ? 0 : (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;

	/* room for the prefix (time, level, subsys: under 128), every byte escaped
	 * (text: 4x, JSON: 6x), the cut marker, the suffix (escaped) and the JSON
	 * members (4 values of at most LOG_FIELD_MAX bytes, escaped) */
	struct buf b;
	buf_init(&b, 6 * LOG_MSG_MAX + 6 * LOG_SUFFIX_MAX + 4 * (6 * LOG_FIELD_MAX + 32) + 1024);
	int r = log_format_line(&b, log_format, &tv, level, subsys, msg, mlen, n, suffix);
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
