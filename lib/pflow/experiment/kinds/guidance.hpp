// Kind "guidance": a sweep of the guidance scale w on a labelled 2-D mixture (docs/NOTES.md
// sec. 14). (With "method": "classifier" the tilt exponent is w - 1: classifier guidance at w is
// CFG at w - 1.) With denoiser "mlp" (a class-conditional network) the guided score is
// classifier-free guidance of the network, measured against the same exact tilted densities.
// The particles are init.count samples of the unconditional p_T, the same for every
// scale; each cell (solver x NFE) samples with the guided score at every scale in
// guidance.scales and measures, per scale:
//   in_class  the fraction of samples whose most probable class under p_0 is the label,
//   spread    the trace of the samples' covariance,
//   sw2       the sliced W2 distance to the tilted density q_w ~ p(x | y)^(1 + w) p(x)^(-w), the
//             density CFG is often said to sample, as the RMS over `replicates` samples of q_w.
// With a network, per scale also
//   exact_cfg_gap  the RMS over particles of |x_net - x_exact|, x_exact the exact CFG flow of the
//                  same x_T by the same solver and grid: the model's share of the guided result.
// q_w is normalised on a fine grid (guidance.grid cells per axis over the mixture's extent);
// its samples pick a cell by its mass and a uniform point in it. The grid gives q_w's own class
// fraction and spread exactly (the cells' uniform spread included), and the floor of sw2 (two
// samples of q_w), so each measurement sits beside what sampling q_w would give.
#pragma once

#include <algorithm>

#include "pflow/experiment/kind_base.hpp"
#include "pflow/experiment/kinds/sample.hpp"
#include "pflow/model/denoisers.hpp"

namespace pflow {

namespace detail {

// The tilted density on a grid: cell centres' log-masses normalised, and what follows from them.
struct TiltedGrid {
  Vec<double> xs, ys;   // cell centres per axis
  double cell = 0;      // cell width (square cells)
  Vec<double> mass;     // per cell, row-major (iy * nx + ix), sums to 1
  double in_class = 0;  // mass of the cells whose most probable class is the label
  double spread = 0;    // trace of the covariance, cells as uniform squares
  double boundary = 0;  // mass in the outermost ring of cells (truncation check)
};

// log(p(x | y) p(y)) minus the largest of the other classes' (per column of x, 2 x n): the
// point's most probable class under the data is `label` where it is >= 0.
inline Vec<double> class_margin(const GaussianMixture<double>& data, int label,
                                const Mat<double>& x) {
  std::vector<int> classes = data.labels();
  std::sort(classes.begin(), classes.end());
  classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
  Vec<double> own = Vec<double>::Constant(x.cols(), -1e300), other = own;
  for (int y : classes) {
    const Vec<double> joint =
        data.conditional(y).log_density(x).array() + std::log(data.class_prior(y));
    if (y == label)
      own = joint;
    else
      other = other.cwiseMax(joint);
  }
  return own - other;
}

inline TiltedGrid tilted_grid(const GaussianMixture<double>& data, int label, double w, int cells) {
  // Extent: every component's mean +- 7 standard deviations along its widest axis.
  Vec<double> lo = Vec<double>::Constant(2, 1e300), hi = Vec<double>::Constant(2, -1e300);
  for (int k = 0; k < data.components(); ++k) {
    const double radius =
        7 * std::sqrt(Eigen::SelfAdjointEigenSolver<Mat<double>>(data.cov(k).to_dense())
                          .eigenvalues()
                          .maxCoeff());
    const Vec<double> mean = data.means().col(k);
    lo = lo.cwiseMin(Vec<double>(mean.array() - radius));
    hi = hi.cwiseMax(Vec<double>(mean.array() + radius));
  }
  TiltedGrid g;
  g.cell = (hi - lo).maxCoeff() / cells;
  g.xs = Vec<double>::LinSpaced(cells, lo(0) + g.cell / 2, lo(0) + g.cell * (cells - 0.5));
  g.ys = Vec<double>::LinSpaced(cells, lo(1) + g.cell / 2, lo(1) + g.cell * (cells - 0.5));
  Mat<double> points(2, static_cast<Eigen::Index>(cells) * cells);
  for (int iy = 0; iy < cells; ++iy)
    for (int ix = 0; ix < cells; ++ix) points.col(iy * cells + ix) << g.xs(ix), g.ys(iy);
  const GaussianMixture<double> conditional = data.conditional(label);
  const Vec<double> log_full = data.log_density(points);
  const Vec<double> log_cond = conditional.log_density(points);
  Vec<double> log_q = (1 + w) * log_cond - w * log_full;
  const double top = log_q.maxCoeff();
  g.mass = (log_q.array() - top).exp();
  g.mass /= g.mass.sum();
  const Vec<double> margin = class_margin(data, label, points);
  Vec<double> mean = Vec<double>::Zero(2);
  for (Eigen::Index c = 0; c < points.cols(); ++c) {
    if (margin(c) >= 0) g.in_class += g.mass(c);
    mean += g.mass(c) * points.col(c);
  }
  for (Eigen::Index c = 0; c < points.cols(); ++c)
    g.spread += g.mass(c) * (points.col(c) - mean).squaredNorm();
  g.spread += 2 * g.cell * g.cell / 12;  // the uniform position within a cell, per axis
  for (int iy = 0; iy < cells; ++iy)
    for (int ix = 0; ix < cells; ++ix)
      if (ix == 0 || iy == 0 || ix == cells - 1 || iy == cells - 1)
        g.boundary += g.mass(iy * cells + ix);
  return g;
}

// n samples of the grid density: a cell by its mass, then a uniform point in it.
inline Mat<double> sample_grid(const TiltedGrid& g, int n, Rng& rng) {
  std::vector<double> cdf(static_cast<size_t>(g.mass.size()));
  double total = 0;
  for (Eigen::Index c = 0; c < g.mass.size(); ++c) cdf[static_cast<size_t>(c)] = total += g.mass(c);
  const auto nx = g.xs.size();
  Mat<double> out(2, n);
  for (int j = 0; j < n; ++j) {
    const double u = rng.uniform() * total;
    const auto c = static_cast<Eigen::Index>(std::min<size_t>(
        static_cast<size_t>(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin()),
        cdf.size() - 1));
    out(0, j) = g.xs(c % nx) + (rng.uniform() - 0.5) * g.cell;
    out(1, j) = g.ys(c / nx) + (rng.uniform() - 0.5) * g.cell;
  }
  return out;
}

}  // namespace detail

struct GuidanceKind : KindDefaults {
  static constexpr const char* name = "guidance";
  static constexpr TableLayout table_layout = TableLayout::guidance;
  // The brief report's error: sw2 at the largest scale.
  static constexpr double CellResult::*primary_error = &CellResult::sw2;
  static constexpr const char* primary_label = "smallest sw2 at the largest scale";
  static constexpr bool splits_model_error = false;
  static std::vector<std::string> own_fields() { return {"guidance", "projections", "replicates"}; }

  void validate(const Fields& f, ExperimentConfig& c, const std::vector<SolverInfo>& infos) const {
    SampleKind().validate(f, c, infos);  // projections, replicates, particles
    const std::string type = c.denoiser.value("type", "analytic");
    require(type == "analytic" || type == "mlp", "denoiser.type", type,
            "kind \"guidance\" builds its guided score at every scale itself: use \"analytic\" "
            "(the exact scores) or \"mlp\" (a class-conditional network)");
    require(!c.denoiser.contains("label"), "denoiser.label", c.denoiser.value("label", -1),
            "kind \"guidance\" takes its class from guidance.label");
    require(c.target.value("type", "") == "gmm" && c.target.contains("labels") && c.data_dim == 2,
            "target", c.target.value("type", ""),
            "kind \"guidance\" needs a 2-D gmm target with \"labels\" (the tilted density is "
            "normalised on a 2-D grid)");
    const nlohmann::json raw = f.has("guidance") ? f.raw("guidance") : nlohmann::json::object();
    const Fields g(raw, "guidance", {"label", "scales", "method", "grid"});
    const int label = parse_class_label(g, "label", c.target);
    const Vec<double> scales = g.has("scales") ? g.vector<double>("scales")
                                               : (Vec<double>(6) << 0, 0.5, 1, 2, 4, 8).finished();
    require(scales.size() >= 1 && scales.size() <= 64, "guidance.scales", scales.size(),
            "must list 1 to 64 scales");
    for (Eigen::Index i = 0; i < scales.size(); ++i) {
      const std::string at = "guidance.scales[" + std::to_string(i) + "]";
      require(std::isfinite(scales(i)) && scales(i) >= 0 && scales(i) <= 1000, at, scales(i),
              "must be between 0 and 1000");
      require(i == 0 || scales(i) > scales(i - 1), at, scales(i), "scales must increase");
    }
    // The samples of the tilted densities are kept for every scale and replicate.
    const double points = static_cast<double>(scales.size()) * c.replicates *
                          (c.init_count > 0 ? c.init_count : double(c.init_points.size()));
    require(points <= 2e7, "guidance.scales", scales.size(),
            "times replicates (" + std::to_string(c.replicates) + ") times particles is " +
                to_text(points) + " tilted-density samples; at most 2e7 are kept in memory");
    const int cells = g.integer("grid", 800);
    require(cells >= 50 && cells <= 4000, "guidance.grid", cells,
            "must be between 50 and 4000 cells per axis");
    const std::string method = g.text("method", "cfg", {"cfg", "classifier"});
    require(type == "analytic" || method == "cfg", "guidance.method", method,
            "a learned model has no classifier: use \"cfg\" (or the \"analytic\" denoiser)");
    c.guidance = {{"label", label},
                  {"scales", std::vector<double>(scales.data(), scales.data() + scales.size())},
                  {"method", method},
                  {"grid", cells}};
  }

  void normalise(const ExperimentConfig& c, nlohmann::json& n) const {
    SampleKind().normalise(c, n);
    n["guidance"] = c.guidance;
  }

  template <class Scalar>
  void configure(RunSetup<Scalar>& s) const {
    s.problem.brownian_levels = 0;  // stochastic solvers draw their own noise, as in kind sample
  }

  // Per scale: the tilted density's grid, R samples of n points of it (the returned columns,
  // scale after scale), and the floor from R more.
  template <class Scalar>
  Mat<Scalar> reference(const RunSetup<Scalar>& s, ExperimentResult& result) const {
    const ExperimentConfig& c = s.config;
    const auto data = make_target<double>(c.target, "target");
    const int n = static_cast<int>(s.x0.cols()), replicates = c.replicates;
    const std::vector<double> scales = c.guidance.at("scales").get<std::vector<double>>();
    const int label = c.guidance.at("label").get<int>(), cells = c.guidance.at("grid").get<int>();
    const Mat<double> theta = random_directions(2, c.projections, SampleKind::direction_seed(c));
    Mat<double> all(2, static_cast<Eigen::Index>(scales.size()) * replicates * n);
    std::vector<double> floor, in_class, spread, boundary, first_x;
    // Classifier guidance at w is CFG at w - 1: its tilt exponent is w - 1 (docs/NOTES.md
    // sec. 14).
    const double shift = c.guidance.at("method") == "classifier" ? 1.0 : 0.0;
    for (size_t k = 0; k < scales.size(); ++k) {
      const detail::TiltedGrid grid = detail::tilted_grid(data, label, scales[k] - shift, cells);
      Rng rng(SampleKind::data_seed(c) + k);
      const Mat<double> first = detail::sample_grid(grid, n * replicates, rng);
      const Mat<double> second = detail::sample_grid(grid, n * replicates, rng);
      double square = 0;
      for (int r = 0; r < replicates; ++r) {
        const double d = sliced_w2(second.middleCols(static_cast<Eigen::Index>(r) * n, n),
                                   first.middleCols(static_cast<Eigen::Index>(r) * n, n), theta);
        square += d * d / replicates;
      }
      all.middleCols(static_cast<Eigen::Index>(k) * replicates * n, replicates * n) = first;
      floor.push_back(std::sqrt(square));
      in_class.push_back(grid.in_class);
      spread.push_back(grid.spread);
      boundary.push_back(grid.boundary);
      const auto x = row_major<double>(first.leftCols(n));
      first_x.insert(first_x.end(), x.begin(), x.end());
    }
    const size_t m = scales.size();
    result.tables = {{"/reference/scales", {m}, scales},
                     {"/reference/sw2_floor", {m}, floor},
                     {"/reference/tilted_in_class", {m}, in_class},
                     {"/reference/tilted_spread", {m}, spread},
                     {"/reference/tilted_boundary_mass", {m}, boundary},
                     {"/reference/tilted_x", {m, static_cast<size_t>(n), 2}, first_x}};
    result.reference_method =
        "the tilted densities p(x|y)^(1+w) p(x)^(-w) on a " + std::to_string(cells) + " x " +
        std::to_string(cells) + " grid, " + std::to_string(replicates) + " x " + std::to_string(n) +
        " samples each; sliced W2 over " + std::to_string(c.projections) + " directions";
    result.reference_tolerance = 0;
    return all.template cast<Scalar>();
  }

  template <class Scalar>
  void run_cell(const CellRun<Scalar>& run, CellResult& cell) const {
    const RunSetup<Scalar>& s = run.setup;
    const ExperimentConfig& c = s.config;
    const auto data = make_target<double>(c.target, "target");
    const std::vector<double> scales = c.guidance.at("scales").get<std::vector<double>>();
    const int label = c.guidance.at("label").get<int>();
    const bool classifier = c.guidance.at("method") == "classifier";
    const Mat<double> theta = random_directions(2, c.projections, SampleKind::direction_seed(c));
    const Eigen::Index n = s.x0.cols();
    const int replicates = c.replicates;
    cell.err_max = cell.err_rms = std::nan("");  // no reference flow
    for (size_t k = 0; k < scales.size(); ++k) {
      // The exact guided score, or classifier-free guidance of the run's class-conditional
      // network.
      std::unique_ptr<Denoiser<Scalar>> guided;
      if (s.mlp)
        guided = std::make_unique<CfgMlpDenoiser<Scalar>>(s.sde, *s.mlp, label,
                                                          from_double<Scalar>(scales[k]));
      else
        guided = std::make_unique<GuidedDenoiser<Scalar>>(
            s.sde, *s.data, label, from_double<Scalar>(scales[k]), classifier);
      Problem<Scalar> problem = s.problem;
      problem.model = guided.get();
      const SolveResult<Scalar> r = solve(run.solver, problem, run.grid, s.x0);
      const Mat<double> x = s.sde.data_part(s.sde.to_spectral(r.x)).template cast<double>();
      if (s.mlp) {  // the exact CFG flow beside the network's
        const GuidedDenoiser<Scalar> exact(s.sde, *s.data, label, from_double<Scalar>(scales[k]),
                                           false);
        problem.model = &exact;
        const Mat<double> x_exact =
            s.sde.data_part(s.sde.to_spectral(solve(run.solver, problem, run.grid, s.x0).x))
                .template cast<double>();
        cell.series["exact_cfg_gap"].push_back((x - x_exact).norm() / std::sqrt(double(n)));
      }
      const Vec<double> margin = detail::class_margin(data, label, x);
      const Mat<double> centred = x.colwise() - x.rowwise().mean();
      const Mat<double> own = sorted_projections(x, theta);
      const double sw2 = rms_sliced_w2(own, replicates, [&](int q) {
        const Eigen::Index at = (static_cast<Eigen::Index>(k) * replicates + q) * n;
        return sorted_projections(run.reference.middleCols(at, n).template cast<double>(), theta);
      });
      const double spread = centred.squaredNorm() / double(n - 1);
      if (!std::isfinite(sw2) || !std::isfinite(spread))
        throw NumericalError("the guided samples at scale " + to_text(scales[k]) +
                             " are not finite");
      cell.series["in_class"].push_back(static_cast<double>((margin.array() >= 0).count()) /
                                        static_cast<double>(n));
      cell.series["spread"].push_back(spread);
      cell.series["sw2"].push_back(sw2);
      const auto samples = row_major<double>(x);
      cell.series["samples"].insert(cell.series["samples"].end(), samples.begin(), samples.end());
      cell.nfe = r.nfe;
      cell.steps = r.steps;
      cell.wall_s += r.wall_s;
      if (k == 0) cell.x = row_major(r.x);
      cell.sw2 = sw2;  // the largest scale's, after the loop
    }
  }

  void finish(ExperimentResult&, double) const {}  // distances and fractions: no orders

  void write_reference(h5::File& f, const ExperimentResult& r) const {
    f.group("/reference");
    for (const Table& t : r.tables) f.dataset(t.path, t.shape, t.data);
    f.attribute("/reference", "method", r.reference_method);
    f.attribute("/reference", "guidance", r.config.guidance.dump());
  }

  void write_solver(h5::File& f, const std::string& g, const SolverRun& s,
                    const ExperimentResult& r) const {
    const size_t m = s.cells.size(), scales = r.config.guidance.at("scales").size();
    const size_t n = static_cast<size_t>(r.particles);
    for (const char* key : {"in_class", "spread", "sw2", "samples", "exact_cfg_gap"}) {
      if (std::string(key) == "exact_cfg_gap" &&
          std::none_of(s.cells.begin(), s.cells.end(),
                       [](const CellResult& c) { return c.series.count("exact_cfg_gap") > 0; }))
        continue;  // the exact scores: no gap
      const size_t width = std::string(key) == "samples" ? scales * n * 2 : scales;
      std::vector<double> values;
      for (const CellResult& cell : s.cells) {
        const auto it = cell.series.find(key);
        if (cell.failed || it == cell.series.end() || it->second.size() != width)
          values.insert(values.end(), width, std::nan(""));
        else
          values.insert(values.end(), it->second.begin(), it->second.end());
      }
      if (std::string(key) == "samples")
        f.dataset(g + "/samples", {m, scales, n, 2}, values);
      else
        f.dataset(g + "/" + key, {m, scales}, values);
    }
  }

  std::string error_note() const {
    return "per scale w: in_class = fraction of samples whose most probable class is the label, "
           "spread = trace of the samples' covariance, sw2 = sliced W2 to the tilted density "
           "p(x|y)^(1+w) p(x)^(-w) (RMS over replicates; its floor and the tilted density's own "
           "in_class and spread beside)";
  }
};

}  // namespace pflow
