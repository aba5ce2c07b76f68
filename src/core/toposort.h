/* Topological order of n items given, for each item i, the items it depends on:
 * deps[dep_start[i] .. dep_start[i+1]) (repeats allowed). Among ready items the lowest index
 * goes first, so an already ordered list keeps its order. Returns how many items were placed
 * in order[]; fewer than n means a cycle (or -1 when out of memory). */
#ifndef QC_TOPOSORT_H
#define QC_TOPOSORT_H

int qc_toposort(int n, const int *dep_start, const int *deps, int *order);

#endif
