/* SPDX-License-Identifier: MIT */
/* Look policies up by the name a configuration gives. */
#include "policy.h"

#include <stddef.h>
#include <string.h>

static const struct upg_policy_ops *const table[] = {
	&upg_policy_s3fifo_ops,
	&upg_policy_clock_ops,
	&upg_policy_fifo_ops,
};

/* Kept as a literal so that messages need no formatting buffer; the policy
 * test checks that it names every policy exactly once. */
static const char names[] = "s3fifo, clock, fifo";

const struct upg_policy_ops *upg_policy_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (strcmp(table[i]->name, name) == 0)
			return table[i];
	return NULL;
}

const char *upg_policy_names(void)
{
	return names;
}
