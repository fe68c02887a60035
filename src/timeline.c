/* SPDX-License-Identifier: MIT */
/* A run's timeline (see timeline.h). */
#include "timeline.h"

void upg_tl_add(struct upg_timeline *tl, const struct upg_tl_sample *x)
{
	if (!tl->step_ns)
		tl->step_ns = UPG_TL_FIRST_STEP_NS;
	if (tl->n && x->t_ns < tl->s[tl->n - 1].t_ns + tl->step_ns)
		return;
	if (tl->n == UPG_TL_MAX) {
		for (uint32_t i = 0; i < UPG_TL_MAX / 2; i++)
			tl->s[i] = tl->s[2 * i + 1];
		tl->n = UPG_TL_MAX / 2;
		tl->step_ns *= 2;
	}
	tl->s[tl->n++] = *x;
}
