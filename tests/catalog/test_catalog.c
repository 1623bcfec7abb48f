/*
 * test_catalog.c - the agent and failure-type catalogue (src/catalog): the
 * catalogue-wide check (categories exist, Apps and templates present,
 * label-safe unique names), the compiled tables against what libyaml reads
 * from rules/catalog.yaml (so the generator's YAML subset cannot drift), the
 * contract's names (sections 5 and 7) and the lookups.
 * (cmocka.h comes after setjmp.h, stdarg.h and stddef.h.)
 */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
// clang-format on

#include "base/buf.h"
#include "base/file.h"
#include "catalog/catalog.h"

#include <yaml.h>

static const char *
source_root(void)
{
	const char *r = getenv("HEALER_SOURCE_ROOT");
	return r ? r : ".";
}

static void
test_catalog_check_passes_with_the_shipped_prompts(void **state)
{
	struct hl_err err = HL_ERR_INIT;
	char dir[4096];
	(void)state;

	snprintf(dir, sizeof(dir), "%s/prompts", source_root());
	if (hl_catalog_check(dir, &err) != 0)
		fail_msg("%s", err.msg);
	assert_int_equal(hl_catalog_check(NULL, &err), 0);
	/* a prompts directory without the templates fails, naming the agent */
	assert_int_equal(hl_catalog_check("/nonexistent-prompts", &err), -HL_EINVAL);
	assert_non_null(strstr(err.msg, "template"));
	assert_non_null(strstr(err.msg, hl_catalog_agent_at(0)->id));
}

/* ---- the data file through libyaml ---- */

static yaml_node_t *
ymap_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		if (k && k->type == YAML_SCALAR_NODE &&
		    strcmp((const char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(doc, p->value);
	}
	return NULL;
}

static const char *
ystr(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	yaml_node_t *n = ymap_get(doc, map, key);
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static bool
ybool(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	const char *s = ystr(doc, map, key);
	return s != NULL && strcmp(s, "true") == 0;
}

static size_t
yseq_len(yaml_node_t *n)
{
	if (n == NULL || n->type != YAML_SEQUENCE_NODE)
		return 0;
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static yaml_node_t *
yseq_at(yaml_document_t *doc, yaml_node_t *n, size_t i)
{
	return yaml_document_get_node(doc, n->data.sequence.items.start[i]);
}

static void
test_catalog_tables_equal_the_data_file(void **state)
{
	struct hl_buf b = HL_BUF_INIT(1u << 20);
	struct hl_err err = HL_ERR_INIT;
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root, *seq;
	char path[4096];
	(void)state;

	snprintf(path, sizeof(path), "%s/rules/catalog.yaml", source_root());
	assert_int_equal(hl_file_read(&b, path, &err), 0);
	assert_true(yaml_parser_initialize(&parser));
	yaml_parser_set_input_string(&parser, (const unsigned char *)b.data, b.len);
	assert_true(yaml_parser_load(&parser, &doc));
	root = yaml_document_get_root_node(&doc);
	assert_non_null(root);

	seq = ymap_get(&doc, root, "agents");
	assert_int_equal(yseq_len(seq), hl_catalog_agent_count());
	for (size_t i = 0; i < hl_catalog_agent_count(); i++) {
		yaml_node_t *m = yseq_at(&doc, seq, i);
		const struct hl_catalog_agent *a = hl_catalog_agent_at(i);
		assert_string_equal(a->id, ystr(&doc, m, "id"));
		assert_string_equal(a->name, ystr(&doc, m, "name"));
		assert_string_equal(a->role, ystr(&doc, m, "role"));
		assert_string_equal(a->github_app, ystr(&doc, m, "github_app"));
		assert_string_equal(a->template, ystr(&doc, m, "template"));
		assert_int_equal(a->is_default, ybool(&doc, m, "default"));
		assert_int_equal(a->index, i);
	}
	seq = ymap_get(&doc, root, "categories");
	assert_int_equal(yseq_len(seq), hl_catalog_category_count());
	for (size_t i = 0; i < hl_catalog_category_count(); i++) {
		yaml_node_t *m = yseq_at(&doc, seq, i), *files = ymap_get(&doc, m, "files");
		const struct hl_catalog_category *c = hl_catalog_category_at(i);
		size_t n = 0;
		assert_string_equal(c->name, ystr(&doc, m, "name"));
		assert_string_equal(c->agent->id, ystr(&doc, m, "agent"));
		assert_int_equal(c->stays_with_agent, ybool(&doc, m, "stays_with_agent"));
		while (c->files[n] != NULL)
			n++;
		assert_int_equal(n, yseq_len(files));
		for (size_t k = 0; k < n; k++)
			assert_string_equal(
			        c->files[k],
			        (const char *)yseq_at(&doc, files, k)->data.scalar.value);
	}
	seq = ymap_get(&doc, root, "failure_types");
	assert_int_equal(yseq_len(seq), hl_catalog_type_count());
	for (size_t i = 0; i < hl_catalog_type_count(); i++) {
		yaml_node_t *m = yseq_at(&doc, seq, i);
		const struct hl_catalog_type *t = hl_catalog_type_at(i);
		const char *agent = ystr(&doc, m, "agent");
		assert_string_equal(t->name, ystr(&doc, m, "name"));
		assert_string_equal(t->category->name, ystr(&doc, m, "category"));
		assert_string_equal(t->agent->id, agent ? agent : t->category->agent->id);
		assert_string_equal(t->short_name, ystr(&doc, m, "short"));
		assert_string_equal(t->fix_approach, ystr(&doc, m, "fix"));
		assert_string_equal(hl_catalog_domain_to_string(t->domain),
		                    ystr(&doc, m, "domain"));
		assert_int_equal(t->is_default, ybool(&doc, m, "default"));
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	hl_buf_release(&b);
}

/* ---- the contract ---- */

static void
test_catalog_has_the_contract_names(void **state)
{
	/* contract section 5: category -> agent, and the failure types */
	static const char *const types[][3] = {
		{ "rust_clippy", "rust", "rex" },
		{ "rust_test", "rust", "rex" },
		{ "rust_build", "rust", "rex" },
		{ "rust_deps", "rust", "rex" },
		{ "frontend_deps", "frontend", "blaze" },
		{ "frontend_typecheck", "frontend", "blaze" },
		{ "frontend_lint", "frontend", "blaze" },
		{ "frontend_test", "frontend", "blaze" },
		{ "frontend_build", "frontend", "blaze" },
		{ "docker_build", "infrastructure", "bolt" },
		{ "helm", "infrastructure", "bolt" },
		{ "kubernetes_manifest", "infrastructure", "bolt" },
		{ "argocd_sync", "infrastructure", "bolt" },
		{ "terraform", "infrastructure", "bolt" },
		{ "yaml_syntax", "infrastructure", "bolt" },
		{ "infra_runner", "infrastructure", "bolt" },
		{ "security_dependabot", "security", "cipher" },
		{ "security_code_scan", "security", "cipher" },
		{ "security_secret", "security", "cipher" },
		{ "security_vulnerability", "security", "cipher" },
		{ "merge_conflict", "github", "atlas" },
		{ "github_workflow", "github", "atlas" },
		{ "github_permission", "github", "atlas" },
		{ "release_publish", "github", "atlas" },
		{ "general", "general", "atlas" },
	};
	/* contract section 7: the GitHub Apps */
	static const char *const apps[][2] = {
		{ "rex", "5DLabs-Rex" },     { "blaze", "5DLabs-Blaze" },
		{ "bolt", "5DLabs-Bolt" },   { "cipher", "5DLabs-Cipher" },
		{ "atlas", "5DLabs-Atlas" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		const struct hl_catalog_type *t = hl_catalog_type_find(types[i][0]);
		if (t == NULL)
			fail_msg("failure type '%s' is missing", types[i][0]);
		assert_string_equal(t->category->name, types[i][1]);
		assert_string_equal(t->agent->id, types[i][2]);
		assert_string_equal(hl_catalog_category_find(types[i][1])->agent->id, types[i][2]);
	}
	for (size_t i = 0; i < 5; i++) {
		const struct hl_catalog_agent *a = hl_catalog_agent_find(apps[i][0]);
		assert_non_null(a);
		assert_string_equal(a->github_app, apps[i][1]);
		assert_ptr_equal(hl_catalog_agent_by_app(apps[i][1]), a);
	}
	assert_string_equal(hl_catalog_default_agent()->id, "atlas");
	assert_string_equal(hl_catalog_default_type()->name, "general");
	/* security work stays with Cipher on retries; nothing else is pinned */
	for (size_t i = 0; i < hl_catalog_category_count(); i++) {
		const struct hl_catalog_category *c = hl_catalog_category_at(i);
		assert_int_equal(c->stays_with_agent, strcmp(c->name, "security") == 0);
	}
}

static void
test_catalog_lookups(void **state)
{
	size_t n = 0;
	(void)state;

	assert_null(hl_catalog_agent_find("pixel"));
	assert_null(hl_catalog_agent_find(NULL));
	assert_ptr_equal(hl_catalog_agent_find("ReX"), hl_catalog_agent_find("rex"));
	assert_null(hl_catalog_agent_by_app("5dlabs-rex"));
	assert_null(hl_catalog_category_find("Rust"));
	assert_null(hl_catalog_type_find("rust_bild"));
	assert_null(hl_catalog_type_find(NULL));
	assert_null(hl_catalog_agent_at(hl_catalog_agent_count()));
	assert_null(hl_catalog_category_at(hl_catalog_category_count()));
	assert_null(hl_catalog_type_at(hl_catalog_type_count()));
	for (size_t i = 0; i < hl_catalog_type_count(); i++) {
		const struct hl_catalog_type *t = hl_catalog_type_at(i);
		assert_ptr_equal(hl_catalog_type_find(t->name), t);
		assert_int_equal(t->index, i);
		n += t->is_default;
	}
	assert_int_equal(n, 1);
	assert_string_equal(hl_catalog_type_find("rust_clippy")->short_name, "clippy");
	assert_int_equal(hl_catalog_type_find("security_secret")->domain, HL_CATALOG_DOMAIN_ALERT);
	assert_int_equal(hl_catalog_type_find("rust_test")->domain, HL_CATALOG_DOMAIN_CI);
	for (int d = 0; d < _HL_CATALOG_DOMAIN_MAX; d++)
		assert_int_equal(hl_catalog_domain_from_string(
		                         hl_catalog_domain_to_string((enum hl_catalog_domain)d)),
		                 d);
	assert_int_equal(hl_catalog_domain_from_string("cloud"), _HL_CATALOG_DOMAIN_INVALID);
	assert_int_equal(hl_catalog_domain_from_string(NULL), _HL_CATALOG_DOMAIN_INVALID);
	assert_null(hl_catalog_domain_to_string(_HL_CATALOG_DOMAIN_MAX));
	assert_null(hl_catalog_domain_to_string(_HL_CATALOG_DOMAIN_INVALID));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_catalog_check_passes_with_the_shipped_prompts),
		cmocka_unit_test(test_catalog_tables_equal_the_data_file),
		cmocka_unit_test(test_catalog_has_the_contract_names),
		cmocka_unit_test(test_catalog_lookups),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
