// pflow._core: the C++ core for Python (README "Python"). The package pflow (python/pflow/) wraps
// it. Arrays are numpy float64 with particles as rows ([n, D]): row-major [n, D] is the memory of
// pflow's column-major D x n states, so states cross without a transpose. The GIL is released
// while a solve runs and taken back for each call of a Python model.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "pflow/core/errors.hpp"
#include "pflow/experiment/run.hpp"
#include "pflow/flow/exact_flow.hpp"
#include "pflow/model/denoisers.hpp"
#include "pflow/model/mlp_file.hpp"
#include "pflow/sampler/registry.hpp"
#include "pflow/sampler/time_grid.hpp"
#include "pflow/sde/factory.hpp"
#include "pflow/sde/scalar_sdes.hpp"
#include "pflow/target/marginal.hpp"

namespace py = pybind11;
using nlohmann::json;

namespace pflow::python {

// Python objects (dict, list, str, numbers, bool, None) as JSON, the form configs take.
json to_json(const py::handle& o, const std::string& path) {
  if (o.is_none()) return nullptr;
  if (py::isinstance<py::bool_>(o)) return o.cast<bool>();
  if (py::isinstance<py::int_>(o)) return o.cast<long long>();
  if (py::isinstance<py::float_>(o)) return o.cast<double>();
  if (py::isinstance<py::str>(o)) return o.cast<std::string>();
  // numpy's scalars (np.int64(3), np.float32(0.5), np.bool_(True)) as the Python values they
  // hold: configs built from arrays carry them, and only np.float64 is a Python float.
  // (Held for the process's life, never released: a static py::object would be released after
  // the interpreter has gone.)
  static const auto* numpy_scalar = new py::object(py::module_::import("numpy").attr("generic"));
  if (py::isinstance(o, *numpy_scalar)) return to_json(o.attr("item")(), path);
  if (py::isinstance<py::dict>(o)) {
    json j = json::object();
    for (const auto& [k, v] : o.cast<py::dict>()) {
      const std::string key = py::str(k);
      j[key] = to_json(v, path + "." + key);
    }
    return j;
  }
  if (py::isinstance<py::array>(o)) return to_json(o.attr("tolist")(), path);
  if (py::isinstance<py::sequence>(o)) {
    json j = json::array();
    size_t i = 0;
    for (const auto& v : o.cast<py::sequence>())
      j.push_back(to_json(v, path + "[" + std::to_string(i++) + "]"));
    return j;
  }
  throw InputError(path, py::str(py::repr(o)), "is not a JSON value (dict, list, str, number)");
}

// [n, D] float64 states as pflow's D x n matrix (one copy, no transpose).
Mat<double> states_in(const py::handle& o, const std::string& name, Eigen::Index dim) {
  const auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(o);
  require(a && a.ndim() == 2, name, a ? std::to_string(a.ndim()) + " dimensions" : "not numeric",
          "must be a 2-D float64 array [n, D], particles as rows");
  require(dim <= 0 || a.shape(1) == dim, name,
          "shape [" + std::to_string(a.shape(0)) + ", " + std::to_string(a.shape(1)) + "]",
          "needs D = " + std::to_string(dim) + " columns");
  return Eigen::Map<const Mat<double>>(a.data(), a.shape(1), a.shape(0));
}
// pflow's D x n matrix as an [n, D] array that owns it (no copy).
py::array states_out(Mat<double>&& x) {
  auto* owned = new Mat<double>(std::move(x));
  py::capsule free(owned, [](void* p) { delete static_cast<Mat<double>*>(p); });
  return py::array_t<double>({owned->cols(), owned->rows()},
                             {owned->rows() * static_cast<Eigen::Index>(sizeof(double)),
                              static_cast<Eigen::Index>(sizeof(double))},
                             owned->data(), free);
}
py::array square_out(const Mat<double>& m) {
  Mat<double> t = m.transpose();  // row-major for numpy
  auto* owned = new Mat<double>(std::move(t));
  py::capsule free(owned, [](void* p) { delete static_cast<Mat<double>*>(p); });
  return py::array_t<double>({m.rows(), m.cols()},
                             {m.cols() * static_cast<Eigen::Index>(sizeof(double)),
                              static_cast<Eigen::Index>(sizeof(double))},
                             owned->data(), free);
}

// A forward process from its config, built for each data dimension it is used at (a scalar
// SDE serves any dimension; a matrix SDE the one it was made for).
class Sde {
 public:
  Sde(json config, int dim) : config_(std::move(config)), dim_(dim) { at(dim_); }
  const LinearSde<double>& at(int data_dim) const {
    auto& built = built_[data_dim];
    if (!built)
      built = std::shared_ptr<LinearSde<double>>(make_sde<double>(config_, data_dim, "sde"));
    return *built;
  }
  // The SDE for states of D columns.
  const LinearSde<double>& for_states(Eigen::Index d) const {
    const LinearSde<double>& own = at(dim_);
    if (own.state_dim() == d) return own;
    require(scalar() != nullptr, "x", "D = " + std::to_string(d),
            "does not match the SDE's state dimension " + std::to_string(own.state_dim()));
    return at(static_cast<int>(d));
  }
  const ScalarSde<double>* scalar() const {
    return dynamic_cast<const ScalarSde<double>*>(&at(dim_));
  }
  const ScalarSde<double>& require_scalar(const char* what) const {
    require(scalar() != nullptr, "sde", config_.dump(),
            std::string(what) + " needs a scalar SDE (alpha, sigma)");
    return *scalar();
  }
  int dim() const { return dim_; }
  const json& config() const { return config_; }

  // Sigma(t) or Psi(t, s) in ambient coordinates: U B U^T from the spectral B.
  Mat<double> ambient(const BlockMatrix<double>& b) const {
    const LinearSde<double>& s = at(dim_);
    const Mat<double> half = s.from_spectral(b.to_dense());
    return s.from_spectral(Mat<double>(half.transpose())).transpose();
  }

 private:
  json config_;
  int dim_;
  mutable std::map<int, std::shared_ptr<LinearSde<double>>> built_;
};

// A data distribution from its target config, with its marginals p_t under an SDE.
struct Target {
  json config;
  GaussianMixture<double> data;
  Marginal<double> marginal(const Sde& sde, double t) const {
    return Marginal<double>(sde.at(data.dim()), data, t);
  }
};

// A Python function as a model: fn(x [n, D], t) -> [n, D] in the declared output.
class PythonDenoiser : public Denoiser<double> {
 public:
  PythonDenoiser(py::function fn, ModelOutput output) : fn_(std::move(fn)), output_(output) {}
  std::string name() const override { return "python_model"; }
  ModelOutput output() const override { return output_; }
  Mat<double> predict(const Mat<double>& x, const double& t) const override {
    const py::gil_scoped_acquire gil;
    // x as an [n, D] view for the call's duration (the model must not keep it).
    const py::array view({x.cols(), x.rows()},
                         {x.rows() * static_cast<Eigen::Index>(sizeof(double)),
                          static_cast<Eigen::Index>(sizeof(double))},
                         x.data(), py::none());
    py::object out = fn_(view, t);
    const auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(out);
    require(a && a.ndim() == 2 && a.shape(0) == x.cols() && a.shape(1) == x.rows(), "python_model",
            "output",
            "must be a float64 array of shape [" + std::to_string(x.cols()) + ", " +
                std::to_string(x.rows()) + "], like its input");
    return Eigen::Map<const Mat<double>>(a.data(), x.rows(), x.cols());
  }
  Mat<double> score(const Mat<double>& x, const double& t) const override {
    require(output_ == ModelOutput::score, "python_model", "output",
            "converts to the score through the solver's SDE");
    return predict(x, t);
  }

 private:
  py::function fn_;
  ModelOutput output_;
};

// What a Python model object holds until a solve builds it for its SDE.
struct Model {
  std::string kind;  // "analytic", "python", "mlp"
  std::shared_ptr<const Target> target;
  std::string output = "score";
  py::function fn;
  std::shared_ptr<const MlpModel> mlp;
  std::string path;
  std::unique_ptr<Denoiser<double>> build(const LinearSde<double>& sde) const {
    const auto& names = model_output_names();
    const auto out =
        static_cast<ModelOutput>(std::find(names.begin(), names.end(), output) - names.begin());
    if (kind == "python") return std::make_unique<PythonDenoiser>(fn, out);
    if (kind == "mlp")
      return make_denoiser<double>({{"type", "mlp"}, {"path", path}}, sde, nullptr, mlp.get());
    return std::make_unique<AnalyticDenoiser<double>>(sde, target->data, out);
  }
};

struct Solved {
  py::array x;
  long nfe = 0;
  int steps = 0;
  double wall_s = 0;
};

json solver_spec(const py::handle& solver) {
  json spec = to_json(solver, "solver");
  return spec.is_string() ? json{{"name", spec}} : spec;
}

Solved solve_states(const py::handle& solver_arg, const Sde& sde_arg, const Model& model_arg,
                    const py::handle& grid_arg, const py::handle& x_arg) {
  const auto times =
      py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(grid_arg);
  require(times && times.ndim() == 1, "grid",
          std::string(py::str(py::repr(grid_arg))).substr(0, 80), "must be a 1-D array of times");
  const std::vector<double> grid(times.data(), times.data() + times.size());
  // The analytic model's states have its data's dimension (CLD's state: twice that).
  const Mat<double> x0 = states_in(
      x_arg, "x", model_arg.target ? sde_arg.at(model_arg.target->data.dim()).state_dim() : -1);
  const LinearSde<double>& sde = sde_arg.for_states(x0.rows());
  const auto solver = make_solver<double>(solver_spec(solver_arg));
  const auto model = model_arg.build(sde);
  Problem<double> problem;
  problem.sde = &sde;
  problem.model = model.get();
  problem.one_batch = true;  // the model sees the whole batch (one Python call per evaluation)
  SolveResult<double> r;
  try {
    const py::gil_scoped_release nogil;
    r = solve(*solver, problem, grid, x0);
  } catch (py::error_already_set& e) {
    // The model's own exception, with where the solve was.
    const ModelCallSite& site = model_call_site();
    const std::string note = "in pflow.solve: solver " +
                             (site.solver ? *site.solver : solver->info().label) + ", step " +
                             std::to_string(site.step) + ", t = " + to_text(site.t);
    if (py::hasattr(e.value(), "add_note")) e.value().attr("add_note")(note);
    throw;
  }
  return {states_out(std::move(r.x)), r.nfe, r.steps, r.wall_s};
}

py::array_t<double> grid_of(const Sde& sde, const py::handle& spec_arg, double t_start,
                            double t_end, int steps) {
  const json spec = to_json(spec_arg, "grid");
  GridSpec g;
  if (spec.is_string()) {
    g.kind = spec.get<std::string>();
  } else {
    const Fields f(spec, "grid", {"grid", "rho", "times"});
    g.kind = f.text("grid", "logsnr", grid_names());
    g.rho = f.number<double>("rho", 7.0);
    if (f.has("times")) {
      const Vec<double> t = f.vector<double>("times");
      g.times.assign(t.data(), t.data() + t.size());
    }
  }
  require(std::find(grid_names().begin(), grid_names().end(), g.kind) != grid_names().end(), "grid",
          g.kind, "unknown time grid");
  require(steps >= 1, "steps", steps, "must be at least 1");
  const std::vector<double> grid =
      make_time_grid<double>(sde.at(sde.dim()), g, t_start, t_end, steps);
  return py::array_t<double>(static_cast<py::ssize_t>(grid.size()), grid.data());
}

py::list solver_list() {
  py::list out;
  for (const auto& s : solver_table<double>()) {
    const auto info = make_solver<double>(json(s.name))->info();
    py::dict d;
    d["name"] = s.name;
    d["family"] = s.family;
    d["order"] = info.adaptive ? py::object(py::none()) : py::object(py::int_(info.order));
    d["adaptive"] = info.adaptive;
    d["stochastic"] = info.stochastic;
    d["evals_per_step"] = info.evals_per_step;
    d["parameters"] = describe_parameters(s);
    d["reference"] = s.reference;
    out.append(d);
  }
  return out;
}

// A numpy vector or float applied elementwise.
template <class F>
py::object elementwise(const py::handle& t, F&& f) {
  if (py::isinstance<py::float_>(t) || py::isinstance<py::int_>(t))
    return py::float_(f(t.cast<double>()));
  auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(t);
  require(bool(a), "t", std::string(py::str(py::repr(t))), "must be a number or an array");
  py::array_t<double> out(a.request().shape);
  for (py::ssize_t i = 0; i < a.size(); ++i) out.mutable_data()[i] = f(a.data()[i]);
  return std::move(out);
}

// A scalar SDE's coefficient (alpha, sigma, lambda, t_of_lambda) as a method taking a number or
// an array.
auto coefficient(const char* name, double (ScalarSde<double>::*f)(const double&) const) {
  return [name, f](const Sde& s, const py::object& t) {
    const ScalarSde<double>& k = s.require_scalar(name);
    return elementwise(t, [&](double v) { return (k.*f)(v); });
  };
}

void run_config(const py::handle& config_arg, const std::string& out, int threads, bool force) {
  const ExperimentConfig config = py::isinstance<py::str>(config_arg)
                                      ? load_experiment(config_arg.cast<std::string>())
                                      : parse_experiment(to_json(config_arg, "config"));
  require(force || !std::filesystem::exists(out), "out", out, "exists; pass force=True");
  RunOptions options;
  options.threads = threads;
  ExperimentResult result;
  {
    const py::gil_scoped_release nogil;
    result = run_experiment(config, options);
    write_result(result, out);
  }
}

}  // namespace pflow::python

PYBIND11_MODULE(_core, m) {
  using namespace pflow;
  using namespace pflow::python;
  m.doc() = "pflow's C++ core (use the package pflow)";
  // pflow's errors: bad input is ValueError naming the field (as the CLI's messages).
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const InputError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const IoError& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    } catch (const NumericalError& e) {
      PyErr_SetString(PyExc_ArithmeticError, e.what());
    }
  });

  py::class_<Sde>(m, "Sde")
      .def_property_readonly("dim", &Sde::dim)
      .def_property_readonly("config", [](const Sde& s) { return s.config().dump(); })
      .def("alpha", coefficient("alpha", &ScalarSde<double>::alpha))
      .def("sigma", coefficient("sigma", &ScalarSde<double>::sigma))
      .def("lambda_", coefficient("lambda", &ScalarSde<double>::lambda))
      .def("t_of_lambda", coefficient("t_of_lambda", &ScalarSde<double>::t_of_lambda))
      .def(
          "covariance",
          [](const Sde& s, double t) { return square_out(s.ambient(s.at(s.dim()).covariance(t))); })
      .def("transition",
           [](const Sde& s, double t, double t0) {
             return square_out(s.ambient(s.at(s.dim()).transition(t, t0)));
           })
      .def_property_readonly("t_max", [](const Sde& s) { return s.at(s.dim()).t_max(); });
  m.def(
      "make_sde",
      [](const py::handle& config, int dim) { return Sde(to_json(config, "sde"), dim); },
      py::arg("config"), py::arg("dim") = 1);

  py::class_<Target, std::shared_ptr<Target>>(m, "Target")
      .def_property_readonly("dim", [](const Target& d) { return d.data.dim(); })
      .def("score",
           [](const Target& d, const Sde& s, const py::handle& x, double t) {
             return states_out(d.marginal(s, t).score(states_in(x, "x", d.data.dim())));
           })
      .def("eps",
           [](const Target& d, const Sde& s, const py::handle& x, double t) {
             return states_out(d.marginal(s, t).eps(states_in(x, "x", d.data.dim())));
           })
      .def("x0",
           [](const Target& d, const Sde& s, const py::handle& x, double t) {
             return states_out(d.marginal(s, t).x0(states_in(x, "x", d.data.dim())));
           })
      .def("log_density",
           [](const Target& d, const Sde& s, const py::handle& x, double t) {
             const Vec<double> v = d.marginal(s, t).log_density(states_in(x, "x", d.data.dim()));
             return py::array_t<double>(v.size(), v.data());
           })
      .def(
          "sample",
          [](const Target& d, int n, std::uint64_t seed) {
            Rng rng(seed);
            return states_out(d.data.sample(n, rng));
          },
          py::arg("n"), py::arg("seed") = 0)
      // The exact flow map x_s -> x_t of Gaussian (one-component) data.
      .def(
          "exact_flow",
          [](const Target& d, const Sde& s, const py::handle& x, double t_from, double t_to) {
            const LinearSde<double>& sde = s.at(d.data.dim());
            return states_out(
                exact_flow_map(sde, d.data, states_in(x, "x", sde.state_dim()), t_from, t_to));
          },
          py::arg("sde"), py::arg("x"), py::arg("t_from"), py::arg("t_to"));
  m.def("make_target", [](const py::handle& config) {
    json j = to_json(config, "target");
    return std::make_shared<Target>(Target{j, make_target<double>(j, "target")});
  });

  py::class_<Model>(m, "Model").def_readonly("kind", &Model::kind);
  m.def(
      "analytic",
      [](const Sde&, std::shared_ptr<Target> target, const std::string& output) {
        Model mod;
        mod.kind = "analytic";
        mod.target = std::move(target);
        mod.output = output;
        return mod;
      },
      py::arg("sde"), py::arg("target"), py::arg("output") = "score");
  m.def(
      "python_model",
      [](py::function fn, const std::string& output) {
        const auto& names = model_output_names();
        require(
            std::find(names.begin(), names.end(), output) != names.end() && output != "velocity",
            "output", output, "must be eps, x0, v or score");
        Model mod;
        mod.kind = "python";
        mod.fn = std::move(fn);
        mod.output = output;
        return mod;
      },
      py::arg("fn"), py::arg("output") = "eps");
  m.def("mlp", [](const std::string& path) {
    Model mod;
    mod.kind = "mlp";
    mod.path = path;
    mod.mlp = std::make_shared<MlpModel>(load_mlp_model(path));
    return mod;
  });

  py::class_<Solved>(m, "Solved")
      .def_readonly("x", &Solved::x)
      .def_readonly("nfe", &Solved::nfe)
      .def_readonly("steps", &Solved::steps)
      .def_readonly("wall_s", &Solved::wall_s);
  m.def("solve", &solve_states, py::arg("solver"), py::arg("sde"), py::arg("model"),
        py::arg("grid"), py::arg("x"));
  m.def("time_grid", &grid_of, py::arg("sde"), py::arg("grid"), py::arg("t_start"),
        py::arg("t_end"), py::arg("steps"));
  m.def("solvers", &solver_list);
  m.def("run_config", &run_config, py::arg("config"), py::arg("out"), py::arg("threads") = 1,
        py::arg("force") = false);
}
