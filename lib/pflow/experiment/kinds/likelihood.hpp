// Kind "likelihood": log p_eps at given points through the probability-flow ODE (flow/
// likelihood.hpp), eps = time.t_end, integrated up to T = time.t_start. The points are
// init.points, or init.count samples of p_eps. The generic ODE solvers (the odeint family)
// integrate the state and the divergence together, fixed-step ones over `nfe` and adaptive ones
// over `tolerances`. The divergence is exact (mixtures, perturbed scores, networks by their
// Jacobian). The reference is the exact log p_eps of a mixture with the exact score and the
// exact prior, else the same integral by Bulirsch-Stoer in 50 digits. Cells store the
// log-densities (/solvers/<label>/log_density [m, n]) and the encodings x_T (x).
#pragma once

#include <chrono>
#include <optional>

#include "pflow/experiment/kind_base.hpp"
#include "pflow/flow/likelihood.hpp"
#include "pflow/sampler/odeint_solvers.hpp"
#include "pflow/target/dataset.hpp"

namespace pflow {

struct LikelihoodKind : KindDefaults {
  static constexpr const char* name = "likelihood";
  static constexpr TableLayout table_layout = TableLayout::per_cell;
  static constexpr bool allows_adaptive = true;
  static constexpr bool splits_model_error = false;
  static constexpr bool init_at_t_end = true;  // init.count draws points of p_eps
  static std::vector<std::string> own_fields() { return {"tolerances", "prior", "divergence"}; }

  void validate(const Fields& f, ExperimentConfig& c, const std::vector<SolverInfo>& infos) const {
    for (size_t i = 0; i < infos.size(); ++i)
      require(infos[i].family == "odeint", "solvers[" + std::to_string(i) + "]", infos[i].label,
              "is not a generic ODE solver: the likelihood integrates the state and its "
              "divergence together; use euler, rk4, cash-karp54, dopri5, rkf78, abm or "
              "bulirsch-stoer");
    parse_tolerances(f, c, infos);
    const bool mixture = !is_dataset_target(c.target);
    c.prior = f.text("prior", mixture ? "exact" : "gaussian", {"exact", "gaussian"});
    require(c.prior == "gaussian" || mixture, "prior", c.prior,
            "needs a mixture target (dirac, gaussian, gmm): a data set has no exact p_T");
    parse_divergence(f, c);
    require(c.t_end > 0, "time.t_end", c.t_end,
            "must be > 0: log p_0 of a mixture with "
            "point masses does not exist, and the PF-ODE is singular at t = 0");
  }

  void normalise(const ExperimentConfig& c, nlohmann::json& n) const {
    if (!c.tolerances.empty()) n["tolerances"] = c.tolerances;
    n["prior"] = c.prior;
    n["divergence"] = c.divergence;
  }

  // The reference log p_eps (1 x n): exact, or Bulirsch-Stoer in 50 digits.
  template <class Scalar>
  Mat<Scalar> reference(const RunSetup<Scalar>& s, ExperimentResult& result) const {
    const mp50 eps = from_double<mp50>(s.config.t_end), t_max = from_double<mp50>(s.config.t_start);
    const Mat<mp50> x = s.x0.template cast<mp50>();
    Vec<mp50> ref;
    if (!s.model50 && s.config.prior == "exact") {
      ref = Marginal<mp50>(s.sde50, *s.data50, eps).log_density(x);
      result.reference_method = "exact log p_eps of the mixture (50 digits)";
      result.reference_tolerance = 0;
    } else {
      std::optional<AnalyticDenoiser<mp50>> exact;  // the data's score (a mixture target)
      if (!s.model50) exact.emplace(s.sde50, *s.data50);
      const Denoiser<mp50>& model = s.model50 ? *s.model50 : *exact;
      ref = likelihood_reference<mp50>(s.sde50, model, prior_of(s), x, eps, t_max,
                                       reference_tolerance<mp50>(), s.threads);
      result.reference_method = "Bulirsch-Stoer solve of the augmented PF-ODE (" + model.name() +
                                ", " + s.config.prior + " prior, 50 digits)";
      result.reference_tolerance = to_double(reference_tolerance<mp50>());
    }
    return ref.transpose().template cast<Scalar>();
  }

  template <class Scalar>
  void run_cell(const CellRun<Scalar>& run, CellResult& cell) const {
    const RunSetup<Scalar>& s = run.setup;
    const auto* stepper = dynamic_cast<const OdeintSolver<Scalar>*>(&run.solver);
    require(stepper != nullptr, "solver", run.solver.info().label, "is not an odeint solver");
    const auto prior = s.config.prior == "exact" ? s.data : nullptr;
    std::vector<Scalar> grid(run.grid.rbegin(), run.grid.rend());  // eps -> T
    const nlohmann::json& div = s.config.divergence;
    const bool hutchinson = div.at("type") == "hutchinson";
    // Hutchinson: every point repeated `count` times, each copy with its own probe, the same
    // probes in every cell (so cells differ by their discretisation only).
    const Eigen::Index n = s.x0.cols(), copies = hutchinson ? div.at("count").get<int>() : 1;
    Mat<Scalar> x(s.x0.rows(), n * copies), probes;
    for (Eigen::Index j = 0; j < n; ++j)
      for (Eigen::Index r = 0; r < copies; ++r) x.col(j * copies + r) = s.x0.col(j);
    if (hutchinson) {
      Rng rng(div.at("seed").get<std::uint64_t>());
      probes = rng.normal_matrix<Scalar>(x.rows(), x.cols());
      if (div.at("probes") == "rademacher")
        probes = probes.unaryExpr([](const Scalar& v) { return v > 0 ? Scalar(1) : Scalar(-1); });
    }
    const auto start = std::chrono::steady_clock::now();
    const LikelihoodSolve<Scalar> r = likelihood_solve<Scalar>(
        s.sde, *s.problem.model, prior, x, grid, stepper->method(), stepper->adaptive(),
        stepper->tolerance(), stepper->in_lambda(), hutchinson ? &probes : nullptr);
    cell.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    cell.nfe = r.nfe;
    cell.steps = r.steps;
    Mat<Scalar> mean(1, n), ends(s.x0.rows(), n);
    for (Eigen::Index j = 0; j < n; ++j) {
      mean(0, j) = r.log_density.segment(j * copies, copies).mean();
      ends.col(j) = r.x_end.col(j * copies);
    }
    cell.x = row_major(ends);
    const Mat<Scalar> diff = mean - run.reference;
    std::tie(cell.err_max, cell.err_rms) = max_and_rms<Scalar>(diff);
    cell.log_density = row_major(Mat<Scalar>(mean));
    if (hutchinson)
      for (Eigen::Index j = 0; j < n; ++j) {
        const Vec<Scalar> v = r.log_density.segment(j * copies, copies);
        const Scalar variance = (v.array() - mean(0, j)).square().sum() / Scalar(copies - 1);
        cell.log_density_se.push_back(std::sqrt(to_double(variance) / to_double(Scalar(copies))));
      }
  }

  void write_reference(h5::File& f, const ExperimentResult& r) const {
    const size_t n = static_cast<size_t>(r.particles);
    f.group("/reference");
    f.dataset("/reference/log_density", {n}, r.reference);
    f.attribute("/reference", "method", r.reference_method);
    f.attribute("/reference", "tolerance", r.reference_tolerance);
    f.attribute("/reference", "prior", r.config.prior);
  }

  void write_solver(h5::File& f, const std::string& g, const SolverRun& s,
                    const ExperimentResult& r) const {
    const size_t n = static_cast<size_t>(r.particles), m = s.cells.size();
    // A per-point field of every cell, [m, n]; NaN rows for failed cells.
    auto write = [&](const std::string& name, std::vector<double> CellResult::*field) {
      std::vector<double> values;
      for (const CellResult& cell : s.cells) {
        const std::vector<double>& v = cell.*field;
        if (cell.failed || v.size() != n)
          values.insert(values.end(), n, std::nan(""));
        else
          values.insert(values.end(), v.begin(), v.end());
      }
      f.dataset(g + "/" + name, {m, n}, values);
    };
    write("log_density", &CellResult::log_density);
    if (r.config.divergence.at("type") == "hutchinson")
      write("log_density_se", &CellResult::log_density_se);
  }

  std::string error_note() const {
    return "max over points of |log p_eps - reference| (log-densities through the PF-ODE)";
  }

 private:
  // "divergence": "exact" [default] or {"type": "hutchinson", "probes": "rademacher" [default] |
  // "gaussian", "count": N [100] (2 to 100000), "seed": S [0]}.
  static void parse_divergence(const Fields& f, ExperimentConfig& c) {
    const nlohmann::json raw = f.has("divergence") ? f.raw("divergence") : nlohmann::json("exact");
    if (raw.is_string()) {
      require(raw == "exact", "divergence", raw.dump(),
              "must be \"exact\" or {\"type\": \"hutchinson\", ...}");
      c.divergence = {{"type", "exact"}};
      return;
    }
    const Fields d(raw, "divergence", {"type", "probes", "count", "seed"});
    const std::string type = d.text("type", std::nullopt, {"exact", "hutchinson"});
    if (type == "exact") {
      Fields(raw, "divergence", {"type"});
      c.divergence = {{"type", "exact"}};
      return;
    }
    const int count = d.integer("count", 100);
    require(count >= 2 && count <= 100000, "divergence.count", count,
            "must be between 2 and 100000 probes per point");
    const double seed = to_double(d.number<double>("seed", 0.0));
    require(seed >= 0 && seed == std::floor(seed) && seed < 9e15, "divergence.seed", seed,
            "must be a non-negative integer");
    c.divergence = {{"type", "hutchinson"},
                    {"probes", d.text("probes", "rademacher", {"rademacher", "gaussian"})},
                    {"count", count},
                    {"seed", static_cast<std::uint64_t>(seed)}};
  }

  template <class Scalar>
  static const GaussianMixture<mp50>* prior_of(const RunSetup<Scalar>& s) {
    return s.config.prior == "exact" ? s.data50 : nullptr;
  }
};

}  // namespace pflow
