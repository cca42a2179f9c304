/*
 * diff.c - apr-diff's entry (diff.h): what a and b are, then a structural, value or
 * dump diff.  The files of this folder are listed in diff_impl.h.
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

