// The processes of a run (README "Many machines: MPI"): one process, or the ranks of an MPI job
// started by mpirun or srun. Rank 0 hands out work items (reference chunks, cells) one at a time
// to every rank's worker threads, most expensive first, receives each finished item, and alone
// writes checkpoints and the result. MPI stays inside cluster.cpp: without an MPI launcher (or in
// a build without MPI) the program is one rank and nothing here communicates.
#pragma once

#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace pflow {

namespace cluster {

// Starts MPI when the program was started by an MPI launcher (the environment of mpirun or of
// srun with several tasks); otherwise, and in a build without MPI, the program is rank 0 of 1.
// MPI runs at MPI_THREAD_SERIALIZED: pflow calls it from one thread at a time.
void start(int& argc, char**& argv);
// Ends MPI (MPI_Finalize) if start() began it.
void stop();
int rank();
int size();
inline bool root() {
  return rank() == 0;
}

// On ranks other than 0, when the job fails: exit with `status` and print nothing (rank 0 prints
// the failure once).
class RankFailure : public std::runtime_error {
 public:
  explicit RankFailure(int status)
      : std::runtime_error("the job failed on another rank"), status(status) {}
  int status;
};

// Collective: rank 0's failure (null: none) reaches every rank. Rank 0 rethrows it; the others
// throw RankFailure with the exit status it maps to (errors.hpp exit_status).
void share_failure(std::exception_ptr root_failure);

// Runs `work` on rank 0 alone (the checks and files only rank 0 makes); its exception is rethrown
// there, and every other rank throws RankFailure. Collective.
template <class F>
void on_root(F&& work) {
  std::exception_ptr failure;
  if (root()) {
    try {
      work();
    } catch (...) {
      failure = std::current_exception();
    }
  }
  share_failure(failure);
}

// Collective: rank 0's `bytes` replace every other rank's.
void broadcast(std::string& bytes);

// One item a rank ran: which, where and when (seconds since the schedule's clock started, on rank
// 0's clock; an item run by another rank counts from its hand-out to the arrival of its result).
struct TraceEntry {
  std::string phase;
  std::size_t item = 0;
  int rank = 0;
  double start = 0, end = 0;
};

// Work items 0 .. items - 1 of one phase of a run.
struct Schedule {
  std::string phase;               // "reference", "analytic flow", "cells": names trace entries
  std::vector<std::size_t> order;  // the items to run, in hand-out order (most expensive first)
  int workers = 1;                 // threads per rank that take items
  // Computes item k in place (any rank, any worker thread). An exception stops the schedule.
  std::function<void(std::size_t)> run;
  // A rank other than 0: item k's result as bytes (it may release the item's memory).
  std::function<std::string(std::size_t)> pack;
  // Rank 0: stores the result of item k that another rank packed.
  std::function<void(std::size_t, const std::string&)> unpack;
  // Rank 0, one item at a time: item k is done (checkpoint, progress).
  std::function<void(std::size_t)> finished;
  // Rank 0: when set, no new item is handed out (the running ones finish).
  const std::atomic<bool>* stop = nullptr;
  // Rank 0: each item's entry is appended here; `clock_origin` is when the run started.
  std::vector<TraceEntry>* trace = nullptr;
  double clock_origin = 0;
};

// Seconds on this process's monotonic clock (the trace's clock).
double clock_seconds();

// Runs the schedule over the job's ranks (`distributed`) or in this process alone. Collective when
// distributed. An item's exception, on any rank, is rethrown on rank 0 once every rank is back
// (the other ranks throw RankFailure). Returns whether every item in `order` finished (false: the
// run was stopped); the same on every rank.
bool run_schedule(const Schedule& schedule, bool distributed);

}  // namespace cluster

}  // namespace pflow
