/* Graph edits (preparation, QDQ rewrite). An edit collects changes against a loaded model and
 * qc_edit_finish() produces a NEW model (the original is untouched, as are its files): nodes are
 * re-sorted topologically, everything not edited (metadata, functions, value_info, unknown
 * fields) is carried over. Node indices refer to the original model's qc_model.nodes. */
#ifndef QC_EDIT_H
#define QC_EDIT_H

#include "qc_model.h"

typedef struct qc_edit qc_edit;

typedef struct qc_edit_attr {        /* attributes of added nodes: ints, floats or a string */
    const char *name;
    int         type;                /* QC_ATTR_INT, QC_ATTR_FLOAT, QC_ATTR_STRING */
    int64_t     i;
    float       f;
    const char *s;
} qc_edit_attr;

int  qc_edit_begin(qc_edit **out, const qc_model *m, qc_err *err);
void qc_edit_free(qc_edit *e);

/* Rewires input `slot` of original node `node` to read tensor `name` (copied). */
int  qc_edit_set_input(qc_edit *e, int node, int slot, const char *name, qc_err *err);
/* Appends an input to original node `node` (e.g. a bias for a Conv that had none). */
int  qc_edit_append_input(qc_edit *e, int node, const char *name, qc_err *err);
/* Drops attribute `name` of original node `node` (absent: nothing happens). */
int  qc_edit_remove_attr(qc_edit *e, int node, const char *name, qc_err *err);
/* Sets an INT attribute of original node `node` (replacing one of the same name). */
int  qc_edit_set_attr_int(qc_edit *e, int node, const char *name, int64_t value, qc_err *err);
/* Renames output `slot` of original node `node`. */
int  qc_edit_set_output(qc_edit *e, int node, int slot, const char *name, qc_err *err);
int  qc_edit_remove_node(qc_edit *e, int node, qc_err *err);
/* Removes an initializer (and a graph input of the same name, if any). */
int  qc_edit_remove_init(qc_edit *e, const char *name, qc_err *err);
/* Adds an initializer from t (name, dtype, dims, data are copied). Replaces one of the same
 * name. Supported dtypes: every executable one. */
int  qc_edit_add_init(qc_edit *e, const qc_tensor *t, qc_err *err);
/* Adds a node placed right after original node `after` (-1: at the start; later calls with the
 * same anchor follow earlier ones). Strings are copied. Returns its new-node id (>= 0). */
int  qc_edit_add_node(qc_edit *e, int after, const char *op_type, const char *name,
                      int n_in, const char *const *in, int n_out, const char *const *out,
                      const qc_edit_attr *attrs, int n_attrs, qc_err *err);
/* Replaces If node `node` by the nodes and initializers of its then_branch (cond != 0) or
 * else_branch, its outputs becoming Identity of the branch's. QC_EUNSUPPORTED when a name
 * of the branch clashes with one of the graph (nothing is changed then). */
int  qc_edit_inline_if(qc_edit *e, int node, int cond, qc_err *err);
/* Raises the default-domain opset (never lowers it); the target after all requests. */
void    qc_edit_require_opset(qc_edit *e, int64_t opset);
int64_t qc_edit_opset(const qc_edit *e);
/* A name not used by any tensor or node of the model or the edit so far: "<base>" or
 * "<base>_<n>". Borrowed until qc_edit_free. */
const char *qc_edit_unique_name(qc_edit *e, const char *base);

/* Builds the edited model; e is consumed (freed) whatever the result. */
int  qc_edit_finish(qc_edit *e, qc_model **out, qc_err *err);

#endif
