/*
 * The IRC reporter's pure pieces: line parser, command matcher, line
 * builder, rate limiter (irc.h).
 */
#include "master/reporters/irc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int irc_parse_line(const char *line, size_t len, struct irc_msg *m)
{
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	m->prefix = NULL;
	m->command = NULL;
	m->nparams = 0;
	if (len == 0 || len > IRC_MAX_IN_LINE || memchr(line, '\0', len))
		return -EINVAL;
	memcpy(m->buf, line, len);
	m->buf[len] = '\0';
	char *p = m->buf;
	if (*p == '@') { /* IRCv3 message tags: not used */
		p = strchr(p, ' ');
		if (!p)
			return -EINVAL;
	}
	while (*p == ' ')
		p++;
	if (*p == ':') {
		m->prefix = ++p;
		p = strchr(p, ' ');
		if (!p)
			return -EINVAL;
		*p++ = '\0';
		while (*p == ' ')
			p++;
	}
	if (!*p)
		return -EINVAL;
	m->command = p;
	p = strchr(p, ' ');
	while (p) {
		*p++ = '\0';
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		if (*p == ':' || m->nparams == IRC_MAX_PARAMS - 1) {
			m->params[m->nparams++] = *p == ':' ? p + 1 : p;
			break;
		}
		m->params[m->nparams++] = p;
		p = strchr(p, ' ');
	}
	for (const char *c = m->command; *c; c++)
		if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
		      (*c >= '0' && *c <= '9')))
			return -EINVAL;
	return 0;
}

bool irc_prefix_nick(const char *prefix, char *out, size_t size)
{
	if (!prefix || size == 0)
		return false;
	size_t n = strcspn(prefix, "!@");
	if (n == 0 || n >= size)
		return false;
	memcpy(out, prefix, n);
	out[n] = '\0';
	return true;
}

bool irc_addressed(const char *text, const char *nick, const char **ret_rest)
{
	size_t n = strlen(nick);
	if (n == 0 || strncasecmp(text, nick, n) || (text[n] != ':' && text[n] != ','))
		return false;
	const char *p = text + n + 1;
	while (*p == ' ' || *p == '\t')
		p++;
	*ret_rest = p;
	return true;
}

int irc_format(char *out, size_t size, const char *command, const char *target, const char *text)
{
	if (!*target || strpbrk(target, " \r\n") || size < IRC_MAX_LINE + 1)
		return -EINVAL;
	int head = snprintf(out, size, "%s %s :", command, target);
	if (head < 0 || head > IRC_MAX_LINE - 2)
		return -EINVAL;
	size_t room = IRC_MAX_LINE - 2 - (size_t)head, n = strlen(text);
	if (n > room) {
		n = room;
		/* do not cut inside a UTF-8 character */
		while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
			n--;
	}
	char *o = out + head;
	for (size_t i = 0; i < n; i++)
		o[i] = text[i] == '\r' || text[i] == '\n' ? ' ' : text[i];
	o[n] = '\r';
	o[n + 1] = '\n';
	o[n + 2] = '\0';
	return head + (int)n + 2;
}

static void irc_bucket_refill(struct irc_bucket *b, uint64_t now_ms)
{
	if (now_ms > b->last_ms) {
		b->tokens += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
	}
	b->last_ms = now_ms;
}

void irc_bucket_init(struct irc_bucket *b, double rate, double burst, uint64_t now_ms)
{
	b->rate = rate > 0 ? rate : 1;
	b->burst = burst >= 1 ? burst : 1;
	b->tokens = b->burst;
	b->last_ms = now_ms;
}

bool irc_bucket_take(struct irc_bucket *b, uint64_t now_ms)
{
	irc_bucket_refill(b, now_ms);
	if (b->tokens < 1)
		return false;
	b->tokens -= 1;
	return true;
}

uint64_t irc_bucket_wait_ms(struct irc_bucket *b, uint64_t now_ms)
{
	irc_bucket_refill(b, now_ms);
	if (b->tokens >= 1)
		return 0;
	double ms = (1 - b->tokens) * 1000.0 / b->rate;
	return (uint64_t)ms + 1;
}
