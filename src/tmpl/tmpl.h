/*
 * tmpl.h - healer's Handlebars engine: templates are compiled once (lexer ->
 * parser -> AST -> whitespace control) and rendered many times against jansson
 * data, with the output byte-identical to handlebars.js 4.x rendering with
 * `noEscape: true` for every construct the engine supports.
 *
 * Supported: {{path}}, {{a.b.c}}, {{this}}, ../ parent paths, @index @key
 * @first @last @root (and @../index), literals, subexpressions, hash
 * arguments, {{#if}} {{#unless}} {{#each}} {{#with}} with {{else}} and
 * {{else if ...}} / {{else unless}} / {{else with}} chains, block
 * parameters (`{{#each items as |item i|}}`, `{{#with x as |y|}}`),
 * inverted sections {{^x}}, plain sections {{#x}}, raw blocks
 * {{{{raw}}}}...{{{{/raw}}}}, {{> partial ctx k=v}} and dynamic partials
 * {{> (expr)}}, partial blocks {{#> layout}}...{{/layout}} with
 * {{> @partial-block}}, inline partials {{#*inline "name"}} (the `inline`
 * decorator, the only one handlebars.js has; another is an error when its
 * program runs), comments, whitespace control `~` and the stripping of
 * standalone lines, triple-stash and {{&x}}, the built-in helpers lookup
 * and log, and the helpers documented in docs/PROMPT_DATA.md (eq ne gt gte
 * lt lte and or not add subtract len truncate join json default upper lower
 * fence). A @partial-block used as a value is a function as in JavaScript;
 * calling it with more than one argument is refused (HL_EUNSUPPORTED).
 *
 * Thread-safety: a compiled template and a set are immutable after loading
 * and may be rendered from several threads at once.
 */
#ifndef HL_TMPL_TMPL_H
#define HL_TMPL_TMPL_H

#include "base/buf.h"
#include "base/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hl_tmpl;
struct hl_tmpl_set;

/* Render flags. */
enum {
	/* Report the first lookup whose key does not exist (a null value is
	 * fine) as an error naming the template, line and column. */
	HL_TMPL_STRICT = 1u << 0,
};

/* Output cap of one render (bytes); larger output fails with HL_ETOOBIG. */
#define HL_TMPL_MAX_OUTPUT (64u * 1024 * 1024)

/*
 * Compiles n bytes of template text. name is used in error messages
 * ("name:line:col: message", 1-based line and column) and copied. On success
 * *out owns the template (free with hl_tmpl_free). Errors: HL_EPARSE for
 * what handlebars.js rejects when it compiles, HL_ENOMEM.
 */
int hl_tmpl_compile(struct hl_tmpl **out, const char *name, const char *src, size_t n,
                    struct hl_err *err);
void hl_tmpl_free(struct hl_tmpl *t);
const char *hl_tmpl_name(const struct hl_tmpl *t);

/*
 * A registry of named templates that are also the partials: {{> name}} looks
 * `name` up in the set given to hl_tmpl_render. Adding a name that exists
 * replaces it.
 */
struct hl_tmpl_set *hl_tmpl_set_new(void);
void hl_tmpl_set_free(struct hl_tmpl_set *set);
/* Compiles src and stores it under name. */
int hl_tmpl_set_add(struct hl_tmpl_set *set, const char *name, const char *src, size_t n,
                    struct hl_err *err);
/* Stores an already compiled template (the set takes ownership, also on
 * failure). */
int hl_tmpl_set_add_compiled(struct hl_tmpl_set *set, const char *name, struct hl_tmpl *t,
                             struct hl_err *err);
/* The template stored under name, or NULL (borrowed). */
const struct hl_tmpl *hl_tmpl_set_get(const struct hl_tmpl_set *set, const char *name);
/* Number of templates and the name of the i-th (insertion order). */
size_t hl_tmpl_set_count(const struct hl_tmpl_set *set);
const char *hl_tmpl_set_name_at(const struct hl_tmpl_set *set, size_t i);
/*
 * Checks that every partial a template of the set calls by a name written
 * in it ({{> name}}, {{> "name"}}) is a template of the set or an inline
 * partial one of them defines, so a missing one is found when the set is
 * loaded, not at each render. Not checked: dynamic names {{> (expr)}},
 * @partial-block, partial blocks (their block stands in for a missing
 * partial), and nothing at all when an inline partial's name is not a
 * literal. HL_ENOTFOUND naming "template:line:col" and the partial.
 */
int hl_tmpl_set_check_partials(const struct hl_tmpl_set *set, struct hl_err *err);

/*
 * Renders t with data (borrowed; NULL renders as an undefined context) and
 * partials (may be NULL). On success *out is a malloc'd NUL-terminated string
 * (the caller frees it) and *len_out (when not NULL) its length. Errors name
 * the template, line and column: HL_EPARSE for a runtime error handlebars.js
 * also raises (missing partial, missing helper, wrong helper arity, unknown
 * decorator, a block parameter the helper does not pass), HL_EINVAL
 * for a strict-mode missing variable, HL_ETOOBIG past HL_TMPL_MAX_OUTPUT or
 * the work budget, HL_EUNSUPPORTED for a @partial-block called with more
 * than one argument, HL_ENOMEM.
 */
int hl_tmpl_render(char **out, size_t *len_out, const struct hl_tmpl *t, const json_t *data,
                   const struct hl_tmpl_set *partials, unsigned flags, struct hl_err *err);
/* The same with an output cap of max_output bytes (at most
 * HL_TMPL_MAX_OUTPUT; 0 means HL_TMPL_MAX_OUTPUT). */
int hl_tmpl_render_max(char **out, size_t *len_out, const struct hl_tmpl *t, const json_t *data,
                       const struct hl_tmpl_set *partials, unsigned flags, size_t max_output,
                       struct hl_err *err);

/*
 * Untrusted text for a prompt (the `fence` helper): appends to out a Markdown
 * fenced block holding text with ANSI escape sequences and control characters
 * (all but \n and \t, C1 included) removed and invalid UTF-8 replaced by
 * U+FFFD. The fence is a run of backticks longer than any run in the text (at
 * least 3), so the content cannot close it. When the cleaned text is longer
 * than budget bytes it is cut: its head, the region around line focus_line
 * (1-based, 0 for none) and its tail are kept, at line boundaries when one is
 * near and always at UTF-8 boundaries, and every cut is replaced by a line
 * "[... healer cut N bytes (L lines) ...]". lang (may be NULL) is reduced to
 * [A-Za-z0-9_.+-]. budget is clamped to at least 64. The exact algorithm is
 * shared with tests/tmpl/hbs_render.js.
 */
#define HL_TMPL_FENCE_DEFAULT_BUDGET 16000
int hl_tmpl_fence(struct hl_buf *out, const char *text, size_t n, const char *lang, int64_t budget,
                  int64_t focus_line);

/*
 * An untrusted value inline in a prompt (the `code` helper): appends to out
 * a Markdown code span holding text cleaned as hl_tmpl_fence cleans it,
 * with tabs, newlines, U+2028 and U+2029 turned into spaces (so the span
 * stays on its line), cut to max_cps code points (then "..." is appended).
 * The span's delimiter is a run of backticks one longer than the longest
 * run in the value, so the value cannot close it; a value that starts or
 * ends with a backtick is padded with a space on both sides. An empty value
 * appends nothing. The exact algorithm is shared with
 * tests/tmpl/hbs_render.js.
 */
#define HL_TMPL_CODE_DEFAULT_MAX 300
int hl_tmpl_code(struct hl_buf *out, const char *text, size_t n, int64_t max_cps);

#endif
