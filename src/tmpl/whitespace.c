/*
 * whitespace.c - whitespace control, a transcription of handlebars.js'
 * compiler/whitespace-control.js applied once at compile time: `~` strips
 * the whitespace next to a mustache, and a block, else, comment or partial
 * alone on its line ("standalone") takes its line with it. Content nodes keep
 * their original text (the standalone tests look at it) and a kept window
 * [vstart, vend) that stripping narrows; a standalone partial records the
 * indentation of its line.
 */
#include "tmpl/tmpl_int.h"

#include <stdlib.h>
#include <string.h>

#define NONE ((size_t)-1)

/* Start of the maximal trailing JS-whitespace run of s. */
static size_t
trailing_ws_start(const char *s, size_t n)
{
	size_t i = 0, run = NONE, k;

	while (i < n) {
		if ((k = tmpl_js_space(s + i, n - i)) > 0) {
			if (run == NONE)
				run = i;
			i += k;
		} else {
			run = NONE;
			i++;
		}
	}
	return run == NONE ? n : run;
}

static size_t
leading_ws_end(const char *s, size_t n)
{
	size_t i = 0, k;

	while (i < n && (k = tmpl_js_space(s + i, n - i)) > 0)
		i += k;
	return i;
}

static bool
is_prev_ws(struct tmpl_program *prog, size_t i, bool is_root)
{
	struct tmpl_node *prev, *sibling;
	size_t ws;

	if (i == NONE)
		i = prog ? prog->n : 0;
	prev = i >= 1 ? prog->body[i - 1] : NULL;
	sibling = i >= 2 ? prog->body[i - 2] : NULL;
	if (!prev)
		return is_root;
	if (prev->type != TN_CONTENT)
		return false;
	ws = trailing_ws_start(prev->text, prev->len);
	if (memchr(prev->text + ws, '\n', prev->len - ws))
		return true;
	return !(sibling || !is_root) && ws == 0;
}

static bool
is_next_ws(struct tmpl_program *prog, size_t i, bool is_root)
{
	struct tmpl_node *nxt, *sibling;
	size_t n = prog ? prog->n : 0, ws, j = i == NONE ? 0 : i + 1;

	nxt = j < n ? prog->body[j] : NULL;
	sibling = j + 1 < n ? prog->body[j + 1] : NULL;
	if (!nxt)
		return is_root;
	if (nxt->type != TN_CONTENT)
		return false;
	ws = leading_ws_end(nxt->text, nxt->len);
	if (memchr(nxt->text, '\n', ws))
		return true;
	return !(sibling || !is_root) && ws == nxt->len;
}

static void
omit_right(struct tmpl_program *prog, size_t i, bool multiple)
{
	struct tmpl_node *cur;
	size_t j = i == NONE ? 0 : i + 1, old;
	const char *v;
	size_t n;

	if (!prog || j >= prog->n)
		return;
	cur = prog->body[j];
	if (cur->type != TN_CONTENT || (!multiple && cur->right_stripped))
		return;
	old = cur->vstart;
	v = cur->text + cur->vstart;
	n = cur->vend - cur->vstart;
	if (multiple) {
		cur->vstart += leading_ws_end(v, n);
	} else {
		size_t k = 0;
		while (k < n && (v[k] == ' ' || v[k] == '\t'))
			k++;
		if (k < n && v[k] == '\r' && k + 1 < n && v[k + 1] == '\n')
			k += 2;
		else if (k < n && v[k] == '\n')
			k++;
		cur->vstart += k;
	}
	cur->right_stripped = cur->vstart != old;
}

static bool
omit_left(struct tmpl_program *prog, size_t i, bool multiple)
{
	struct tmpl_node *cur;
	size_t j, old;
	const char *v;
	size_t n;

	if (!prog)
		return false;
	if (i == NONE) {
		if (prog->n == 0)
			return false;
		j = prog->n - 1;
	} else {
		if (i == 0)
			return false;
		j = i - 1;
	}
	cur = prog->body[j];
	if (cur->type != TN_CONTENT || (!multiple && cur->left_stripped))
		return false;
	old = cur->vend;
	v = cur->text + cur->vstart;
	n = cur->vend - cur->vstart;
	if (multiple) {
		cur->vend = cur->vstart + trailing_ws_start(v, n);
	} else {
		size_t k = n;
		while (k > 0 && (v[k - 1] == ' ' || v[k - 1] == '\t'))
			k--;
		cur->vend = cur->vstart + k;
	}
	cur->left_stripped = cur->vend != old;
	return cur->left_stripped;
}

struct wstrip {
	bool valid;
	bool open, close;
	bool open_standalone, close_standalone, inline_standalone;
};

static int ws_program(struct tmpl_parser *p, struct tmpl_program *prog, bool *root_seen);

static struct wstrip
ws_block(struct tmpl_parser *p, struct tmpl_node *blk, bool *root_seen)
{
	struct wstrip s = { 0 };
	struct tmpl_program *program, *inverse, *first_inv, *last_inv;

	if (blk->program)
		ws_program(p, blk->program, root_seen);
	if (blk->inverse)
		ws_program(p, blk->inverse, root_seen);
	program = blk->program ? blk->program : blk->inverse;
	inverse = blk->program ? blk->inverse : NULL;
	first_inv = last_inv = inverse;
	if (inverse && inverse->chained) {
		first_inv = inverse->body[0]->program;
		while (last_inv->chained)
			last_inv = last_inv->body[last_inv->n - 1]->program;
	}
	s.valid = true;
	s.open = blk->open_strip.open;
	s.close = blk->close_strip.close;
	s.open_standalone = is_next_ws(program, NONE, false);
	s.close_standalone = is_prev_ws(first_inv ? first_inv : program, NONE, false);
	if (blk->open_strip.close)
		omit_right(program, NONE, true);
	if (inverse) {
		if (blk->inverse_strip.open)
			omit_left(program, NONE, true);
		if (blk->inverse_strip.close)
			omit_right(first_inv, NONE, true);
		if (blk->close_strip.open)
			omit_left(last_inv, NONE, true);
		if (is_prev_ws(program, NONE, false) && is_next_ws(first_inv, NONE, false)) {
			omit_left(program, NONE, false);
			omit_right(first_inv, NONE, false);
		}
	} else if (blk->close_strip.open) {
		omit_left(program, NONE, true);
	}
	return s;
}

static int
ws_program(struct tmpl_parser *p, struct tmpl_program *prog, bool *root_seen)
{
	bool is_root = !*root_seen;
	size_t i;

	*root_seen = true;
	for (i = 0; i < prog->n; i++) {
		struct tmpl_node *cur = prog->body[i];
		struct wstrip s = { 0 };
		bool prev_ws, next_ws, open_sa, close_sa, inline_sa;

		switch (cur->type) {
		case TN_MUSTACHE:
		case TN_DECORATOR:
			s.valid = true;
			s.open = cur->strip.open;
			s.close = cur->strip.close;
			break;
		case TN_PARTIAL:
			if (cur->program) {
				/* a partial block is stripped like a block */
				s = ws_block(p, cur, root_seen);
				break;
			}
			/* fall through */
		case TN_COMMENT:
			s.valid = true;
			s.inline_standalone = true;
			s.open = cur->strip.open;
			s.close = cur->strip.close;
			break;
		case TN_BLOCK:
		case TN_DECORATOR_BLOCK:
			s = ws_block(p, cur, root_seen);
			break;
		default:
			break;
		}
		if (!s.valid)
			continue;
		prev_ws = is_prev_ws(prog, i, is_root);
		next_ws = is_next_ws(prog, i, is_root);
		open_sa = s.open_standalone && prev_ws;
		close_sa = s.close_standalone && next_ws;
		inline_sa = s.inline_standalone && prev_ws && next_ws;
		if (s.close)
			omit_right(prog, i, true);
		if (s.open)
			omit_left(prog, i, true);
		if (inline_sa) {
			omit_right(prog, i, false);
			if (omit_left(prog, i, false) && cur->type == TN_PARTIAL) {
				/* /([ \t]+$)/.exec(body[i - 1].original)[1] */
				struct tmpl_node *pv = prog->body[i - 1];
				size_t k = pv->len;
				while (k > 0 && (pv->text[k - 1] == ' ' || pv->text[k - 1] == '\t'))
					k--;
				free(cur->indent);
				cur->indent = tmpl_xstrndup(p, pv->text + k, pv->len - k);
				if (!cur->indent)
					return p->rc;
			}
		}
		if (open_sa) {
			omit_right(cur->program ? cur->program : cur->inverse, NONE, false);
			omit_left(prog, i, false);
		}
		if (close_sa) {
			omit_right(prog, i, false);
			omit_left(cur->inverse ? cur->inverse : cur->program, NONE, false);
		}
	}
	return p->rc;
}

int
tmpl_ws_apply(struct tmpl_parser *p, struct tmpl_program *root)
{
	bool root_seen = false;

	return ws_program(p, root, &root_seen);
}
