// Kind "interpolation": a path between two latents, decoded by every solver (docs/NOTES.md
// sec. 13). init.points holds two points: data points at eps = time.t_end, encoded to latents at
// T = time.t_start by the reference flow ("endpoints": "data", the default), or the latents
// themselves ("latent"). The path has `count` points u_k = k / (count - 1), linear or spherical
// (flow/interpolation.hpp); they are the run's initial states. Each cell decodes the whole path
// (its error against the reference decoding, as in a convergence run), names the mixture
// component of every decoded point (the largest log p_eps(x, k)), and finds where the decoded
// path switches component: the root u* of log p_eps(x(u), a) - log p_eps(x(u), b) between path
// points of different components, by the Illinois method, each evaluation a decode of one
// latent. The reference does the same with the 50-digit flow; switch_error is the largest
// |u* - u*_ref|, and gets a fitted order.
#pragma once

#include <limits>

#include "pflow/experiment/kind_base.hpp"
#include "pflow/flow/interpolation.hpp"
#include "pflow/target/dataset.hpp"
#include "pflow/target/marginal.hpp"

namespace pflow {

namespace detail {

// A root of g in [lo, hi] with g(lo) >= 0 >= g(hi) by the Illinois variant of regula falsi
// (superlinear, bracketing): stops when the estimate moves by less than `tol`.
template <class Scalar, class G>
Scalar illinois_root(G&& g, Scalar lo, Scalar hi, Scalar g_lo, Scalar g_hi, const Scalar& tol) {
  using std::abs;
  if (g_lo == 0) return lo;  // a path point on the boundary itself
  if (g_hi == 0) return hi;
  Scalar c = lo;
  int side = 0;
  for (int it = 0; it < 200; ++it) {
    const Scalar previous = c;
    c = (g_hi - g_lo) != 0 ? Scalar((lo * g_hi - hi * g_lo) / (g_hi - g_lo))
                           : Scalar((lo + hi) / 2);
    if (!(c > lo && c < hi)) c = (lo + hi) / 2;
    if (it > 0 && abs(Scalar(c - previous)) < tol) break;
    const Scalar gc = g(c);
    if (gc == 0) break;
    if (gc * g_lo > 0) {
      lo = c, g_lo = gc;
      if (side == 1) g_hi /= 2;
      side = 1;
    } else {
      hi = c, g_hi = gc;
      if (side == -1) g_lo /= 2;
      side = -1;
    }
  }
  return c;
}

// The component switches of a decoded path: for each pair of neighbouring path points whose
// components differ, the root u* in between. `decode` maps one latent (D x 1) to its decoded
// point; `log_joint` gives log p_eps(x, k) (K x n).
template <class Scalar, class Decode, class LogJoint>
void find_switches(const Mat<Scalar>& decoded, const Vec<Scalar>& u, const Vec<Scalar>& a,
                   const Vec<Scalar>& b, const std::string& method, const Scalar& tol,
                   Decode&& decode, LogJoint&& log_joint, std::vector<double>& components,
                   std::vector<double>& switches, std::vector<double>& pairs) {
  const Mat<Scalar> joint = log_joint(decoded);
  std::vector<Eigen::Index> label(static_cast<size_t>(decoded.cols()));
  for (Eigen::Index j = 0; j < decoded.cols(); ++j) {
    joint.col(j).maxCoeff(&label[static_cast<size_t>(j)]);
    components.push_back(static_cast<double>(label[static_cast<size_t>(j)]));
  }
  for (size_t j = 0; j + 1 < label.size(); ++j) {
    const Eigen::Index from = label[j], to = label[j + 1];
    if (from == to) continue;
    auto gap = [&](const Scalar& v) -> Scalar {
      const Mat<Scalar> x = decode(Mat<Scalar>(interpolate<Scalar>(a, b, v, method)));
      const Mat<Scalar> lj = log_joint(x);
      return lj(from, 0) - lj(to, 0);
    };
    const auto i = static_cast<Eigen::Index>(j);
    const Scalar root = illinois_root<Scalar>(gap, u(i), u(i + 1), joint(from, i) - joint(to, i),
                                              joint(from, i + 1) - joint(to, i + 1), tol);
    switches.push_back(to_double(root));
    pairs.push_back(static_cast<double>(from));
    pairs.push_back(static_cast<double>(to));
  }
}

}  // namespace detail

struct InterpolationKind : KindDefaults {
  static constexpr const char* name = "interpolation";
  static std::vector<std::string> own_fields() { return {"interpolation"}; }

  void validate(const Fields& f, ExperimentConfig& c, const std::vector<SolverInfo>& infos) const {
    // Each switch is located by decoding single latents: a stochastic solver would draw other
    // noise for them than for the path.
    for (size_t i = 0; i < infos.size(); ++i)
      require(!infos[i].stochastic, "solvers[" + std::to_string(i) + "]", infos[i].label,
              "is stochastic: kind \"interpolation\" decodes latents deterministically");
    require(!is_dataset_target(c.target), "target", c.target.value("type", ""),
            "has no components: kind \"interpolation\" needs a mixture target (gaussian, gmm) "
            "to name the component of each decoded point");
    require(c.init_count == 0 && c.init_points.size() == 2, "init",
            c.init_count ? "count" : std::to_string(c.init_points.size()) + " points",
            "kind \"interpolation\" needs exactly two points, {\"points\": [a, b]}");
    const nlohmann::json raw =
        f.has("interpolation") ? f.raw("interpolation") : nlohmann::json::object();
    const Fields p(raw, "interpolation", {"method", "count", "endpoints"});
    const int count = p.integer("count", 33);
    require(count >= 3 && count <= 10001, "interpolation.count", count,
            "must be between 3 and 10001 path points");
    c.interpolation = {{"method", p.text("method", "slerp", {"slerp", "linear"})},
                       {"count", count},
                       {"endpoints", p.text("endpoints", "data", {"data", "latent"})}};
  }

  void normalise(const ExperimentConfig& c, nlohmann::json& n) const {
    n["interpolation"] = c.interpolation;
  }

  // The latents (encoded data points, or the points themselves) and the path between them,
  // which replaces the initial states.
  template <class Scalar>
  void configure(RunSetup<Scalar>& s) const {
    const nlohmann::json& p = s.config.interpolation;
    Mat<Scalar> ends = s.x0;
    if (p.at("endpoints") == "data") {
      std::string method;
      double tolerance = 0;
      s.encode = true;  // the reference flow from t_end to t_start
      ends = s.model50 ? model_flow(s, method, tolerance) : analytic_flow(s, method, tolerance);
      s.encode = false;
    }
    s.x0 = interpolation_path<Scalar>(ends.col(0), ends.col(1), p.at("count").get<int>(),
                                      p.at("method").get<std::string>());
  }

  // The reference decoding of the path (KindDefaults), and its component switches in 50 digits.
  template <class Scalar>
  Mat<Scalar> reference(const RunSetup<Scalar>& s, ExperimentResult& result) const {
    const Mat<Scalar> ref = KindDefaults::reference(s, result);
    const Eigen::Index n = s.x0.cols();
    const Vec<mp50> a = s.x0.col(0).template cast<mp50>(),
                    b = s.x0.col(n - 1).template cast<mp50>();
    Vec<mp50> u;
    interpolation_path<mp50>(a, b, static_cast<int>(n), method_of(s), &u);
    const mp50 from = from_double<mp50>(s.config.t_start), to = from_double<mp50>(s.config.t_end);
    const Marginal<mp50> marginal(s.sde50, *s.data50, to);
    auto decode = [&](const Mat<mp50>& x) -> Mat<mp50> {
      if (s.model50) return reference_flow<mp50>(s.sde50, *s.model50, x, from, to);
      if (s.exact_reference) return exact_flow_map(s.sde50, *s.data50, x, from, to);
      return reference_flow<mp50>(s.sde50, *s.data50, x, from, to);
    };
    detail::find_switches<mp50>(
        ref.template cast<mp50>(), u, a, b, method_of(s), mp50("1e-20"), decode,
        [&](const Mat<mp50>& x) { return marginal.component_log_joint(x); },
        result.reference_components, result.reference_switches, result.reference_switch_pairs);
    for (Eigen::Index k = 0; k < n; ++k) result.path_parameters.push_back(to_double(u(k)));
    for (Eigen::Index j : {Eigen::Index(0), n - 1})
      for (Eigen::Index i = 0; i < s.x0.rows(); ++i)
        result.latents.push_back(to_double(Scalar(s.x0(i, j))));
    return ref;
  }

  template <class Scalar>
  void run_cell(const CellRun<Scalar>& run, CellResult& cell) const {
    const RunSetup<Scalar>& s = run.setup;
    const SolveResult<Scalar> r = solve(run.solver, s.problem, run.grid, s.x0);
    record_errors(r, run, cell);
    const Eigen::Index n = s.x0.cols();
    const Vec<Scalar> a = s.x0.col(0), b = s.x0.col(n - 1);
    Vec<Scalar> u;
    interpolation_path<Scalar>(a, b, static_cast<int>(n), method_of(s), &u);
    const Marginal<Scalar> marginal(s.sde, *s.data, s.t_end);
    auto decode = [&](const Mat<Scalar>& x) -> Mat<Scalar> {
      return solve(run.solver, s.problem, run.grid, x).x;
    };
    detail::find_switches<Scalar>(
        r.x, u, a, b, method_of(s), Scalar(100 * eps<Scalar>()), decode,
        [&](const Mat<Scalar>& x) { return marginal.component_log_joint(x); }, cell.components,
        cell.switches, cell.switch_pairs);
  }

  // switch_error per cell against the reference's switches, and its fitted order.
  void finish(ExperimentResult& r, double floor) const {
    KindDefaults::finish(r, floor);
    for (SolverRun& run : r.solvers) {
      for (CellResult& cell : run.cells) {
        if (cell.failed) continue;
        if (cell.switch_pairs != r.reference_switch_pairs) {
          cell.switch_error = std::numeric_limits<double>::infinity();
          continue;
        }
        cell.switch_error = 0;
        for (size_t i = 0; i < cell.switches.size(); ++i)
          cell.switch_error =
              std::max(cell.switch_error, std::abs(cell.switches[i] - r.reference_switches[i]));
      }
      // u lies in [0, 1]: the round-off floor of the run's precision, unscaled.
      const double u_floor = r.config.precision == "mp50"       ? 1e-45
                             : r.config.precision == "float128" ? 1e-30
                                                                : 1e-13;
      run.switch_fit = fit_ladder(run, u_floor, r.config.fit_levels, &CellResult::switch_error);
    }
  }

  void write_reference(h5::File& f, const ExperimentResult& r) const {
    KindDefaults::write_reference(f, r);
    const size_t n = r.path_parameters.size(), d = static_cast<size_t>(r.config.state_dim);
    f.dataset("/reference/u", {n}, r.path_parameters);
    f.dataset("/reference/latents", {2, d}, r.latents);
    f.dataset("/reference/components", {n}, r.reference_components);
    f.dataset("/reference/switches", {r.reference_switches.size()}, r.reference_switches);
    f.dataset("/reference/switch_pairs", {r.reference_switches.size(), 2},
              r.reference_switch_pairs);
    f.attribute("/reference", "interpolation", r.config.interpolation.dump());
  }

  void write_solver(h5::File& f, const std::string& g, const SolverRun& s,
                    const ExperimentResult& r) const {
    const size_t n = r.path_parameters.size(), m = s.cells.size();
    const size_t switches = r.reference_switches.size();
    std::vector<double> components, at, error;
    for (const CellResult& cell : s.cells) {
      error.push_back(cell.switch_error);
      const bool ok = !cell.failed && cell.components.size() == n;
      components.insert(components.end(), ok ? cell.components.begin() : cell.components.end(),
                        cell.components.end());
      if (!ok) components.insert(components.end(), n, std::nan(""));
      // The switch parameters where the pattern matches the reference's; NaN otherwise.
      const bool matches =
          !cell.failed && cell.switches.size() == switches && std::isfinite(cell.switch_error);
      if (matches)
        at.insert(at.end(), cell.switches.begin(), cell.switches.end());
      else
        at.insert(at.end(), switches, std::nan(""));
    }
    f.dataset(g + "/components", {m, n}, components);
    f.dataset(g + "/switches", {m, switches}, at);
    f.dataset(g + "/switch_error", {m}, error);
    f.attribute(g, "switch_fitted_order", s.switch_fit.order);
  }

  std::string error_note() const {
    return "max over path points and coordinates of |x - x_ref| at t_end (the decoded path); "
           "where it switches component: pflow table --metric switch_error";
  }

 private:
  template <class Scalar>
  static std::string method_of(const RunSetup<Scalar>& s) {
    const ExperimentConfig& c = s.config;
    return c.interpolation.at("method").get<std::string>();
  }
};

}  // namespace pflow
