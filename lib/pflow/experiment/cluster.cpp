#include "pflow/experiment/cluster.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "pflow/core/errors.hpp"
#include "pflow/core/threads.hpp"

#ifdef PFLOW_HAVE_MPI
#include <mpi.h>
#endif

namespace pflow::cluster {

namespace {

int world_rank = 0, world_size = 1;
bool mpi_started = false;

// A failure as bytes and back, so that rank 0 can rethrow what another rank raised: a tag (I
// input, O I/O, N numerical, E any other) and the message's parts, separated by NUL.
std::string encode_failure(const std::exception_ptr& failure) {
  const auto join = [](char tag, std::initializer_list<std::string> parts) {
    std::string out(1, tag);
    for (const std::string& p : parts) out += '\0' + p;
    return out;
  };
  try {
    std::rethrow_exception(failure);
  } catch (const InputError& e) {
    return join('I', {e.field(), e.value(), e.why()});
  } catch (const IoError& e) {
    return join('O', {e.what()});
  } catch (const std::filesystem::filesystem_error& e) {
    return join('O', {e.what()});
  } catch (const NumericalError& e) {
    return join('N', {e.what()});
  } catch (const std::exception& e) {
    return join('E', {e.what()});
  } catch (...) {
    return join('E', {"an unknown exception"});
  }
}

std::exception_ptr decode_failure(const std::string& bytes) {
  std::vector<std::string> parts;
  for (size_t begin = 2, end; begin <= bytes.size(); begin = end + 1) {
    end = std::min(bytes.find('\0', begin), bytes.size());
    parts.push_back(bytes.substr(begin, end - begin));
  }
  parts.resize(3);
  switch (bytes.empty() ? 'E' : bytes[0]) {
    case 'I':
      return std::make_exception_ptr(InputError(parts[0], parts[1], parts[2]));
    case 'O':
      return std::make_exception_ptr(IoError::from_message(parts[0]));
    case 'N':
      return std::make_exception_ptr(NumericalError(parts[0]));
    default:
      return std::make_exception_ptr(std::runtime_error(parts[0]));
  }
}

#ifdef PFLOW_HAVE_MPI
// Waits for a non-blocking MPI operation by polling with sleeps of up to 1 ms: a rank that waits
// (for its next item, for a broadcast) leaves the core to the ranks that compute, which matters
// when ranks share cores (mpirun --oversubscribe) and costs at most ~1 ms per wait.
void wait_for(MPI_Request& request) {
  int done = 0;
  for (useconds_t pause = 2;; pause = std::min<useconds_t>(2 * pause, 1000)) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (done) return;
    usleep(pause);
  }
}

int message_size(std::size_t bytes) {
  if (bytes > static_cast<std::size_t>(INT_MAX))
    throw std::runtime_error("a work item's result of " + std::to_string(bytes) +
                             " bytes exceeds MPI's 2 GB message limit");
  return static_cast<int>(bytes);
}

void send_bytes(const std::string& bytes, int to, int tag) {
  MPI_Request request;
  MPI_Isend(bytes.data(), message_size(bytes.size()), MPI_BYTE, to, tag, MPI_COMM_WORLD, &request);
  wait_for(request);
}

void broadcast_bytes(void* data, std::size_t bytes) {
  char* p = static_cast<char*>(data);
  for (std::size_t done = 0; done < bytes;) {  // pieces of at most 1 GB (int counts)
    const std::size_t piece = std::min<std::size_t>(bytes - done, std::size_t(1) << 30);
    MPI_Request request;
    MPI_Ibcast(p + done, static_cast<int>(piece), MPI_BYTE, 0, MPI_COMM_WORLD, &request);
    wait_for(request);
    done += piece;
  }
}

constexpr int tag_ask = 1, tag_give = 2;
#endif

// A rank's message to rank 0: the item it finished (-1: none yet), whether that item failed, and
// its packed result or encoded failure.
struct Ask {
  std::int64_t item = -1;
  char failed = 0;
  std::string payload;
  std::string bytes() const {
    std::string out(sizeof item + 1, '\0');
    std::memcpy(out.data(), &item, sizeof item);
    out[sizeof item] = failed;
    return out + payload;
  }
  static Ask parse(const std::string& bytes) {
    Ask a;
    std::memcpy(&a.item, bytes.data(), sizeof a.item);
    a.failed = bytes[sizeof a.item];
    a.payload = bytes.substr(sizeof a.item + 1);
    return a;
  }
};

// Rank 0's side of a schedule: the hand-out order, the items done, the first failure, the trace.
class RootState {
 public:
  explicit RootState(const Schedule& s) : s_(s) {}
  static constexpr std::size_t none = static_cast<std::size_t>(-1);

  // The next item to hand out, or `none` (all handed out, stopped, or failed).
  std::size_t take() {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (failure_ || (s_.stop && s_.stop->load()) || next_ == s_.order.size()) return none;
    return s_.order[next_++];
  }
  // Item k is done (its result stored by `store`), run by `rank` from `start` on.
  template <class Store>
  void done(std::size_t k, int rank, double start, Store&& store) {
    const std::lock_guard<std::mutex> lock(mutex_);
    try {
      store();
      if (s_.finished) s_.finished(k);
      ++done_;
      if (s_.trace)
        s_.trace->push_back(
            {s_.phase, k, rank, start - s_.clock_origin, clock_seconds() - s_.clock_origin});
    } catch (...) {
      if (!failure_) failure_ = std::current_exception();
    }
  }
  void fail(std::exception_ptr e) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (!failure_) failure_ = std::move(e);
  }
  std::exception_ptr failure() const { return failure_; }
  bool complete() const { return !failure_ && done_ == s_.order.size(); }

  // A worker thread of rank 0 (or of the single process): takes items until none is left.
  void work() {
    for (std::size_t k = take(); k != none; k = take()) {
      const double start = clock_seconds();
      try {
        s_.run(k);
      } catch (...) {
        fail(std::current_exception());
        return;
      }
      done(k, 0, start, [] {});
    }
  }

 private:
  const Schedule& s_;
  std::mutex mutex_;
  std::size_t next_ = 0, done_ = 0;
  std::exception_ptr failure_;
};

void run_local_workers(RootState& state, int workers) {
  JoiningThreads pool;
  for (int t = 1; t < workers; ++t) pool.threads.emplace_back([&] { state.work(); });
  state.work();
}

}  // namespace

void start(int& argc, char**& argv) {
#ifdef PFLOW_HAVE_MPI
  // The launchers' environment: OpenMPI's mpirun (OMPI_COMM_WORLD_SIZE), PMIx and PMI (srun
  // --mpi=pmix or pmi2, other MPI launchers). A plain start is one rank without MPI.
  const auto has = [](const char* name) { return std::getenv(name) != nullptr; };
  if (!(has("OMPI_COMM_WORLD_SIZE") || has("PMIX_RANK") || has("PMI_RANK") || has("PMI_SIZE")))
    return;
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
  mpi_started = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  if (provided < MPI_THREAD_SERIALIZED && world_size > 1) {
    if (world_rank == 0)
      std::fputs(
          "pflow: internal error: this MPI library does not allow calls from several "
          "threads (MPI_THREAD_SERIALIZED)\n",
          stderr);
    MPI_Abort(MPI_COMM_WORLD, 4);
  }
#else
  (void)argc;
  (void)argv;
#endif
}

void stop() {
#ifdef PFLOW_HAVE_MPI
  if (mpi_started) MPI_Finalize();
  mpi_started = false;
#endif
}

int rank() {
  return world_rank;
}
int size() {
  return world_size;
}

double clock_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void broadcast(std::string& bytes) {
#ifdef PFLOW_HAVE_MPI
  if (world_size == 1) return;
  std::uint64_t n = bytes.size();
  broadcast_bytes(&n, sizeof n);
  bytes.resize(n);
  broadcast_bytes(bytes.data(), n);
#else
  (void)bytes;
#endif
}

void share_failure(std::exception_ptr root_failure) {
  std::string status = root_failure ? encode_failure(root_failure) : std::string();
  broadcast(status);
  if (status.empty()) return;
  if (root()) std::rethrow_exception(root_failure);
  throw RankFailure(report_failure(decode_failure(status)).status);
}

bool run_schedule(const Schedule& s, bool distributed) {
  RootState state(s);
  if (!distributed || world_size == 1) {
    run_local_workers(state, s.workers);
    if (state.failure()) std::rethrow_exception(state.failure());
    return state.complete();
  }
#ifdef PFLOW_HAVE_MPI
  std::mutex mpi;  // MPI_THREAD_SERIALIZED: one thread of this rank in MPI at a time
  if (root()) {
    // The coordinator: answers every other rank's worker threads (an item, or -1 when none is
    // left) and stores what they send back; rank 0's own workers take items beside it.
    std::thread coordinator([&] {
      std::map<std::size_t, std::pair<int, double>> handed_out;  // item -> (rank, start)
      int remote_workers = (world_size - 1) * s.workers;
      for (useconds_t pause = 2; remote_workers > 0;) {
        int flag = 0;
        MPI_Status status;
        MPI_Iprobe(MPI_ANY_SOURCE, tag_ask, MPI_COMM_WORLD, &flag, &status);
        if (!flag) {
          usleep(pause);
          pause = std::min<useconds_t>(2 * pause, 1000);
          continue;
        }
        pause = 2;
        int count = 0;
        MPI_Get_count(&status, MPI_BYTE, &count);
        std::string bytes(static_cast<std::size_t>(count), '\0');
        MPI_Recv(bytes.data(), count, MPI_BYTE, status.MPI_SOURCE, tag_ask, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
        const Ask ask = Ask::parse(bytes);
        if (ask.item >= 0) {
          const auto k = static_cast<std::size_t>(ask.item);
          const auto [from, start] = handed_out.at(k);
          if (ask.failed) {
            state.fail(decode_failure(ask.payload));
          } else {
            state.done(k, from, start, [&] { s.unpack(k, ask.payload); });
          }
        }
        const std::size_t next = state.take();
        std::int64_t reply = -1;
        if (next == RootState::none) {
          --remote_workers;
        } else {
          reply = static_cast<std::int64_t>(next);
          handed_out[next] = {status.MPI_SOURCE, clock_seconds()};
        }
        MPI_Request request;
        MPI_Isend(&reply, sizeof reply, MPI_BYTE, status.MPI_SOURCE, tag_give, MPI_COMM_WORLD,
                  &request);
        wait_for(request);
      }
    });
    run_local_workers(state, s.workers);
    coordinator.join();
  } else {
    const auto worker = [&] {
      Ask ask;
      for (;;) {
        std::int64_t next = -1;
        {
          const std::lock_guard<std::mutex> lock(mpi);
          send_bytes(ask.bytes(), 0, tag_ask);
          MPI_Request request;
          MPI_Irecv(&next, sizeof next, MPI_BYTE, 0, tag_give, MPI_COMM_WORLD, &request);
          wait_for(request);
        }
        if (next < 0) return;
        ask = Ask{next, 0, {}};
        try {
          s.run(static_cast<std::size_t>(next));
          ask.payload = s.pack(static_cast<std::size_t>(next));
        } catch (...) {
          ask.failed = 1;
          ask.payload = encode_failure(std::current_exception());
        }
      }
    };
    JoiningThreads pool;
    for (int t = 1; t < s.workers; ++t) pool.threads.emplace_back(worker);
    worker();
  }
  // Every rank learns how the schedule ended: "" complete, "stopped", or rank 0's failure.
  std::string outcome;
  if (root()) {
    if (state.failure()) {
      outcome = "F" + encode_failure(state.failure());
    } else if (!state.complete()) {
      outcome = "stopped";
    }
  }
  broadcast(outcome);
  if (!outcome.empty() && outcome[0] == 'F') {
    if (root()) std::rethrow_exception(state.failure());
    throw RankFailure(report_failure(decode_failure(outcome.substr(1))).status);
  }
  return outcome.empty();
#else
  return false;  // unreachable: world_size is 1
#endif
}

}  // namespace pflow::cluster
