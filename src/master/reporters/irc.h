/*
 * The IRC reporter's pure pieces (irc-proto.c), apart so that the unit test
 * and the fuzz target reach them without a loop: the line parser (RFC 1459 /
 * 2812 framing: [@tags] [:prefix] COMMAND params [:trailing]), the bot's
 * command matcher, the outbound line builder (at most 512 bytes with CRLF)
 * and the token-bucket rate limiter.  The connection itself: irc.c.
 */
#ifndef KILN_MASTER_REPORTERS_IRC_H
#define KILN_MASTER_REPORTERS_IRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A line on the wire, CRLF included (RFC 2812 2.3). */
#define IRC_MAX_LINE 512
/* What we accept from the server: a line, IRCv3 tags included. */
#define IRC_MAX_IN_LINE 4096
#define IRC_MAX_PARAMS 15

struct irc_msg {
	char buf[IRC_MAX_IN_LINE + 1];
	const char *prefix; /* NULL: none */
	const char *command;
	const char *params[IRC_MAX_PARAMS]; /* the trailing one included */
	int nparams;
};

/* Parses one line (without or with its CR/LF).  0, or -EINVAL when it is
 * empty, longer than IRC_MAX_IN_LINE, holds a NUL or has no command. */
int irc_parse_line(const char *line, size_t len, struct irc_msg *m);

/* The nick of a prefix "nick!user@host" (or "server.name") into out; false
 * when it does not fit. */
bool irc_prefix_nick(const char *prefix, char *out, size_t size);

/* Is text addressed to nick ("nick: cmd", "nick, cmd", case-insensitive)?
 * Then *ret_rest points at the command after the separator and spaces. */
bool irc_addressed(const char *text, const char *nick, const char **ret_rest);

/* Writes "COMMAND target :text\r\n" into out (size >= IRC_MAX_LINE + 1),
 * CR, LF and NUL in text turned into spaces, text cut (on a UTF-8
 * character boundary) so that the line is at most IRC_MAX_LINE bytes.
 * Returns the line's length, or -EINVAL when target is empty or holds a
 * space, CR or LF. */
int irc_format(char *out, size_t size, const char *command, const char *target, const char *text);

/* A token bucket: `rate` lines per second, `burst` at once. */
struct irc_bucket {
	double tokens, rate, burst;
	uint64_t last_ms;
};
void irc_bucket_init(struct irc_bucket *b, double rate, double burst, uint64_t now_ms);
/* Takes a token if there is one. */
bool irc_bucket_take(struct irc_bucket *b, uint64_t now_ms);
/* Milliseconds until a token is there (0: now). */
uint64_t irc_bucket_wait_ms(struct irc_bucket *b, uint64_t now_ms);

#endif
