/*
 * Status badges (src/master/badges.c): text widths from DejaVu Sans'
 * advance widths, the colour check, the status word of a build, and the
 * SVG: escaped texts, the right colour, widths that add up.
 */
#include "master/badges.h"

#include "common/buf.h"

#include "tap.h"

#include <stdio.h>
#include <string.h>

static unsigned badges_count(const char *hay, const char *needle)
{
	unsigned n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

TEST(text_width)
{
	CHECK_INT(badge_text_width(""), 0);
	/* s u c c e s s: 1067+1298+1126+1126+1260+1067+1067 = 8011 units,
	 * x 11 px / 2048 = 43.03, rounded up */
	CHECK_INT(badge_text_width("success"), 44);
	/* "W" is widest (2025), "i" narrow (569): 3 of each */
	CHECK_INT(badge_text_width("WWW"), (3 * 2025 * 11 + 2047) / 2048);
	CHECK_INT(badge_text_width("iii"), (3 * 569 * 11 + 2047) / 2048);
	/* two-byte characters count as one character, not two */
	CHECK_INT(badge_text_width("\xc3\xa9"), (1300 * 11 + 2047) / 2048);
	/* a CJK character is a full em */
	CHECK_INT(badge_text_width("\xe4\xb8\xad"), 11);
	/* a stray continuation byte and a truncated sequence do not run past the end */
	CHECK(badge_text_width("\x80") > 0);
	CHECK(badge_text_width("a\xe4\xb8") > badge_text_width("a"));
}

TEST(color_valid)
{
	CHECK(badge_color_valid("#555"));
	CHECK(badge_color_valid("222"));
	CHECK(badge_color_valid("#a0B1c2"));
	CHECK(!badge_color_valid(""));
	CHECK(!badge_color_valid("#"));
	CHECK(!badge_color_valid("#55"));
	CHECK(!badge_color_valid("#5555"));
	CHECK(!badge_color_valid("red"));
	CHECK(!badge_color_valid("#555\"/><script>"));
}

TEST(status)
{
	CHECK_STR(badge_status(NULL), "unknown");
	json_t *b = json_pack("{s:b, s:n}", "complete", 0, "results");
	CHECK_STR(badge_status(b), "running");
	json_object_set_new(b, "complete", json_true());
	json_object_set_new(b, "results", json_integer(0));
	CHECK_STR(badge_status(b), "success");
	json_object_set_new(b, "results", json_integer(2));
	CHECK_STR(badge_status(b), "failure");
	json_object_set_new(b, "results", json_integer(6));
	CHECK_STR(badge_status(b), "cancelled");
	json_object_set_new(b, "results", json_integer(99));
	CHECK_STR(badge_status(b), "unknown");
	json_decref(b);
}

TEST(svg)
{
	struct buf b;
	buf_init(&b, 1 << 16);
	CHECK_INT(badge_svg_render(&b, "Build <Status> & \"more\"", NULL, "failure", BADGE_FLAT),
		  0);
	CHECK_INT(buf_addch(&b, '\0'), 0);
	const char *s = b.ptr;
	CHECK(!strncmp(s, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39));
	CHECK(strstr(s, "</svg>") != NULL);
	CHECK(strstr(s, "<Status>") == NULL);
	CHECK(strstr(s, "\"more\"") == NULL);
	/* title, aria-label, shadow and text */
	CHECK_INT(badges_count(s, "Build &lt;Status&gt; &amp; &quot;more&quot;"), 4);
	CHECK(strstr(s, "fill=\"#e05d44\"") != NULL); /* failure's red */
	CHECK(strstr(s, "fill=\"#555\"") != NULL);    /* default left colour */
	unsigned lw = badge_text_width("Build <Status> & \"more\"") + 10;
	unsigned rw = badge_text_width("failure") + 10;
	char want[64];
	snprintf(want, sizeof(want), "width=\"%u\" height=\"20\"", lw + rw);
	CHECK(strstr(s, want) != NULL);
	snprintf(want, sizeof(want), "<rect x=\"%u\" width=\"%u\"", lw, rw);
	CHECK(strstr(s, want) != NULL);
	CHECK(strstr(s, "linearGradient") != NULL);
	CHECK_INT(badges_count(s, "<text "), 4);

	buf_reset(&b);
	CHECK_INT(badge_svg_render(&b, "ci", "222", "success", BADGE_FLAT_SQUARE), 0);
	CHECK_INT(buf_addch(&b, '\0'), 0);
	s = b.ptr;
	CHECK(strstr(s, "fill=\"#222\"") != NULL);
	CHECK(strstr(s, "fill=\"#4c1\"") != NULL);
	CHECK(strstr(s, "linearGradient") == NULL);
	CHECK(strstr(s, "rx=") == NULL);
	CHECK_INT(badges_count(s, "<text "), 2);

	buf_reset(&b);
	CHECK_INT(badge_svg_render(&b, "x", NULL, "cancelled", BADGE_FLAT), 0);
	CHECK_INT(buf_addch(&b, '\0'), 0);
	CHECK(strstr(b.ptr, "fill=\"#9f9f9f\"") != NULL);
	buf_release(&b);

	/* a full buffer fails, never a cut document passed off as whole */
	buf_init(&b, 100);
	CHECK(badge_svg_render(&b, "x", NULL, "success", BADGE_FLAT) < 0);
	buf_release(&b);
}

int main(void)
{
	RUN(text_width);
	RUN(color_valid);
	RUN(status);
	RUN(svg);
	return tap_done();
}
