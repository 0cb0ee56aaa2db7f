// Benchmark (not a test): the MLP forward of a model file on a batch of particles, in double
// (and optionally in 50 digits), on one thread. scripts/bench_mlp.py runs it beside PyTorch's
// float64 forward of the same network (README, "Learned denoisers": benchmark).
//
//   build/pflow_bench_mlp MODEL.h5 [--batch 10000] [--reps 20] [--precision double|mp50]
//
// Prints the median and the fastest time per evaluation (one forward over the whole batch) and
// a checksum of the outputs (their sum), so that the work cannot be optimised away.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "pflow/core/errors.hpp"
#include "pflow/model/mlp_file.hpp"

namespace {

template <class Scalar>
int bench(const pflow::MlpModel& model, int batch, int reps) {
  std::srand(1);
  const pflow::Mat<double> x = pflow::Mat<double>::Random(model.dim, batch);
  const pflow::Vec<double> tau = (pflow::Vec<double>::Random(batch).array() + 1) / 2;
  const pflow::Mat<Scalar> xs = x.cast<Scalar>();
  const pflow::Vec<Scalar> taus = tau.cast<Scalar>();
  const pflow::MlpNetwork<Scalar> network(model);
  std::vector<double> seconds;
  double checksum = 0;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    const pflow::Mat<Scalar> out = network.forward(xs, taus);
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    checksum += pflow::to_double(Scalar(out.sum()));
  }
  std::sort(seconds.begin(), seconds.end());
  std::printf("%s forward, batch %d, %d reps: median %.3f ms, fastest %.3f ms (checksum %.6e)\n",
              pflow::ScalarTraits<Scalar>::name, batch, reps, 1e3 * seconds[seconds.size() / 2],
              1e3 * seconds.front(), checksum);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: pflow_bench_mlp MODEL.h5 [--batch N] [--reps R] [--precision P]\n";
    return 2;
  }
  int batch = 10000, reps = 20;
  std::string precision = "double";
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--batch") batch = std::atoi(argv[i + 1]);
    if (flag == "--reps") reps = std::atoi(argv[i + 1]);
    if (flag == "--precision") precision = argv[i + 1];
  }
  if (batch < 1 || reps < 1 || (precision != "double" && precision != "mp50")) {
    std::cerr << "pflow_bench_mlp: --batch and --reps must be positive, --precision double or "
                 "mp50\n";
    return 2;
  }
  try {
    const pflow::MlpModel model = pflow::load_mlp_model(argv[1]);
    return precision == "mp50" ? bench<pflow::mp50>(model, batch, reps)
                               : bench<double>(model, batch, reps);
  } catch (const pflow::InputError& e) {
    std::cerr << "pflow_bench_mlp: " << e.what() << "\n";
    return 2;
  }
}
