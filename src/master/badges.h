/*
 * Status badges (badges.c): GET /badges/BUILDER.svg, the shape of
 * Buildbot's badges plugin (/plugins/badges/NAME.svg there): the result of
 * the builder's latest build ("running" while it runs, "unknown" without
 * one) as an SVG image, with ?left_text=, ?left_color=, ?style=flat or
 * flat-square, and Kiln's ?branch= (the latest build whose "branch"
 * property is that branch).  The SVG is made here from a template, text
 * widths from a per-character table of DejaVu Sans at 11 px; answers carry
 * a short Cache-Control max-age and an ETag.  Pure parts unit-tested in
 * tests/unit/test-badges.c.
 */
#ifndef KILN_MASTER_BADGES_H
#define KILN_MASTER_BADGES_H

#include <stdbool.h>

#include <jansson.h>

struct buf;
struct http_req;

enum badge_style { BADGE_FLAT, BADGE_FLAT_SQUARE };

/* Width in pixels of UTF-8 text set in DejaVu Sans 11 px, rounded up
 * (ASCII from the font's advance widths; other characters estimated: an
 * em below U+0800 ... a full em above; invalid bytes as U+FFFD). */
unsigned badge_text_width(const char *text);

/* Whether s is a colour ?left_color= may give: 3 or 6 hex digits, with or
 * without '#' (anything else could break out of the attribute). */
bool badge_color_valid(const char *s);

/* The right-hand word for the latest build (a /api/v2 build object, or
 * NULL): "running" if not complete, its results' name ("success",
 * "failure", ...), "unknown" without a build. */
const char *badge_status(json_t *build);

/* Appends the SVG: left_text (any text, escaped) on left_color (NULL:
 * "#555"; must pass badge_color_valid, '#' optional), status as the right
 * text on the colour of Buildbot's scheme for it.  Errors: out's cap. */
int badge_svg_render(struct buf *out, const char *left_text, const char *left_color,
		     const char *status, enum badge_style style);

/* GET /badges/NAME.svg (http.c's route table). */
void badges_handle(struct http_req *req);

#endif
