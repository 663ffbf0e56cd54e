/* flow/flow_internal.h — what the flow layer's files share: report.c's page pieces, so
 * the sweep report (sweep.c) looks like the campaign's and draws with the same axes. */
#ifndef BF_FLOW_INTERNAL_H
#define BF_FLOW_INTERNAL_H

#include "braggflow/core.h"

/* s with &, <, > and " escaped. */
void bf_report_html_esc(bf_buf *b, const char *s);
/* The campaign report's <style> text. */
const char *bf_report_css(void);
/* One inline-SVG scatter chart: y[i] against x[i] (n points; log10 x axis when log_x
 * and every x > 0); point `best` (or -1) is drawn larger, in red. */
void bf_report_scatter(bf_buf *b, const char *id, const char *title, const char *x_label,
                       const char *y_label, const double *x, const double *y, int n, int log_x,
                       int best);

#endif
