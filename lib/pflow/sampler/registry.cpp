#include "pflow/sampler/registry_impl.hpp"

#include "pflow/core/json_fields.hpp"

namespace pflow {

SolverParams read_solver_params(const SolverDescription& record, const nlohmann::json& object,
                                const std::string& path) {
  std::vector<std::string> keys = {"name", "label"};
  for (const ParameterSpec& p : record.parameters) keys.push_back(p.key);
  const Fields f(object, path, keys);
  nlohmann::json values = nlohmann::json::object();
  for (const ParameterSpec& p : record.parameters) {
    switch (p.type) {
      case ParameterSpec::Type::integer: {
        const int v = f.integer(p.key, p.fallback.get<int>());
        require(v >= p.lo && v <= p.hi, f.at(p.key), v,
                "must be between " + to_text(static_cast<int>(p.lo)) + " and " +
                    to_text(static_cast<int>(p.hi)));
        values[p.key] = v;
        break;
      }
      case ParameterSpec::Type::number: {
        const double v = f.number<double>(p.key, p.fallback.get<double>());
        const bool inside = p.open ? v > p.lo && v < p.hi : v >= p.lo && v <= p.hi;
        require(inside, f.at(p.key), v,
                std::string("must be in ") + (p.open ? "(" : "[") + to_text(p.lo) + ", " +
                    to_text(p.hi) + (p.open ? ")" : "]"));
        values[p.key] = v;
        break;
      }
      case ParameterSpec::Type::text:
        values[p.key] = f.text(p.key, p.fallback.get<std::string>(), p.choices);
        break;
      case ParameterSpec::Type::boolean:
        values[p.key] = f.boolean(p.key, p.fallback.get<bool>());
        break;
    }
  }
  SolverParams params(std::move(values), path);
  if (record.check) record.check(params);
  return params;
}

std::string describe_parameters(const SolverDescription& record) {
  std::string out;
  for (const ParameterSpec& p : record.parameters) {
    out += (out.empty() ? "" : ", ") + p.key + " = " +
           (p.fallback.is_string()         ? p.fallback.get<std::string>()
            : p.fallback.is_number_float() ? to_text(p.fallback.get<double>())
                                           : p.fallback.dump());
    switch (p.type) {
      case ParameterSpec::Type::integer:
        out +=
            " (" + to_text(static_cast<int>(p.lo)) + " to " + to_text(static_cast<int>(p.hi)) + ")";
        break;
      case ParameterSpec::Type::number:
        out += std::string(" in ") + (p.open ? "(" : "[") + to_text(p.lo) + ", " + to_text(p.hi) +
               (p.open ? ")" : "]");
        break;
      case ParameterSpec::Type::text: {
        std::string others;
        for (const auto& c : p.choices)
          if (c != p.fallback.get<std::string>()) others += (others.empty() ? "" : ", ") + c;
        out += " (" + others + ")";
        break;
      }
      case ParameterSpec::Type::boolean:
        break;
    }
  }
  return out;
}

std::vector<std::string> solver_names() {
  std::vector<std::string> names;
  for (const auto& r : solver_table<double>()) names.push_back(r.name);
  return names;
}

namespace detail {

size_t solver_index(const nlohmann::json& spec, const std::string& path) {
  require(spec.is_string() || spec.is_object(), path, spec.dump(),
          "must be a solver name or an object with a \"name\"");
  const bool named = spec.is_string() || (spec.contains("name") && spec["name"].is_string());
  require(named, path + ".name", spec.contains("name") ? spec["name"].dump() : "(missing)",
          "must be a solver name (a string)");
  const std::string name =
      spec.is_string() ? spec.get<std::string>() : spec["name"].get<std::string>();
  const auto names = solver_names();
  const auto it = std::find(names.begin(), names.end(), name);
  if (it == names.end()) {
    const std::string hint = closest_name(name, names);
    throw InputError(path + ".name", name,
                     "unknown solver" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                         "; `pflow list` shows them all");
  }
  return static_cast<size_t>(it - names.begin());
}

std::string solver_label(const nlohmann::json& spec, const std::string& name) {
  if (!spec.is_object()) return name;
  if (spec.contains("label") && spec["label"].is_string()) return spec["label"].get<std::string>();
  std::string params;
  for (const auto& [key, value] : spec.items()) {
    if (key == "name") continue;
    params += (params.empty() ? "" : ",") + key + "=" +
              (value.is_string() ? value.get<std::string>() : value.dump());
  }
  return params.empty() ? name : name + "(" + params + ")";
}

}  // namespace detail

int declared_order(const nlohmann::json& spec, int block_size) {
  const auto& record = solver_table<double>()[detail::solver_index(spec, "solver")];
  const nlohmann::json object =
      spec.is_string() ? nlohmann::json{{"name", spec.get<std::string>()}} : spec;
  const SolverParams params = read_solver_params(record, object, "solver");
  return record.order_on_sde ? record.order_on_sde(params, block_size)
                             : record.traits(params).order;
}

std::vector<OrderTest> order_tests_on(const std::string& problem) {
  std::vector<OrderTest> tests;
  for (const auto& record : solver_table<double>())
    for (const OrderTest& test : record.order_tests)
      if (std::find(test.problems.begin(), test.problems.end(), problem) != test.problems.end())
        tests.push_back(test);
  return tests;
}

template const SolverTable<double>& solver_table<double>();
template std::unique_ptr<Solver<double>> make_solver<double>(const nlohmann::json&,
                                                             const std::string&);

}  // namespace pflow
