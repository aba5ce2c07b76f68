/* Exact sample-parallel EMA (calib/ema_log.c).
 *
 * An EMA observer's state depends on the order of its updates, so shards that each fold their
 * own samples cannot be merged exactly. Instead, during a sample-parallel pass (qc_pass.h) the
 * shards' EMA observers only record each update's (min, max) in a ring of `window` sample
 * slots, and the records are folded into the target observers in sample order as soon as
 * every earlier sample is done: the targets end bit for bit as after a serial pass, at any
 * thread count. A shard that gets `window` samples ahead of the oldest unfinished one waits,
 * so memory is window x targets x 8 bytes, whatever the number of samples.
 *
 * Usage: qc_ema_log_new with the target observers (the ones a serial pass would update;
 * entries that are NULL or not EMA are ignored), qc_ema_log_attach for each shard's observers
 * in the same order (shard 0 may attach the targets themselves), then around every sample of
 * the pass qc_ema_log_begin / qc_ema_log_end (also for skipped and failed samples), then
 * qc_ema_log_finish, qc_ema_log_free (detaches every observer; before freeing them), and
 * qc_observer_merge of the shards' observers into the targets (which adds their counts; the
 * EMA state of a recording observer is empty). Only per-tensor EMA observers can record, and
 * each at most once per sample. */
#ifndef QC_EMA_LOG_H
#define QC_EMA_LOG_H

#include "qc_observer.h"

typedef struct qc_ema_log qc_ema_log;

/* Samples 0..n_samples-1 on `shards` shards; window < 1: a default (32). */
int  qc_ema_log_new(qc_ema_log **out, qc_observer *const *targets, int n_targets,
                    int n_samples, int shards, int window, qc_err *err);
/* Shard `shard`'s observers obs[0..n_targets) (same order as the targets) record into the log
 * from now on. QC_EUSAGE for a per-channel EMA observer. */
int  qc_ema_log_attach(qc_ema_log *l, int shard, qc_observer *const *obs, qc_err *err);
/* Before sample i on `shard`: waits until i is within the window. Returns an error (never
 * the pass's first) if a sample failed meanwhile. */
int  qc_ema_log_begin(qc_ema_log *l, int shard, int i, qc_err *err);
/* After sample i on `shard`: ok = 0 when it failed (waiting shards are released). */
void qc_ema_log_end(qc_ema_log *l, int shard, int i, int ok);
/* After the pass: QC_EINTERNAL if a sample never ended. */
int  qc_ema_log_finish(qc_ema_log *l, qc_err *err);
void qc_ema_log_free(qc_ema_log *l);

/* ---- between the log and calib/ema.c ---- */

/* Called by a recording EMA observer's update: the (lo, hi) of the shard's current sample. */
int  qc_ema_log_put(qc_ema_log *l, int shard, int target, float lo, float hi, qc_err *err);
/* Routes o's updates to the log (l NULL: back to folding). 0 if o is not an EMA observer. */
int  qc_ema_observer_record(qc_observer *o, qc_ema_log *l, int shard, int target);
/* One EMA update of channel 0 with an update's (lo, hi), as the observer's own update folds
 * it (the counts of the values are not touched: the recording observer counted them). */
void qc_ema_observer_fold(qc_observer *o, float lo, float hi);

#endif
