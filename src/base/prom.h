/*
 * prom.h - writing Prometheus text exposition (format 0.0.4) by hand.
 */
#ifndef HL_BASE_PROM_H
#define HL_BASE_PROM_H

#include "base/buf.h"

/* Appends s as a label value: backslash, double quote and newline escaped. */
void hl_prom_label(struct hl_buf *out, const char *s);

#endif
