/*
 * libFuzzer target for the IRC reporter's line parser and line builder
 * (src/master/reporters/irc-proto.c): any bytes as a line from the server.
 * A parsed line has a command of letters and digits and at most 15
 * parameters, all inside the message's own buffer; a PRIVMSG built from its
 * parameters is at most 512 bytes, ends in CRLF and holds no other CR or LF.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "master/reporters/irc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_inside(const struct irc_msg *m, const char *s)
{
	if (s < m->buf || s > m->buf + sizeof(m->buf) - 1 || strlen(s) > IRC_MAX_IN_LINE)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct irc_msg m;
	if (irc_parse_line((const char *)data, size, &m) < 0)
		return 0;
	if (!m.command || !*m.command || m.nparams < 0 || m.nparams > IRC_MAX_PARAMS)
		abort();
	check_inside(&m, m.command);
	if (m.prefix)
		check_inside(&m, m.prefix);
	for (int i = 0; i < m.nparams; i++)
		check_inside(&m, m.params[i]);
	char nick[64];
	if (irc_prefix_nick(m.prefix, nick, sizeof(nick)) && (!*nick || strpbrk(nick, "!@")))
		abort();
	const char *rest;
	if (m.nparams >= 2 && irc_addressed(m.params[1], "kiln", &rest) &&
	    (rest < m.params[1] || rest > m.params[1] + strlen(m.params[1])))
		abort();
	char out[IRC_MAX_LINE + 1];
	const char *target = m.nparams ? m.params[0] : "#ci";
	int n = irc_format(out, sizeof(out), "PRIVMSG", target,
			   m.nparams >= 2 ? m.params[m.nparams - 1] : m.command);
	if (n >= 0) {
		if (n > IRC_MAX_LINE || n < 4 || (size_t)n != strlen(out) || out[n - 2] != '\r' ||
		    out[n - 1] != '\n')
			abort();
		const char *cr = strpbrk(out, "\r\n");
		if (cr != out + n - 2)
			abort();
	}
	return 0;
}
