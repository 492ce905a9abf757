/*
 * The IRC reporter's pure pieces (src/master/reporters/irc-proto.c): the
 * line parser, the nick of a prefix, commands addressed to the bot, the
 * 512-byte line builder and the token-bucket rate limiter.
 */
#include "tap.h"
#include "master/reporters/irc.h"

#include <errno.h>
#include <string.h>

static int parse(const char *s, struct irc_msg *m)
{
	return irc_parse_line(s, strlen(s), m);
}

TEST(parse)
{
	static struct irc_msg m;
	CHECK_INT(parse(":nick!u@h PRIVMSG #ci :kiln: last hello world\r\n", &m), 0);
	CHECK_STR(m.prefix, "nick!u@h");
	CHECK_STR(m.command, "PRIVMSG");
	CHECK_INT(m.nparams, 2);
	CHECK_STR(m.params[0], "#ci");
	CHECK_STR(m.params[1], "kiln: last hello world");

	CHECK_INT(parse("PING :irc.example.org", &m), 0);
	CHECK(m.prefix == NULL);
	CHECK_STR(m.command, "PING");
	CHECK_STR(m.params[0], "irc.example.org");

	CHECK_INT(parse(":srv 433 * kiln :Nickname already in use\n", &m), 0);
	CHECK_STR(m.command, "433");
	CHECK_INT(m.nparams, 3);
	CHECK_STR(m.params[1], "kiln");

	/* extra spaces, no trailing, IRCv3 tags skipped */
	CHECK_INT(parse("@time=x :a!b@c   JOIN    #ci  ", &m), 0);
	CHECK_STR(m.command, "JOIN");
	CHECK_INT(m.nparams, 1);
	CHECK_STR(m.params[0], "#ci");

	/* an empty trailing parameter */
	CHECK_INT(parse("PRIVMSG #ci :", &m), 0);
	CHECK_INT(m.nparams, 2);
	CHECK_STR(m.params[1], "");

	/* 15 parameters at most: the 15th takes the rest */
	CHECK_INT(parse("CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17", &m), 0);
	CHECK_INT(m.nparams, IRC_MAX_PARAMS);
	CHECK_STR(m.params[14], "15 16 17");

	/* bad lines */
	CHECK_INT(parse("", &m), -EINVAL);
	CHECK_INT(parse("\r\n", &m), -EINVAL);
	CHECK_INT(parse(":prefixonly", &m), -EINVAL);
	CHECK_INT(parse(":p ", &m), -EINVAL);
	CHECK_INT(parse("@tagsonly", &m), -EINVAL);
	CHECK_INT(parse("PRI/VMSG x", &m), -EINVAL);
	CHECK_INT(irc_parse_line("PING\0x", 6, &m), -EINVAL);
	static char big[IRC_MAX_IN_LINE + 10];
	memset(big, 'A', sizeof(big) - 1);
	CHECK_INT(parse(big, &m), -EINVAL);
	big[IRC_MAX_IN_LINE] = '\0';
	CHECK_INT(parse(big, &m), 0);
}

TEST(prefix_and_addressed)
{
	char nick[16];
	CHECK(irc_prefix_nick("ann!a@host", nick, sizeof(nick)));
	CHECK_STR(nick, "ann");
	CHECK(irc_prefix_nick("irc.example.org", nick, sizeof(nick)));
	CHECK(!irc_prefix_nick("averyveryverylongnick!x@y", nick, sizeof(nick)));
	CHECK(!irc_prefix_nick("!x@y", nick, sizeof(nick)));
	CHECK(!irc_prefix_nick(NULL, nick, sizeof(nick)));

	const char *rest = NULL;
	CHECK(irc_addressed("kiln: status", "kiln", &rest));
	CHECK_STR(rest, "status");
	CHECK(irc_addressed("KILN,   last hello", "kiln", &rest));
	CHECK_STR(rest, "last hello");
	CHECK(!irc_addressed("kilnx: status", "kiln", &rest));
	CHECK(!irc_addressed("kiln status", "kiln", &rest));
	CHECK(!irc_addressed("hello kiln: status", "kiln", &rest));
}

TEST(format)
{
	char out[IRC_MAX_LINE + 1];
	CHECK_INT(irc_format(out, sizeof(out), "PRIVMSG", "#ci", "hello"), 20);
	CHECK_STR(out, "PRIVMSG #ci :hello\r\n");
	/* CR and LF in the text cannot start another command */
	CHECK(irc_format(out, sizeof(out), "PRIVMSG", "#ci", "a\r\nQUIT :x") > 0);
	CHECK_STR(out, "PRIVMSG #ci :a  QUIT :x\r\n");
	/* at most 512 bytes with CRLF, not cutting a UTF-8 character */
	static char longtext[2000];
	for (size_t i = 0; i + 2 < sizeof(longtext); i += 2)
		memcpy(longtext + i, "\xc3\xa9", 2);
	int n = irc_format(out, sizeof(out), "PRIVMSG", "#c", longtext);
	CHECK(n > 0 && n <= IRC_MAX_LINE);
	CHECK_INT((int)strlen(out), n);
	CHECK(out[n - 2] == '\r' && out[n - 1] == '\n');
	CHECK(((unsigned char)out[n - 3] & 0xc0) == 0x80); /* the last é is whole */
	CHECK_INT(n % 2, 0); /* "PRIVMSG #c :" is 12, CRLF 2, and whole 2-byte characters */
	CHECK_INT(irc_format(out, sizeof(out), "PRIVMSG", "", "x"), -EINVAL);
	CHECK_INT(irc_format(out, sizeof(out), "PRIVMSG", "#a b", "x"), -EINVAL);
	CHECK_INT(irc_format(out, 100, "PRIVMSG", "#a", "x"), -EINVAL);
}

TEST(bucket)
{
	struct irc_bucket b;
	irc_bucket_init(&b, 1.0, 3, 1000);
	/* a burst of 3, then one per second */
	CHECK(irc_bucket_take(&b, 1000));
	CHECK(irc_bucket_take(&b, 1000));
	CHECK(irc_bucket_take(&b, 1000));
	CHECK(!irc_bucket_take(&b, 1000));
	uint64_t w = irc_bucket_wait_ms(&b, 1000);
	CHECK(w >= 1000 && w <= 1001);
	CHECK(!irc_bucket_take(&b, 1500));
	CHECK(irc_bucket_take(&b, 2001));
	CHECK(!irc_bucket_take(&b, 2001));
	/* a long quiet spell refills to the burst only */
	int got = 0;
	for (int i = 0; i < 10; i++)
		got += irc_bucket_take(&b, 100000);
	CHECK_INT(got, 3);
	/* over 60 s at 1 line/s with a burst of 3: 3 + 60 lines */
	irc_bucket_init(&b, 1.0, 3, 0);
	got = 0;
	for (uint64_t t = 0; t <= 60000; t += 10)
		while (irc_bucket_take(&b, t))
			got++;
	CHECK_INT(got, 63);
	/* the clock going backwards gives nothing */
	CHECK(!irc_bucket_take(&b, 30000));
}

int main(void)
{
	RUN(parse);
	RUN(prefix_and_addressed);
	RUN(format);
	RUN(bucket);
	return tap_done();
}
