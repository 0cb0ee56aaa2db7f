// Kind "kernel": the kernel of an SDE tabulated at `times`, closed forms beside their numerical
// solutions: Sigma(t), Psi(t, 0), the mean of the data mean, lambda(t) and the circulation of the
// frozen equilibrium (/kernel/). No solvers, no cells.
#pragma once

#include "pflow/experiment/kind_base.hpp"
#include "pflow/sde/factory.hpp"
#include "pflow/sde/kernel_numeric.hpp"

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
    std::vector<Table> t = {
        {"/kernel/sigma", {T, D, D}, {}}, {"/kernel/sigma_numeric", {T, D, D}, {}},
        {"/kernel/psi", {T, D, D}, {}},   {"/kernel/psi_numeric", {T, D, D}, {}},
        {"/kernel/mean", {T, D}, {}},     {"/kernel/mean_numeric", {T, D}, {}},
        {"/kernel/lambda", {T}, {}},      {"/kernel/q", {T, D, D}, {}}};
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
  static void push(Table& table, const Mat<double>& m) {
    for (Eigen::Index i = 0; i < m.rows(); ++i)
      for (Eigen::Index j = 0; j < m.cols(); ++j) table.data.push_back(m(i, j));
  }
};

}  // namespace pflow
