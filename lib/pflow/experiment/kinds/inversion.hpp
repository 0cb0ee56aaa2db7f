// Kind "inversion": deterministic encoding x_T = Phi(x_eps) and its round trip (docs/NOTES.md
// sec. 13). The points are init.points at eps = time.t_end, or init.count samples of p_eps. Each
// solver runs on the reversed grid (data -> noise, eps to T = time.t_start), is measured against
// the reference encoding (the exact flow map for Gaussian data, else the 50-digit Bulirsch-Stoer
// solve; a learned or perturbed model's own flow), and then decodes its own x_T on the grid
// (noise -> data): the round-trip error |decode(encode(x)) - x| is measured against the points.
// Both errors get fitted orders. Stochastic solvers are refused: they cannot run forwards.
#pragma once

#include "pflow/experiment/kind_base.hpp"

namespace pflow {

struct InversionKind : KindDefaults {
  static constexpr const char* name = "inversion";
  static constexpr bool init_at_t_end = true;  // init.count draws points of p_eps

  void validate(const Fields&, ExperimentConfig&, const std::vector<SolverInfo>& infos) const {
    for (size_t i = 0; i < infos.size(); ++i)
      require(runs_forwards(infos[i]), "solvers[" + std::to_string(i) + "]", infos[i].label,
              "cannot run forwards in time (data -> noise): it samples the reverse SDE; "
              "inversion needs a deterministic solver");
  }

  template <class Scalar>
  void configure(RunSetup<Scalar>& s) const {
    s.encode = true;  // references flow from t_end to t_start
  }

  // The reference encoding (KindDefaults), and on Gaussian data the exact flow map's own round
  // trip in the run's precision.
  template <class Scalar>
  Mat<Scalar> reference(const RunSetup<Scalar>& s, ExperimentResult& result) const {
    Mat<Scalar> ref = KindDefaults::reference(s, result);
    if (s.exact_available && s.data) {
      const Mat<Scalar> x_t = exact_flow_map(s.sde, *s.data, s.x0, s.t_end, s.t_start);
      const Mat<Scalar> back = exact_flow_map(s.sde, *s.data, x_t, s.t_start, s.t_end);
      result.exact_roundtrip_max = max_and_rms<Scalar>(back - s.x0).first;
    }
    return ref;
  }

  template <class Scalar>
  void run_cell(const CellRun<Scalar>& run, CellResult& cell) const {
    const RunSetup<Scalar>& s = run.setup;
    const std::vector<Scalar> up(run.grid.rbegin(), run.grid.rend());  // eps -> T
    const SolveResult<Scalar> encoded = solve(run.solver, s.problem, up, s.x0);
    record_errors(encoded, run, cell);
    const SolveResult<Scalar> decoded = solve(run.solver, s.problem, run.grid, encoded.x);
    std::tie(cell.roundtrip_max, cell.roundtrip_rms) = max_and_rms<Scalar>(decoded.x - s.x0);
    cell.x_decoded = row_major(decoded.x);
  }

  // The round trip is measured at the points, so its floor scales with them (the driver's floor
  // scales with the reference encodings).
  void finish(ExperimentResult& r, double floor) const {
    KindDefaults::finish(r, floor);
    auto size = [](const std::vector<double>& v) {
      double m = 1;
      for (double x : v) m = std::max(m, std::abs(x));
      return m;
    };
    const double roundtrip_floor = floor / size(r.reference) * size(r.init);
    for (SolverRun& run : r.solvers)
      run.roundtrip_fit =
          fit_ladder(run, roundtrip_floor, r.config.fit_levels, &CellResult::roundtrip_max);
  }

  void write_reference(h5::File& f, const ExperimentResult& r) const {
    KindDefaults::write_reference(f, r);
    f.attribute("/reference", "direction", std::string("encode: time.t_end -> time.t_start"));
    if (!std::isnan(r.exact_roundtrip_max))
      f.attribute("/reference", "exact_roundtrip_max", r.exact_roundtrip_max);
  }

  void write_solver(h5::File& f, const std::string& g, const SolverRun& s,
                    const ExperimentResult& r) const {
    const size_t n = static_cast<size_t>(r.particles), d = static_cast<size_t>(r.config.state_dim);
    const size_t m = s.cells.size();
    std::vector<double> max, rms, decoded;
    for (const CellResult& cell : s.cells) {
      max.push_back(cell.roundtrip_max);
      rms.push_back(cell.roundtrip_rms);
      if (cell.failed || cell.x_decoded.size() != n * d)
        decoded.insert(decoded.end(), n * d, std::nan(""));
      else
        decoded.insert(decoded.end(), cell.x_decoded.begin(), cell.x_decoded.end());
    }
    f.dataset(g + "/roundtrip_max", {m}, max);
    f.dataset(g + "/roundtrip_rms", {m}, rms);
    f.dataset(g + "/x_decoded", {m, n, d}, decoded);
    f.attribute(g, "roundtrip_fitted_order", s.roundtrip_fit.order);
  }

  std::string error_note() const {
    return "max over points and coordinates of |x_T - x_T,ref|, the encoding (time.t_end -> "
           "time.t_start); the round trip |decode(encode(x)) - x| is in roundtrip_max "
           "(pflow table --metric roundtrip_max)";
  }
};

}  // namespace pflow
