/* libFuzzer target: bytes taken as a GraphDef by mf_graph_import (with a
 * prefix, and without) and printed by mf_graph_def_to_text. A refusal must
 * set the status and leave the graph as it was; whatever is accepted must
 * export again, and that export must import into a fresh graph. Seeds:
 * tests/fuzz/corpus/graph_import (exported graphs, made by
 * tests/fuzz/make_graph_seeds.lua). */
#include <moonflow.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  mf_status *s = mf_status_new();
  char *text = NULL;
  size_t tlen = 0;
  if (mf_graph_def_to_text(data, size, &text, &tlen, s)) {
    if (!text || strlen(text) != tlen) abort();
  } else if (mf_status_code(s) == MF_OK) {
    abort();
  }
  free(text);

  mf_graph *g = mf_graph_new();
  mf_import_options o;
  mf_import_options_init(&o);
  o.prefix = "p";
  int n = mf_graph_import(g, data, size, &o, s);
  if (n < 0 && (mf_status_code(s) == MF_OK || mf_graph_num_ops(g) != 0)) abort();
  if (n >= 0) {
    if (n != mf_graph_num_ops(g)) abort();
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (!mf_graph_export(g, &bytes, &len, s)) abort();
    mf_graph *g2 = mf_graph_new();
    if (mf_graph_import(g2, bytes, len, NULL, s) != n) abort();
    mf_graph_delete(g2);
    free(bytes);
  }
  mf_graph_delete(g);
  mf_status_delete(s);
  return 0;
}
