// Kind "kernel": the kernel of an SDE tabulated at `times`, closed forms beside their numerical
// solutions: Sigma(t), Psi(t, 0), the mean of the data mean, lambda(t) and the circulation of the
// frozen equilibrium (/kernel/). Relaxation (docs/NOTES.md sec. 19): the slowest decay rate
// -max Re eig F(t), KL(p_t || p_eq) for Gaussian data in closed form, and both again for the
// overdamped twin F = -D Sigma_eq^{-1} (the same equilibrium and noise, Q = 0). No solvers, no
// cells.
#pragma once

#include "pflow/experiment/kind_base.hpp"
#include "pflow/flow/exact_flow.hpp"
#include "pflow/sde/factory.hpp"
#include "pflow/sde/kernel_numeric.hpp"

#include <Eigen/Eigenvalues>

namespace pflow {

struct KernelKind : KindDefaults {
  static constexpr const char* name = "kernel";
  static constexpr bool has_cells = false;
  static std::vector<std::string> own_fields() { return {"times"}; }

  void validate(const Fields& f, ExperimentConfig& c, const std::vector<SolverInfo>&) const {
    require(f.has("times"), "times", "(missing)", "is required for kind 'kernel'");
    const auto sde = make_sde<double>(c.sde, c.data_dim, "sde");
    const Vec<double> times = f.vector<double>("times");
    for (Eigen::Index i = 0; i < times.size(); ++i) {
      require(times(i) >= 0 && times(i) <= to_double(sde->t_max()),
              "times[" + std::to_string(i) + "]", times(i),
              "must lie in [0, T = " + to_text(to_double(sde->t_max())) + "]");
      c.times.push_back(times(i));
    }
  }

  void normalise(const ExperimentConfig& c, nlohmann::json& n) const { n["times"] = c.times; }

  // The tables, in double: closed forms and their ODE / quadrature counterparts.
  void run_tables(const ExperimentConfig& c, ExperimentResult& r) const {
    const auto sde = make_sde<double>(c.sde, c.data_dim, "sde");
    const auto data = make_target<double>(c.target, "target");
    const size_t T = c.times.size(), D = static_cast<size_t>(c.state_dim);
    const auto* scalar = dynamic_cast<const ScalarSde<double>*>(sde.get());
    Vec<double> mu = Vec<double>::Zero(c.data_dim);
    for (int k = 0; k < data.components(); ++k) mu += data.weights()(k) * data.means().col(k);
    std::vector<Table> t = {{"/kernel/sigma", {T, D, D}, {}},
                            {"/kernel/sigma_numeric", {T, D, D}, {}},
                            {"/kernel/psi", {T, D, D}, {}},
                            {"/kernel/psi_numeric", {T, D, D}, {}},
                            {"/kernel/mean", {T, D}, {}},
                            {"/kernel/mean_numeric", {T, D}, {}},
                            {"/kernel/lambda", {T}, {}},
                            {"/kernel/q", {T, D, D}, {}},
                            {"/kernel/decay_rate", {T}, {}},
                            {"/kernel/decay_rate_overdamped", {T}, {}},
                            {"/kernel/kl_to_equilibrium", {T}, {}},
                            {"/kernel/kl_overdamped", {T}, {}}};
    auto ambient = [&](const BlockMatrix<double>& b) {
      const Mat<double> dense = b.to_dense();
      if (!sde->has_spectral_basis()) return dense;
      // U B U^T from the spectral basis maps.
      return Mat<double>(sde->from_spectral(Mat<double>(sde->from_spectral(dense).transpose())));
    };
    for (double time : c.times) {
      push(t[0], ambient(sde->covariance(time)));
      push(t[1], ambient(ode_covariance(*sde, time)));
      push(t[2], ambient(sde->transition(time, 0.0)));
      const BlockMatrix<double> psi_ode = ode_transition(*sde, time, 0.0);
      push(t[3], ambient(psi_ode));
      push(t[4], sde->mean(time, mu));
      push(t[5], sde->from_spectral(psi_ode.apply(sde->lift_data(mu))));
      t[6].data.push_back(scalar && time > 0 ? scalar->lambda(time) : std::nan(""));
      Mat<double> circulation = Mat<double>::Constant(D, D, std::nan(""));
      try {
        if (time > 0) circulation = ambient(frozen_equilibrium(*sde, time).circulation);
      } catch (const std::exception&) {
      }
      push(t[7], circulation);
      const Relaxation relax = relaxation(*sde, data, time);
      t[8].data.push_back(relax.rate);
      t[9].data.push_back(relax.rate_overdamped);
      t[10].data.push_back(relax.kl);
      t[11].data.push_back(relax.kl_overdamped);
    }
    r.tables = {{"/kernel/times", {T}, c.times}};
    r.tables.insert(r.tables.end(), t.begin(), t.end());
  }

  void write_tables(h5::File& f, const ExperimentResult& r) const {
    f.group("/kernel");
    for (const Table& table : r.tables) f.dataset(table.path, table.shape, table.data);
    f.attribute("/kernel", "mean_of", std::string("the data mean"));
  }

  std::string summary(const ExperimentResult& r) const {
    return "kernel table of " + r.config.sde.dump() + " at " +
           std::to_string(r.config.times.size()) + " times";
  }

 private:
  struct Relaxation {
    double rate = std::nan(""), rate_overdamped = std::nan("");
    double kl = std::nan(""), kl_overdamped = std::nan("");
  };

  // -max Re eig(m): the slowest decay rate of dx = m x dt.
  static double slowest_rate(const Mat<double>& m) {
    return 0.0 - Eigen::EigenSolver<Mat<double>>(m, false).eigenvalues().real().maxCoeff();
  }

  // KL(N(mean, cov) || N(0, eq)) = (tr(eq^{-1} cov) + mean^T eq^{-1} mean - D + log det eq -
  // log det cov) / 2.
  static double gaussian_kl(const Vec<double>& mean, const Mat<double>& cov,
                            const Mat<double>& eq) {
    const Eigen::LLT<Mat<double>> eq_llt(eq), cov_llt(cov);
    auto log_det = [](const Eigen::LLT<Mat<double>>& llt) {
      return 2 * llt.matrixL().toDenseMatrix().diagonal().array().log().sum();
    };
    return (eq_llt.solve(cov).trace() + mean.dot(eq_llt.solve(mean)) -
            static_cast<double>(mean.size()) + log_det(eq_llt) - log_det(cov_llt)) /
           2;
  }

  // The rates at t, and for one-component data the KL of p_t to the equilibrium, for the SDE
  // and its overdamped twin F_od = -D Sigma_eq^{-1}, D = G G^T / 2, which keeps Sigma_eq (F_od
  // Sigma_eq + Sigma_eq F_od^T + G G^T = 0) and drops the circulation Q. The twin's kernel comes
  // from the SDE's Van Loan form with Fbar_od = -Qbar/2 Sigma_eq^{-1}, when its diffusion terms
  // do not change with the clock (rate 0): then Sigma_eq is the same at every t.
  static Relaxation relaxation(const LinearSde<double>& sde, const GaussianMixture<double>& data,
                               double time) {
    Relaxation out;
    out.rate = slowest_rate(sde.drift(time).to_dense());
    if (time <= 0) return out;
    Mat<double> eq;
    try {
      eq = frozen_equilibrium(sde, time).covariance.to_dense();
    } catch (const std::exception&) {
      return out;  // no equilibrium (F = 0: ve, edm)
    }
    if (!eq.allFinite() || Eigen::LLT<Mat<double>>(eq).info() != Eigen::Success) return out;
    const Mat<double> ggt = sde.diffusion(time).to_dense();
    out.rate_overdamped = slowest_rate(Mat<double>(-ggt / 2 * eq.inverse()));
    if (data.components() != 1) return out;
    const auto [mean, cov] = gaussian_marginal(sde, data, time);
    out.kl = gaussian_kl(mean.col(0), cov.to_dense(), eq);
    const auto form = sde.van_loan_form();
    if (!form || form->terms.size() != 1 || form->terms[0].rate != 0) return out;
    VanLoanForm<double> twin = *form;
    const Mat<double> qbar = form->terms[0].coeff * form->terms[0].diffusion_rate.to_dense();
    twin.drift_rate = BlockMatrix<double>::dense(Mat<double>(-qbar / 2 * eq.inverse()));
    twin.terms[0].diffusion_rate = BlockMatrix<double>::dense(qbar / form->terms[0].coeff);
    const BlockMatrix<double> psi = van_loan_transition(twin, time, 0.0);
    const BlockMatrix<double> sigma = van_loan_covariance(twin, sde.initial_covariance(), time);
    const Vec<double> twin_mean = psi.to_dense() * sde.lift_data(data.means()).col(0);
    const Mat<double> twin_cov =
        psi.to_dense() * sde.lift_covariance(data.cov(0)).to_dense() * psi.to_dense().transpose() +
        sigma.to_dense();
    out.kl_overdamped = gaussian_kl(twin_mean, twin_cov, eq);
    return out;
  }

  static void push(Table& table, const Mat<double>& m) {
    for (Eigen::Index i = 0; i < m.rows(); ++i)
      for (Eigen::Index j = 0; j < m.cols(); ++j) table.data.push_back(m(i, j));
  }
};

}  // namespace pflow
