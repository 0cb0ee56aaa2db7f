// Reading model format 1 (README, "Model file format, version 1"). Every defect is an InputError
// on the field denoiser.path naming the file, and the attribute or dataset at fault.
#include "pflow/model/mlp_file.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "pflow/core/json_fields.hpp"
#include "pflow/experiment/h5.hpp"
#include "pflow/sde/factory.hpp"

namespace pflow {

const std::vector<std::string>& activation_names() {
  static const std::vector<std::string> names = {"silu", "gelu", "tanh", "softplus", "relu"};
  return names;
}
const std::vector<std::string>& time_input_names() {
  static const std::vector<std::string> names = {"t", "lambda"};
  return names;
}

namespace {

constexpr const char* kField = "denoiser.path";

// A model file being read: errors name the file and what is wrong with it.
class ModelReader {
 public:
  explicit ModelReader(const std::string& path)
      : path_(path), file_(h5::File::open(path, kField)) {}

  [[noreturn]] void fail(const std::string& why) const { throw InputError(kField, path_, why); }
  void check(bool ok, const std::string& why) const {
    if (!ok) fail(why);
  }

  std::string text(const std::string& name) const {
    check(file_.has_attribute("/", name), "has no root attribute '" + name + "'");
    return file_.read_string("/", name);
  }
  // A text attribute that must be one of `names`; returns its index there.
  size_t choice(const std::string& name, const std::vector<std::string>& names) const {
    const std::string value = text(name);
    const auto at = std::find(names.begin(), names.end(), value);
    if (at == names.end()) {
      std::string all;
      for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
      fail("attribute '" + name + "' is \"" + value + "\"; valid: " + all);
    }
    return static_cast<size_t>(at - names.begin());
  }
  nlohmann::json json(const std::string& name) const {
    const std::string t = text(name);
    check(json_nesting_excess(t, max_json_depth) < 0,
          "attribute '" + name + "' nests arrays and objects more than " +
              std::to_string(max_json_depth) + " levels deep");
    const nlohmann::json j = nlohmann::json::parse(t, nullptr, false);
    check(!j.is_discarded(), "attribute '" + name + "' is not valid JSON");
    return j;
  }
  double number(const std::string& name) const {
    check(file_.has_attribute("/", name), "has no root attribute '" + name + "'");
    const std::vector<double> v = file_.read_doubles("/", name);
    check(v.size() == 1, "attribute '" + name + "' must be one number");
    return v[0];
  }
  // A float64 dataset as a matrix of the given rank (rank 1: a column).
  Mat<double> matrix(const std::string& name, int rank) const {
    check(file_.exists(name), "has no dataset " + name);
    std::vector<size_t> shape;
    const std::vector<double> data = file_.read(name, &shape);
    check(static_cast<int>(shape.size()) == rank,
          "dataset " + name + " must have rank " + std::to_string(rank));
    check(std::all_of(data.begin(), data.end(), [](double v) { return std::isfinite(v); }),
          "dataset " + name + " holds non-finite values");
    const Eigen::Index rows = static_cast<Eigen::Index>(shape[0]);
    const Eigen::Index cols = rank == 2 ? static_cast<Eigen::Index>(shape[1]) : 1;
    Mat<double> m(rows, cols);
    for (Eigen::Index i = 0; i < rows; ++i)
      for (Eigen::Index j = 0; j < cols; ++j) m(i, j) = data[i * cols + j];
    return m;
  }
  bool exists(const std::string& name) const { return file_.exists(name); }
  bool has_attribute(const std::string& name) const { return file_.has_attribute("/", name); }

 private:
  std::string path_;
  h5::File file_;
};

void read_embedding(const ModelReader& r, MlpModel& m) {
  m.time_embedding = r.json("time_embedding");
  const nlohmann::json& e = m.time_embedding;
  r.check(e.is_object() && e.contains("type") && e["type"].is_string(),
          "attribute 'time_embedding' needs a \"type\" (\"raw\" or \"fourier\")");
  const std::string type = e["type"].get<std::string>();
  if (type == "raw") return;
  r.check(type == "fourier",
          "attribute 'time_embedding' has type \"" + type + "\"; valid: raw, fourier");
  r.check(e.contains("frequencies") && e["frequencies"].is_array() && !e["frequencies"].empty(),
          "attribute 'time_embedding' needs a non-empty list \"frequencies\"");
  for (const auto& f : e["frequencies"]) {
    r.check(f.is_number() && std::isfinite(f.get<double>()),
            "attribute 'time_embedding' has a frequency that is not a finite number");
    m.frequencies.push_back(f.get<double>());
  }
}

void read_layers(const ModelReader& r, MlpModel& m) {
  for (int l = 0; r.exists("/layers/" + std::to_string(l)); ++l) {
    const std::string at = "/layers/" + std::to_string(l);
    m.weights.push_back(r.matrix(at + "/weight", 2));
    m.biases.push_back(r.matrix(at + "/bias", 1).col(0));
    r.check(m.biases.back().size() == m.weights.back().rows(),
            "dataset " + at + "/bias has " + std::to_string(m.biases.back().size()) +
                " values, but " + at + "/weight has " + std::to_string(m.weights.back().rows()) +
                " rows");
  }
  r.check(!m.weights.empty(), "has no layers (/layers/0/weight)");
  m.dim = static_cast<int>(m.weights.back().rows());
  const Eigen::Index in = m.input_width();
  r.check(m.weights.front().cols() == in,
          "the first layer takes " + std::to_string(m.weights.front().cols()) +
              " inputs, but D + embedding width + classes = " + std::to_string(m.dim) + " + " +
              std::to_string(m.embedding_width()) + " + " + std::to_string(m.classes) + " = " +
              std::to_string(in));
  for (int l = 1; l < m.layers(); ++l)
    r.check(m.weights[l].cols() == m.weights[l - 1].rows(),
            "layer shapes do not chain: /layers/" + std::to_string(l) + "/weight takes " +
                std::to_string(m.weights[l].cols()) + " inputs, layer " + std::to_string(l - 1) +
                " gives " + std::to_string(m.weights[l - 1].rows()));
}

// The optional `classes` attribute of a class-conditional model: C one-hot label inputs.
void read_classes(const ModelReader& r, MlpModel& m) {
  if (!r.has_attribute("classes")) return;
  const double c = r.number("classes");
  r.check(c >= 1 && c <= 100000 && c == std::floor(c),
          "attribute 'classes' is " + to_text(c) + "; it must be an integer from 1 to 100000");
  m.classes = static_cast<int>(c);
}

void read_check_data(const ModelReader& r, MlpModel& m) {
  if (!r.exists("/check")) return;
  m.check_x = r.matrix("/check/x", 2).transpose();  // D x n
  m.check_t = r.matrix("/check/t", 1).col(0);
  m.check_output = r.matrix("/check/output", 2).transpose();
  r.check(m.check_x.rows() == m.dim && m.check_t.size() == m.check_x.cols() &&
              m.check_output.rows() == m.check_x.rows() &&
              m.check_output.cols() == m.check_x.cols(),
          "datasets /check/x [n, D], /check/t [n] and /check/output [n, D] do not match "
          "(D = " +
              std::to_string(m.dim) + ")");
  if (!r.exists("/check/label")) return;
  r.check(m.classes > 0, "has /check/label but no 'classes' attribute");
  const Vec<double> labels = r.matrix("/check/label", 1).col(0);
  r.check(labels.size() == m.check_t.size(),
          "dataset /check/label must have one label per check point");
  for (double y : labels) {
    r.check(y == std::floor(y) && y >= -1 && y < m.classes,
            "dataset /check/label holds " + to_text(y) + "; labels are -1 (none) or 0 to " +
                std::to_string(m.classes - 1));
    m.check_labels.push_back(static_cast<int>(y));
  }
}

// The network times of the check points: t itself, or lambda(t) of the SDE the model was
// trained on.
Vec<double> check_network_times(const MlpModel& m) {
  Vec<double> tau = m.check_t;
  if (m.time_input == TimeInput::lambda) {
    const auto sde = model_sde(m);
    const auto* scalar = dynamic_cast<const ScalarSde<double>*>(sde.get());
    require(scalar != nullptr, "denoiser.path", m.path,
            "time input \"lambda\" needs a scalar SDE, not " + sde->name());
    for (Eigen::Index j = 0; j < tau.size(); ++j) tau(j) = scalar->lambda(tau(j));
  }
  return tau;
}

double relative_deviation(const Mat<double>& got, const Mat<double>& expected) {
  const double scale = std::max(expected.cwiseAbs().maxCoeff(), 1e-300);
  return (got - expected).cwiseAbs().maxCoeff() / scale;
}

}  // namespace

// The data dimension is D, or D / 2 for an SDE with a velocity per coordinate (CLD).
std::unique_ptr<LinearSde<double>> model_sde(const MlpModel& m) {
  std::unique_ptr<LinearSde<double>> sde = make_sde<double>(m.sde, m.dim, "sde");
  if (sde->state_dim() != m.dim && m.dim % 2 == 0) sde = make_sde<double>(m.sde, m.dim / 2, "sde");
  require(sde->state_dim() == m.dim, "sde", m.sde.dump(),
          "has state dimension " + to_text(sde->state_dim()) + ", the network " + to_text(m.dim));
  return sde;
}

MlpModel load_mlp_model(const std::string& path) {
  const ModelReader r(path);
  MlpModel m;
  m.path = path;
  r.check(r.text("format") == "pflow-denoiser",
          "attribute 'format' is \"" + r.text("format") + "\", not \"pflow-denoiser\"");
  const double version = r.number("format_version");
  r.check(version == 1,
          "attribute 'format_version' is " + to_text(version) + "; this pflow reads format 1");
  r.check(r.text("architecture") == "mlp",
          "attribute 'architecture' is \"" + r.text("architecture") + "\"; valid: mlp");
  m.output = static_cast<ModelOutput>(r.choice("output", model_output_names()));
  m.activation = static_cast<Activation>(r.choice("activation", activation_names()));
  m.time_input = static_cast<TimeInput>(r.choice("time_input", time_input_names()));
  read_embedding(r, m);
  read_classes(r, m);
  m.sde = r.json("sde");
  m.target = r.json("target");
  m.training = r.json("training");
  read_layers(r, m);
  read_check_data(r, m);
  try {
    model_sde(m);
  } catch (const InputError& e) {
    r.fail(std::string("attribute 'sde' is not an SDE pflow knows: ") + e.what());
  }
  // The check outputs are torch's float64 forward: pflow's must reproduce them to 1e-12
  // relative (to the largest output) before the model is used.
  const ModelCheck check = check_model(m);
  r.check(
      check.points == 0 || (std::isfinite(check.torch_vs_double) && check.torch_vs_double <= 1e-12),
      "pflow's forward differs from /check/output by " + to_text(check.torch_vs_double) +
          " (relative; at most 1e-12 allowed): the file's layout or activation is not what "
          "format 1 says");
  return m;
}

ModelCheck check_model(const MlpModel& m) {
  ModelCheck c;
  c.points = static_cast<int>(m.check_x.cols());
  if (c.points == 0) return c;
  const Vec<double> tau = check_network_times(m);
  Mat<double> dbl(m.check_x.rows(), m.check_x.cols());
  Mat<mp50> mp(dbl.rows(), dbl.cols());
  const MlpNetwork<double> network(m);
  const MlpNetwork<mp50> network50(m);
  // The points in groups of one label each (-1 for an unconditional model's).
  std::vector<int> labels = m.check_labels;
  if (labels.empty()) labels.assign(static_cast<size_t>(c.points), -1);
  std::vector<int> distinct = labels;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  for (int y : distinct) {
    std::vector<Eigen::Index> cols;
    for (Eigen::Index j = 0; j < m.check_x.cols(); ++j)
      if (labels[static_cast<size_t>(j)] == y) cols.push_back(j);
    const Mat<double> x = m.check_x(Eigen::all, cols);
    const Vec<double> t = tau(cols);
    dbl(Eigen::all, cols) = network.forward(x, t, y);
    mp(Eigen::all, cols) = network50.forward(x.cast<mp50>(), t.cast<mp50>(), y);
  }
  c.torch_vs_double = relative_deviation(dbl, m.check_output);
  c.mp50_vs_double = relative_deviation(dbl, mp.cast<double>());
  return c;
}

std::string describe_model(const MlpModel& m) {
  std::ostringstream out;
  out << "model " << m.path << ": mlp, D = " << m.dim << ", layers";
  for (int l = 0; l < m.layers(); ++l) out << (l ? " -> " : " ") << m.weights[l].cols();
  out << " -> " << m.dim << ", activation " << activation_names()[int(m.activation)] << ", output "
      << model_output_names()[int(m.output)] << ", time input "
      << time_input_names()[int(m.time_input)] << ", embedding " << m.time_embedding.dump();
  if (m.classes > 0)
    out << ", class-conditional: " << m.classes << " one-hot label inputs (zeros: no label)";
  out << "\nsde " << m.sde.dump() << "\ntarget " << m.target.dump() << "\n";
  if (m.training.contains("final_loss"))
    out << "training: final loss " << m.training["final_loss"].dump() << ", torch "
        << m.training.value("torch_version", std::string("?")) << ", "
        << m.training.value("seconds", 0.0) << " s\n";
  return out.str();
}

}  // namespace pflow
