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

#include <CLI/CLI.hpp>

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
  CLI::App app{"pflow_bench_mlp: the MLP forward of a model file, timed (not a test)"};
  std::string file, precision = "double";
  int batch = 10000, reps = 20;
  app.add_option("model", file, "the model file (format 1)")->required();
  app.add_option("--batch", batch, "particles per evaluation")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  app.add_option("--reps", reps, "timed evaluations")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--precision", precision, "double or mp50")
      ->check(CLI::IsMember({"double", "mp50"}))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    const pflow::MlpModel model = pflow::load_mlp_model(file);
    return precision == "mp50" ? bench<pflow::mp50>(model, batch, reps)
                               : bench<double>(model, batch, reps);
  } catch (const pflow::InputError& e) {
    std::cerr << "pflow_bench_mlp: " << e.what() << "\n";
    return 2;
  }
}
