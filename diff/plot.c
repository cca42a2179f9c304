/*
 * plot.c - apr-diff --plot: 1 - cosine and relative error per tensor or stage as an SVG.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/cli.h"
#include "../common/json.h"
#include "../common/dirwalk.h"
#include "../common/mfile.h"
#include "../common/path.h"
#include "../common/ofile.h"
#include "../common/utf8.h"
#include "../common/progress.h"
#include "../common/sbuf.h"
#include "../common/sz.h"
#include "../common/threads.h"
#include "../common/vec.h"
#include "../dequant/dq.h"
#include "../formats/apr/aprt.h"
#include "../formats/config.h"
#include "../formats/model.h"
#include "../formats/model_json.h"
#include "../formats/names.h"
#include "diff_impl.h"
#include "../compare/compare.h"
#include "../common/banned.h"
/* Text as XML character data: markup escaped, control bytes and bad UTF-8 as '?'. */
static void xml_text(struct sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        size_t len = c < 0x80 ? 1 : (size_t)utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (len == 0 || (len == 1 && c < 0x20 && c != '\t')) {
            sbuf_addc(b, '?');
            i++;
            continue;
        }
        if (c == '&')
            sbuf_adds(b, "&amp;");
        else if (c == '<')
            sbuf_adds(b, "&lt;");
        else if (c == '>')
            sbuf_adds(b, "&gt;");
        else if (c == '"')
            sbuf_adds(b, "&quot;");
        else if (c == '\'')
            sbuf_adds(b, "&apos;");
        else
            sbuf_add(b, s + i, len);
        i += len;
    }
}

static double plot_y(double v, double top, double h)
{
    double l = v > 0 ? log10(v) : PLOT_LO;

    if (l < PLOT_LO)
        l = PLOT_LO;
    if (l > PLOT_HI)
        l = PLOT_HI;
    return top + h * (PLOT_HI - l) / (PLOT_HI - PLOT_LO);
}

int diff_plot_write(const char *path, const char *title_a, const char *title_b,
                      const struct plot_pt *pt, size_t n, struct err *e)
{
    static const char *const colour[3] = { "#2a9d8f", "#e9a23b", "#d62828" };
    static const char *const panel_name[2] = { "1 - cosine (log)", "RMSE / RMS(a) (log)" };
    struct sbuf b = SBUF_INIT(OUT_MAX);
    const double left = 80, right = 20, top = 50, ph = 240, gap = 70, ggap = 12;
    double width, height, x, step;
    size_t n_groups = 0, bn;
    const char *base;
    char tmp[64];
    int rc;

    for (size_t i = 0; i < n; i++)
        if (i == 0 || pt[i].group != pt[i - 1].group)
            n_groups++;
    width = left + right + (double)n * 9 + (double)n_groups * ggap;
    if (width < 720)
        width = 720;
    /* spread the points over the panel: at least 9 px apart, at most 40 */
    step = n ? (width - left - right - (double)n_groups * ggap) / (double)n : 9;
    if (step > 40)
        step = 40;
    height = top + 2 * ph + gap + 60;
    sbuf_addf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                  "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"11\">\n",
              width, height, width, height);
    sbuf_addf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    sbuf_adds(&b, "<text x=\"10\" y=\"20\" font-size=\"14\">apr-diff: ");
    base = path_base(title_a, &bn);   /* the last component ("dir/" gives "dir") */
    xml_text(&b, base, bn);
    sbuf_adds(&b, " vs ");
    base = path_base(title_b, &bn);
    xml_text(&b, base, bn);
    sbuf_addf(&b, "</text>\n<text x=\"10\" y=\"38\" fill=\"#555\">%zu entries:</text>\n", n);
    {
        static const char *const what[3] = { "identical", "close (max |a-b| &lt; 0.1)", "far" };
        double lx = 90;
        for (int c = 0; c < 3; c++) {
            sbuf_addf(&b, "<circle cx=\"%.1f\" cy=\"34\" r=\"4\" fill=\"%s\"/>"
                          "<text x=\"%.1f\" y=\"38\" fill=\"#555\">%s</text>\n",
                      lx, colour[c], lx + 8, what[c]);
            lx += c == 1 ? 200 : 90;
        }
    }
    for (int panel = 0; panel < 2; panel++) {
        double ptop = top + panel * (ph + gap);
        sbuf_addf(&b, "<g>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                      "fill=\"none\" stroke=\"#999\"/>\n",
                  left, ptop, width - left - right, ph);
        for (int d = PLOT_LO; d <= PLOT_HI; d++) {
            double y = plot_y(pow(10, d), ptop, ph);
            sbuf_addf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">1e%d</text>\n",
                      left, y, width - right, y, left - 4, y + 4, d);
        }
        sbuf_addf(&b, "<text transform=\"translate(16,%.1f) rotate(-90)\" text-anchor=\"middle\">"
                      "%s</text>\n", ptop + ph / 2, panel_name[panel]);
        x = left;
        for (size_t i = 0; i < n; i++) {
            double v = panel ? pt[i].rel_err : pt[i].cos_dist, y;
            if (i == 0 || pt[i].group != pt[i - 1].group) {
                x += ggap;
                sbuf_addf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                              "stroke=\"#ccc\"/>\n", x - ggap / 2, ptop, x - ggap / 2, ptop + ph);
                if (panel == 1) {
                    if (pt[i].group == -1)
                        snprintf(tmp, sizeof tmp, "pre");
                    else if (pt[i].group == INT32_MAX)
                        snprintf(tmp, sizeof tmp, "post");
                    else
                        snprintf(tmp, sizeof tmp, "L%d", pt[i].group);
                    sbuf_addf(&b, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", x,
                              ptop + ph + 16, tmp);
                }
            }
            x += step;
            if (!pt[i].valid)
                continue;
            y = plot_y(v, ptop, ph);
            sbuf_addf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>",
                      x - step / 2, y, colour[pt[i].bad]);
            xml_text(&b, pt[i].label, pt[i].label_n);
            json_fmt_num(tmp, sizeof tmp, v, 0);
            sbuf_addf(&b, ": %s</title></circle>\n", tmp);
        }
        sbuf_adds(&b, "</g>\n");
    }
    sbuf_addf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">tensor or stage, grouped "
                  "by layer (pre: before the layers, post: after)</text>\n</svg>\n",
              width / 2, height - 12);
    if (sbuf_check(&b, "plot", e)) {
        sbuf_release(&b);
        return -1;
    }
    /* written beside the target, then renamed: no partial picture */
    rc = ofile_put(path, b.p, b.len, e);
    sbuf_release(&b);
    return rc;
}

int diff_plot_bad(enum st s)
{
    return s == ST_IDENTICAL ? 0 : s <= ST_MEDIUM || s == ST_TRANSPOSED ? 1 : 2;
}
