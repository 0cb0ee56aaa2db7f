// Kind "sample": every solver at each NFE budget on many particles, with no reference solve.
// The samples at t_end are stored, and their data coordinates (the positions, for CLD) are
// compared with fresh samples of the data: the sliced Wasserstein-2 distance (sw2, over
// "projections" random directions) beside its floor, the distance between two independent data
// samples of the same size (what sw2 would be for a perfect sampler); and, where the data has a
// density (a gaussian or gmm target), the samples' mean log-likelihood under p_0 beside the fresh
// data's own. For sample-only data sets (target type "dataset") and for users who want samples.
//
// The distance of two samples of n points fluctuates by about a third of itself (two-moons,
// n = 4000: 0.025 +- 0.009), so one draw of fresh data decides little. Each distance is therefore
// the root mean square over "replicates" independent fresh samples F_r (and the floor over as
// many pairs F_r, S_r):  sw2 = sqrt((1/R) sum_r SW2(X, F_r)^2),  floor = sqrt((1/R) sum_r
// SW2(S_r, F_r)^2), with the floor's spread (standard deviation of SW2(S_r, F_r) over r).
#pragma once

#include "pflow/experiment/kind_base.hpp"
#include "pflow/target/data_source.hpp"
#include "pflow/target/sliced_wasserstein.hpp"

namespace pflow {

struct SampleKind : KindDefaults {
  static constexpr const char* name = "sample";
  static constexpr TableLayout table_layout = TableLayout::samples;
  static constexpr double CellResult::*primary_error = &CellResult::sw2;
  static constexpr const char* primary_label = "smallest sw2";
  static constexpr bool splits_model_error = false;  // no reference flow to split against
  static std::vector<std::string> own_fields() { return {"projections", "replicates"}; }

  // The streams of the fresh data and of the directions, apart from the solvers' noise (seed).
  static std::uint64_t data_seed(const ExperimentConfig& c) { return c.seed + 0x5a17eda7aULL; }
  static std::uint64_t direction_seed(const ExperimentConfig& c) {
    return c.seed + 0xd12ec7104eULL;
  }

  void validate(const Fields& f, ExperimentConfig& c, const std::vector<SolverInfo>&) const {
    c.projections = f.has("projections") ? f.integer("projections") : 256;
    require(c.projections >= 1 && c.projections <= 10000, "projections", c.projections,
            "must be between 1 and 10000 (directions of the sliced Wasserstein distance)");
    c.replicates = f.has("replicates") ? f.integer("replicates") : 16;
    require(c.replicates >= 2 && c.replicates <= 256, "replicates", c.replicates,
            "must be between 2 and 256 (independent fresh data samples per distance; two at "
            "least for the floor's spread)");
    const long particles =
        c.init_count > 0 ? c.init_count : static_cast<long>(c.init_points.size());
    require(particles >= 2, c.init_count > 0 ? "init.count" : "init.points", particles,
            "must give at least 2 particles: the run compares sample distributions");
  }

  void normalise(const ExperimentConfig& c, nlohmann::json& n) const {
    n["projections"] = c.projections;
    n["replicates"] = c.replicates;
  }

  // No shared Brownian path: each stochastic solve draws its own noise from the seed.
  template <class Scalar>
  void configure(RunSetup<Scalar>& s) const {
    s.problem.brownian_levels = 0;
  }

  // Not a reference solve: the sorted projections of R fresh data samples of as many points as
  // particles on the directions ((R n) x L, replicate r in rows r n .. (r + 1) n - 1; the data
  // themselves go to the result), the floor from R more, and the data's log-likelihood.
  template <class Scalar>
  Mat<Scalar> reference(const RunSetup<Scalar>& s, ExperimentResult& result) const {
    const ExperimentConfig& c = s.config;
    const auto data = DataSource<double>::from_config(c.target, "target");
    const int n = static_cast<int>(s.x0.cols()), replicates = c.replicates;
    Rng rng(data_seed(c));
    const Mat<double> fresh = data.sample(n * replicates, rng);
    const Mat<double> second = data.sample(n * replicates, rng);
    const Mat<double> theta = random_directions(data.dim(), c.projections, direction_seed(c));
    Mat<double> sorted(static_cast<Eigen::Index>(n) * replicates, c.projections);
    std::vector<double> pairs;
    for (int r = 0; r < replicates; ++r) {
      sorted.middleRows(static_cast<Eigen::Index>(r) * n, n) =
          sorted_projections(fresh.middleCols(static_cast<Eigen::Index>(r) * n, n), theta);
      pairs.push_back(sliced_w2_sorted(second.middleCols(static_cast<Eigen::Index>(r) * n, n),
                                       sorted.middleRows(static_cast<Eigen::Index>(r) * n, n),
                                       theta));
    }
    double square = 0, mean = 0, spread = 0;
    for (double v : pairs) {
      square += v * v / replicates;
      mean += v / replicates;
    }
    for (double v : pairs) spread += (v - mean) * (v - mean) / (replicates - 1);
    result.sw2_floor = std::sqrt(square);
    result.sw2_floor_spread = std::sqrt(spread);
    require(std::isfinite(result.sw2_floor), "target", c.target.dump(),
            "gives a non-finite distance between data samples (values too large?)");
    result.data_first = row_major(fresh);
    result.data_second = row_major(second);
    if (data.mixture() && data.mixture()->has_density())
      result.data_mean_log_p0 = data.mixture()->log_density(fresh).mean();
    result.reference_method = "none (kind sample): " + std::to_string(replicates) + " x " +
                              std::to_string(n) + " fresh data points, sliced W2 over " +
                              std::to_string(c.projections) + " directions";
    result.reference_tolerance = 0;
    return sorted.template cast<Scalar>();
  }

  template <class Scalar>
  void run_cell(const CellRun<Scalar>& run, CellResult& cell) const {
    const RunSetup<Scalar>& s = run.setup;
    const SolveResult<Scalar> r = solve(run.solver, s.problem, run.grid, s.x0);
    cell.nfe = r.nfe;
    cell.steps = r.steps;
    cell.wall_s = r.wall_s;
    cell.x = row_major(r.x);
    cell.err_max = cell.err_rms = std::nan("");  // no reference solve
    const Mat<double> samples = s.sde.data_part(s.sde.to_spectral(r.x)).template cast<double>();
    const Mat<double> sorted = run.reference.template cast<double>();
    const Mat<double> theta = random_directions(static_cast<int>(samples.rows()),
                                                s.config.projections, direction_seed(s.config));
    const Eigen::Index n = samples.cols();
    const Mat<double> own = sorted_projections(samples, theta);
    cell.sw2 =
        rms_sliced_w2(own, s.config.replicates, [&](int k) { return sorted.middleRows(k * n, n); });
    if (!std::isfinite(cell.sw2))
      throw NumericalError("the samples' distance to the data is not finite");
    if (!is_dataset_target(s.config.target)) {
      const auto data = make_target<double>(s.config.target, "target");
      if (data.has_density()) cell.mean_log_p0 = data.log_density(samples).mean();
    }
  }

  void finish(ExperimentResult&, double) const {}  // distances have floors, not orders

  void write_reference(h5::File& f, const ExperimentResult& r) const {
    const size_t n = static_cast<size_t>(r.particles), d = static_cast<size_t>(r.config.data_dim);
    const size_t replicates = static_cast<size_t>(r.config.replicates);
    f.group("/data");
    f.dataset("/data/x", {replicates, n, d}, r.data_first);
    f.dataset("/data/x_second", {replicates, n, d}, r.data_second);
    // The directions (rows), so that sw2 can be recomputed from the file alone.
    const Mat<double> theta =
        random_directions(r.config.data_dim, r.config.projections, direction_seed(r.config));
    f.dataset("/data/directions", {static_cast<size_t>(theta.cols()), d}, row_major(theta));
    f.attribute("/data", "sw2_floor", r.sw2_floor);
    f.attribute("/data", "sw2_floor_spread", r.sw2_floor_spread);
    f.attribute("/data", "replicates", static_cast<double>(r.config.replicates));
    f.attribute("/data", "mean_log_p0", r.data_mean_log_p0);
    f.attribute("/data", "projections", static_cast<double>(r.config.projections));
    f.attribute("/data", "method", r.reference_method);
  }

  void write_solver(h5::File& f, const std::string& g, const SolverRun& s,
                    const ExperimentResult&) const {
    std::vector<double> sw2, log_p0;
    for (const CellResult& cell : s.cells) {
      sw2.push_back(cell.sw2);
      log_p0.push_back(cell.mean_log_p0);
    }
    f.dataset(g + "/sw2", {sw2.size()}, sw2);
    f.dataset(g + "/mean_log_p0", {log_p0.size()}, log_p0);
  }

  std::string error_note() const {
    return "sw2 = sliced Wasserstein-2 distance between the samples' data coordinates at t_end "
           "and as many fresh data points; floor = the same between two fresh data samples";
  }
};

}  // namespace pflow
