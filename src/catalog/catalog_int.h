/*
 * catalog_int.h - the tables generated from rules/catalog.yaml by
 * gen_catalog.py (catalog_data.c), shared with catalog.c only. Everything
 * else goes through catalog.h.
 */
#ifndef HL_CATALOG_CATALOG_INT_H
#define HL_CATALOG_CATALOG_INT_H

#include "catalog/catalog.h"

extern const struct hl_catalog_agent hl_catalog_agent_table[];
extern const size_t hl_catalog_agent_table_len;
extern const struct hl_catalog_category hl_catalog_category_table[];
extern const size_t hl_catalog_category_table_len;
extern const struct hl_catalog_type hl_catalog_type_table[];
extern const size_t hl_catalog_type_table_len;

#endif
