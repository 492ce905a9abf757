/*
 * The IRC reporter's pure pieces (src/master/reporters/irc-proto.c): the
 * line parser, the nick of a prefix, commands addressed to the bot, the
 * 512-byte line builder and the token-bucket rate limiter; and what
 * reporter { kind = "irc" } copies (src/config/config-reporter-irc.c) with
 * its errors.
 */
#include "tap.h"
#include "config-test.h"
#include "config/config.h"
#include "master/reporters/irc.h"

#include <errno.h>
#include <stdlib.h>
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

#define W "worker { name = \"w1\", password = secret(\"pw\") }\n"
#define B                                                                                          \
	"builder { name = \"app\", workers = { \"w1\" }, steps = { shell { command = \"make\" } "  \
	"} }\n"

TEST(config)
{
	setenv("KILN_SECRET_PW", "x", 1);
	setenv("KILN_SECRET_IRC", "hunter2", 1);
	struct config *cfg = CONFIG_TEST_LOAD_OK(
		W B
		"reporter { kind = \"irc\", host = \"irc.example.org\", channels = \"#ci\" }\n"
		"reporter { kind = \"irc\", name = \"chat\", host = \"127.0.0.1\", port = 6697,\n"
		"  nick = \"ci-bot\", channels = { \"#a\", \"&b\" }, password = secret(\"irc\"),\n"
		"  notify = { \"failing\", \"passing\" }, builders = { \"app\" }, rate = 0.5,\n"
		"  burst = 2, allow_force = true }\n");
	if (!cfg)
		return;
	CHECK_INT(cfg->nreporters, 2);
	const struct config_reporter *r = &cfg->reporter[0];
	CHECK_INT(r->kind, CONFIG_REPORTER_IRC);
	CHECK_STR(r->name, "irc");
	CHECK_STR(r->irc.host, "irc.example.org");
	CHECK_INT(r->irc.port, 6667);
	CHECK_STR(r->irc.nick, "kiln");
	CHECK_INT(r->irc.nchannels, 1);
	CHECK_STR(r->irc.channels[0], "#ci");
	CHECK(r->irc.password == NULL);
	CHECK(r->irc.rate == 1);
	CHECK_INT(r->irc.burst, 4);
	CHECK(!r->irc.allow_force);
	CHECK_INT(r->filter.modes, CONFIG_REPORT_FAILING);
	r = &cfg->reporter[1];
	CHECK_STR(r->name, "chat");
	CHECK_INT(r->irc.port, 6697);
	CHECK_STR(r->irc.nick, "ci-bot");
	CHECK_INT(r->irc.nchannels, 2);
	CHECK_STR(r->irc.channels[1], "&b");
	CHECK_STR(r->irc.password, "hunter2");
	CHECK(r->irc.rate == 0.5);
	CHECK_INT(r->irc.burst, 2);
	CHECK(r->irc.allow_force);
	CHECK_INT(r->filter.modes, CONFIG_REPORT_FAILING | CONFIG_REPORT_PASSING);
	CHECK_INT(r->filter.nbuilders, 1);
	config_free(cfg);

#define R "reporter { kind = \"irc\", "
	CHECK_ERR(W B R "channels = \"#ci\" }",
		  "master.lua:3: reporter 'irc': 'host' is required: host = \"irc.example.org\"");
	CHECK_ERR(W B R "host = \"a b\", channels = \"#ci\" }",
		  "master.lua:3: reporter 'irc': 'host' must be a host name or a numeric address "
		  "(letters, digits, '.', '-', '_', ':'), got 'a b'");
	CHECK_ERR_HAS(W B R "host = \"h\", channels = { \"#a b\" } }",
		      "master.lua:3: reporter 'irc': channels[1] must be a channel name");
	CHECK_ERR_HAS(W B R "host = \"h\", channels = { } }",
		      "master.lua:3: reporter 'irc': 'channels' must list 1 to 16 channels");
	CHECK_ERR_HAS(W B R "host = \"h\", channels = \"#ci\", nick = \"a b\" }",
		      "master.lua:3: reporter 'irc': 'nick' must be an IRC nick");
	CHECK_ERR_HAS(W B R "host = \"h\", channels = \"#ci\", port = 0 }", "'port'");
	CHECK_ERR(W B R "host = \"h\", channels = \"#ci\", password = \"p\" }",
		  "master.lua:3: reporter 'irc': 'password' must come from secret(...): "
		  "password = secret(\"irc\")");
	CHECK_ERR(W B R "host = \"h\", channels = \"#ci\", notify = \"all\", mode = \"all\" }",
		  "master.lua:3: reporter 'irc': give 'notify' or 'mode', not both (they are the "
		  "same filter)");
	CHECK_ERR_HAS(W B R "host = \"h\", channels = \"#ci\", notify = { \"often\" } }",
		      "reporter 'irc': 'notify': unknown mode 'often'");
	CHECK_ERR(W B R "host = \"h\", channels = \"#ci\", rate = 0 }",
		  "master.lua:3: reporter 'irc': 'rate' must be more than 0 and at most 100 lines "
		  "per second");
	CHECK_ERR_HAS(W B R "host = \"h\", channels = \"#ci\", burst = 0 }", "'burst'");
	CHECK_ERR_HAS(W B R "host = \"h\", channels = \"#ci\", colour = true }",
		      "unknown key 'colour'");
#undef R
}

int main(void)
{
	RUN(config);
	RUN(parse);
	RUN(prefix_and_addressed);
	RUN(format);
	RUN(bucket);
	return tap_done();
}
