// Kind "elbo": the evidence lower bound of a vp-discrete chain with the exact model (flow/elbo.hpp,
// docs/NOTES.md sec. 18), for each chain length in elbo.T: L_T, the sum of the L_{t-1}, L_0 and
// the bound, in closed form for Gaussian data and by Monte Carlo for any mixture, beside the
// exact expected log-likelihood of the data; and per step, for the last T, every term, its
// Monte-Carlo estimate and standard error, and L_simple's weights. No solvers, no cells.
#pragma once

#include "pflow/experiment/kind_base.hpp"
#include "pflow/experiment/table.hpp"
#include "pflow/flow/elbo.hpp"
#include "pflow/sde/factory.hpp"

namespace pflow {

struct ElboKind : KindDefaults {
  static constexpr const char* name = "elbo";
  static constexpr bool has_cells = false;
  static std::vector<std::string> own_fields() { return {"elbo"}; }

  void validate(const Fields& f, ExperimentConfig& c, const std::vector<SolverInfo>&) const {
    require(c.sde.value("type", "") == "vp-discrete", "sde.type", c.sde.value("type", ""),
            "kind \"elbo\" needs a \"vp-discrete\" chain (DDPM's bound is over its steps)");
    const std::string target = c.target.value("type", "");
    require(target == "gaussian" || target == "gmm", "target.type", target,
            "kind \"elbo\" needs a density: \"gaussian\" or \"gmm\"");
    const nlohmann::json raw = f.has("elbo") ? f.raw("elbo") : nlohmann::json::object();
    const Fields e(raw, "elbo", {"T", "samples", "seed"});
    std::vector<int> lengths;
    if (e.has("T")) {
      require(!c.sde.contains("betas"), "elbo.T", e.raw("T").dump(),
              "needs a named schedule (sde.schedule), not an explicit betas list");
      const nlohmann::json& list = e.raw("T");
      require(list.is_array() && !list.empty() && list.size() <= 32, "elbo.T", list.dump(),
              "must list 1 to 32 chain lengths");
      for (size_t i = 0; i < list.size(); ++i) {
        const std::string at = "elbo.T[" + std::to_string(i) + "]";
        const int n = Fields::integer_of(list[i], at);
        require(n >= 1 && n <= 100000, at, n, "must be between 1 and 100000");
        require(lengths.empty() || n > lengths.back(), at, n, "lengths must increase");
        try {  // the schedule at this length (vp-linear needs T > beta_max)
          chain_of(c.sde, c.data_dim, n);
        } catch (const InputError& e) {
          throw InputError(at, std::to_string(n), std::string("makes no valid chain: ") + e.what());
        }
        lengths.push_back(n);
      }
    } else {
      lengths.push_back(chain_of(c.sde, c.data_dim, 0).steps());
    }
    const int samples = e.integer("samples", 2000);
    require(samples >= 2 && samples <= 1000000, "elbo.samples", samples,
            "must be between 2 and 1000000 (Monte-Carlo pairs per term)");
    double work = 0;
    for (int n : lengths) work += static_cast<double>(n) * samples;
    require(work <= 2e9, "elbo.samples", samples,
            "times the summed chain lengths is " + to_text(work) +
                " model evaluations per point (at most 2e9)");
    const int seed = e.integer("seed", 0);
    require(seed >= 0, "elbo.seed", seed, "must be >= 0");
    c.elbo = {{"T", lengths}, {"samples", samples}, {"seed", seed}};
  }

  void normalise(const ExperimentConfig& c, nlohmann::json& n) const { n["elbo"] = c.elbo; }

  void run_tables(const ExperimentConfig& c, ExperimentResult& r) const {
    if (c.precision == "mp50")
      tables<mp50>(c, r);
    else if (c.precision == "float128")
      tables<f128>(c, r);
    else
      tables<double>(c, r);
  }

  void write_tables(h5::File& f, const ExperimentResult& r) const {
    f.group("/elbo");
    f.group("/elbo/steps");
    for (const Table& table : r.tables) f.dataset(table.path, table.shape, table.data);
    f.attribute("/elbo", "model",
                std::string("exact: x0_hat = E[x0 | x_t], reverse variance "
                            "beta-tilde_t, decoder N(x0_hat(x1), beta_1 I)"));
    f.attribute("/elbo", "samples", r.config.elbo.at("samples").get<double>());
  }

  std::string summary(const ExperimentResult& r) const {
    std::map<std::string, std::vector<double>> columns;
    for (const Table& t : r.tables) columns[t.path] = t.data;
    return "elbo of " + r.config.sde.dump() + " with the exact model (nats per point)\n\n" +
           elbo_table(columns, "markdown") +
           "\n-ELBO: closed form for Gaussian data (n/a for a mixture), and by Monte Carlo; gap = "
           "E log p_0 - ELBO >= 0";
  }

 private:
  // The chain of the config with T replaced (T = 0: as configured).
  template <class Scalar = double>
  static VpDiscrete<Scalar> chain_of(const nlohmann::json& sde, int dim, int steps) {
    nlohmann::json config = sde;
    if (steps > 0 && !config.contains("betas")) config["T"] = steps;
    const auto made = make_sde<Scalar>(config, dim, "sde");
    return dynamic_cast<const VpDiscrete<Scalar>&>(*made);
  }

  template <class Scalar>
  static void tables(const ExperimentConfig& c, ExperimentResult& r) {
    const auto data = make_target<Scalar>(c.target, "target");
    const bool gaussian = data.components() == 1;
    const int samples = c.elbo.at("samples").get<int>();
    const auto seed = static_cast<std::uint64_t>(c.elbo.at("seed").get<int>());
    const std::vector<int> lengths = c.elbo.at("T").get<std::vector<int>>();
    // E log p_0: closed form for one Gaussian, else Monte Carlo over fresh data.
    Scalar log_likelihood, log_likelihood_se = 0;
    if (gaussian) {
      log_likelihood = gaussian_expected_log_density<Scalar>(data.cov(0).to_dense());
    } else {
      Rng rng(seed + 1000003);
      std::tie(log_likelihood, log_likelihood_se) =
          mean_and_standard_error<Scalar>(data.log_density(data.sample(samples, rng)));
    }
    const size_t n = lengths.size();
    std::vector<Table> t = {{"/elbo/T", {n}, {}},
                            {"/elbo/prior", {n}, {}},
                            {"/elbo/transitions", {n}, {}},
                            {"/elbo/decoder", {n}, {}},
                            {"/elbo/negative_elbo", {n}, {}},
                            {"/elbo/mc_negative_elbo", {n}, {}},
                            {"/elbo/mc_standard_error", {n}, {}},
                            {"/elbo/log_likelihood", {n}, {}},
                            {"/elbo/log_likelihood_standard_error", {n}, {}},
                            {"/elbo/gap", {n}, {}},
                            {"/elbo/max_abs_z", {n}, {}}};
    ElboTerms<Scalar> closed, mc;
    for (int steps : lengths) {
      const VpDiscrete<Scalar> chain = chain_of<Scalar>(c.sde, c.data_dim, steps);
      const AnalyticDenoiser<Scalar> model(chain, data);
      mc = monte_carlo_elbo(chain, data, model, samples, seed);
      if (gaussian)
        closed = gaussian_elbo<Scalar>(chain, data.means().col(0), data.cov(0).to_dense());
      const ElboTerms<Scalar>& best = gaussian ? closed : mc;
      Scalar transitions = 0;
      for (const Scalar& l : best.transitions) transitions += l;
      const double nan = std::nan("");
      t[0].data.push_back(chain.steps());
      t[1].data.push_back(to_double(best.prior));
      t[2].data.push_back(to_double(transitions));
      t[3].data.push_back(to_double(best.decoder));
      t[4].data.push_back(gaussian ? to_double(closed.total()) : nan);
      t[5].data.push_back(to_double(mc.total()));
      t[6].data.push_back(to_double(mc.total_se()));
      t[7].data.push_back(to_double(log_likelihood));
      t[8].data.push_back(to_double(log_likelihood_se));
      t[9].data.push_back(to_double(Scalar(log_likelihood + best.total())));
      // The largest |closed - Monte Carlo| / standard error over the terms (Gaussian data).
      double z = nan;
      if (gaussian) {
        z = std::abs(to_double(Scalar((closed.prior - mc.prior) / mc.prior_se)));
        z = std::max(z, std::abs(to_double(Scalar((closed.decoder - mc.decoder) / mc.decoder_se))));
        for (size_t k = 0; k < mc.transitions.size(); ++k)
          z = std::max(z, std::abs(to_double(Scalar((closed.transitions[k] - mc.transitions[k]) /
                                                    mc.transitions_se[k]))));
      }
      t[10].data.push_back(z);
    }
    // Per step of the last chain: term t = 1 is L_0, t >= 2 is L_{t-1}.
    const VpDiscrete<Scalar> chain = chain_of<Scalar>(c.sde, c.data_dim, lengths.back());
    const size_t steps = static_cast<size_t>(chain.steps());
    std::vector<Table> s = {{"/elbo/steps/closed", {steps}, {}},
                            {"/elbo/steps/mc", {steps}, {}},
                            {"/elbo/steps/mc_standard_error", {steps}, {}},
                            {"/elbo/steps/weight", {steps}, {}},
                            {"/elbo/steps/eps_mse", {steps}, {}},
                            {"/elbo/steps/mc_eps_mse", {steps}, {}}};
    for (size_t i = 0; i < steps; ++i) {
      const int step = static_cast<int>(i) + 1;
      const double nan = std::nan("");
      s[0].data.push_back(!gaussian   ? nan
                          : step == 1 ? to_double(closed.decoder)
                                      : to_double(closed.transitions[i - 1]));
      s[1].data.push_back(step == 1 ? to_double(mc.decoder) : to_double(mc.transitions[i - 1]));
      s[2].data.push_back(step == 1 ? to_double(mc.decoder_se)
                                    : to_double(mc.transitions_se[i - 1]));
      s[3].data.push_back(step == 1 ? nan : to_double(elbo_weight(chain, step)));
      s[4].data.push_back(gaussian ? to_double(closed.eps_mse[i]) : nan);
      s[5].data.push_back(to_double(mc.eps_mse[i]));
    }
    r.tables = t;
    r.tables.insert(r.tables.end(), s.begin(), s.end());
  }
};

}  // namespace pflow
