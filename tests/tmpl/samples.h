/*
 * samples.h - sample prompt contexts for the tests, built into template data
 * by hl_prompt_data_build (see samples.c).
 */
#ifndef HL_TESTS_TMPL_SAMPLES_H
#define HL_TESTS_TMPL_SAMPLES_H

#include "prompt/prompt.h"

#include <jansson.h>

/* The name of sample which (0-based), or NULL past the last one. */
const char *hl_sample_name(int which);
/* The template data of sample which (a new reference), NULL past the end. */
json_t *hl_sample_data(int which);
/* The number of samples whose context is fully populated (0 .. n-1). */
#define HL_SAMPLES_FULL 2
/* Frees the cached large log. */
void hl_samples_cleanup(void);

#endif
