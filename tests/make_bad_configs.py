#!/usr/bin/python3
"""Writes tests/bad_configs/NN_name.json from a valid base config, one defect each, and
tests/bad_configs/expected.tsv (file <TAB> message fragment), with the bad model files the
denoiser cases name (tests/bad_configs/models/, model format 1 with one defect each, written with
numpy and h5py). Run it after changing the list; the files are committed.
Usage: /usr/bin/python3 tests/make_bad_configs.py"""
import copy
import json
import os

import h5py
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "bad_configs")
base = json.load(open(os.path.join(here, "data", "tiny_convergence.json")))
gmm = {"type": "gmm", "weights": [0.4, 0.6], "means": [[-1.0, 0.0], [1.0, 0.5]],
       "covs": [[[0.2, 0.0], [0.0, 0.2]], [[0.3, 0.1], [0.1, 0.2]]]}


def edit(**changes):
    def apply(c):
        for path, value in changes.items():
            keys = path.split("__")
            node = c
            for k in keys[:-1]:
                node = node[int(k)] if isinstance(node, list) else node[k]
            last = keys[-1]
            if value is DELETE:
                del node[last]
            elif isinstance(node, list):
                node[int(last)] = value
            else:
                node[last] = value
        return c
    return apply


DELETE = object()


# Model files: a valid 2 -> 8 -> 2 SiLU eps-network for the base config's vp-linear SDE, and one
# defect per file.
def silu(h):
    return h / (1 + np.exp(-h))


def write_model(name, defect=None, classes=0):
    """classes > 0: a class-conditional network (one-hot label inputs after the time), with
    check points of labels -1, 0, 1, ..."""
    rng = np.random.default_rng(7)
    dim, width = 2, 8
    layers = [(rng.standard_normal((width, dim + 1 + classes)) / 2, rng.standard_normal(width) / 4),
              (rng.standard_normal((dim, width)) / 3, rng.standard_normal(dim) / 4)]
    attrs = {"format": "pflow-denoiser", "format_version": np.int64(1), "architecture": "mlp",
             "output": "eps", "activation": "silu", "time_input": "t",
             "time_embedding": json.dumps({"type": "raw"}),
             "sde": json.dumps(base["sde"]), "target": json.dumps(base["target"]),
             "training": json.dumps({"config": {}, "final_loss": 0.0})}
    x = rng.standard_normal((5, dim))
    t = rng.uniform(0.01, 1.0, 5)
    h = np.concatenate([x, t[:, None]], axis=1)
    labels = None
    if classes:
        labels = np.arange(5) % (classes + 1) - 1
        onehot = np.zeros((5, classes))
        onehot[labels >= 0, labels[labels >= 0]] = 1
        h = np.concatenate([h, onehot], axis=1)
        attrs["classes"] = np.int64(classes)
    h = silu(h @ layers[0][0].T + layers[0][1])
    out = h @ layers[1][0].T + layers[1][1]
    if labels is not None:
        attrs["check_label"] = labels.astype(np.float64)  # written as /check/label below
    if defect:
        defect(attrs, layers, out)
    check_label = attrs.pop("check_label", None)
    path = os.path.join(out_models, name + ".h5")
    with h5py.File(path, "w") as f:
        for k, v in attrs.items():
            if v is not DELETE:
                f.attrs[k] = v
        for i, (w, b) in enumerate(layers):
            f.create_dataset(f"layers/{i}/weight", data=w)
            f.create_dataset(f"layers/{i}/bias", data=b)
        f.create_dataset("check/x", data=x)
        f.create_dataset("check/t", data=t)
        f.create_dataset("check/output", data=out)
        if check_label is not None:
            f.create_dataset("check/label", data=check_label)
    return "models/" + name + ".h5"


def attr(key, value):
    def apply(attrs, layers, out):
        attrs[key] = value
    return apply


def attrs_of(**values):
    def apply(attrs, layers, out):
        attrs.update(values)
    return apply


def layer(i, weight=None, bias=None):
    def apply(attrs, layers, out):
        w, b = layers[i]
        layers[i] = (weight(w) if weight else w, bias(b) if bias else b)
    return apply


def nan_at(w):
    w = w.copy()
    w[1, 1] = np.nan
    return w


def check_off(attrs, layers, out):
    out[2, 1] *= 1 + 1e-9


def uses_model(name, defect=None):
    return edit(denoiser={"type": "mlp", "path": write_model(name, defect)})


def label_out_of_range(attrs, layers, out):
    attrs["check_label"] = attrs["check_label"].copy()
    attrs["check_label"][1] = 5


def labelled(**changes):
    """The base config on the labelled two-component mixture, with changes."""
    return edit(target=dict(gmm, labels=[0, 1]), **changes)


out_models = os.path.join(out, "models")
os.makedirs(out_models, exist_ok=True)
for f in os.listdir(out_models):
    os.remove(os.path.join(out_models, f))
with open(os.path.join(out_models, "not_hdf5.h5"), "w") as fh:
    fh.write("this is text, not HDF5\n")

cases = [
    ("unknown_top_key", edit(solver=["ddim"]), "config.solver = [\"ddim\"]: unknown key (did you mean 'solvers'?)"),
    ("missing_name", edit(name=DELETE), "config.name = (missing): is required"),
    ("bad_name_chars", edit(name="my run/1"), "name = my run/1: must be letters"),
    ("name_not_string", edit(name=3), "config.name = 3: must be a string"),
    ("unknown_kind", edit(kind="convergance"), "did you mean 'convergence'"),
    ("unknown_precision", edit(precision="quad"), "config.precision = quad: is not one of double, float128, mp50"),
    ("unknown_reference", edit(reference="exakt"), "did you mean 'exact'"),
    ("negative_seed", edit(seed=-1), "seed = -1: must be a non-negative integer"),
    ("missing_sde", edit(sde=DELETE), "sde = (missing): is required"),
    ("unknown_sde", edit(sde={"type": "vp-linaer"}), "did you mean 'vp-linear'"),
    ("sde_unknown_param", edit(sde={"type": "vp-linear", "beta_mx": 20}), "sde.beta_mx"),
    ("sde_negative_beta", edit(sde={"type": "vp-linear", "beta_min": -0.1}), "sde.beta_min = -0.1"),
    ("sde_param_string", edit(sde={"type": "vp-linear", "beta_max": "20"}), "sde.beta_max = \"20\": must be a number"),
    ("missing_target", edit(target=DELETE), "target = (missing): is required"),
    ("unknown_target", edit(target={"type": "gausian"}), "did you mean 'gaussian'"),
    ("cov_not_spd", edit(target__cov=[[1.0, 2.0], [2.0, 1.0]]), "target.cov"),
    ("cov_not_symmetric", edit(target__cov=[[1.0, 0.5], [0.2, 1.0]]), "target.cov"),
    ("cov_wrong_size", edit(target__cov=[[1.0]]), "target.cov"),
    ("gmm_weights_sum", edit(target=dict(gmm, weights=[0.4, 0.5])), "target.weights"),
    ("gmm_negative_weight", edit(target=dict(gmm, weights=[-0.4, 1.4])), "target.weights"),
    ("gmm_means_count", edit(target=dict(gmm, means=[[-1.0, 0.0]])), "target.means"),
    ("gmm_ragged_means", edit(target=dict(gmm, means=[[-1.0, 0.0], [1.0]])), "target.means[1]"),
    ("unknown_denoiser", edit(denoiser={"type": "unet"}), "denoiser.type = unet"),
    ("missing_time", edit(time=DELETE), "time = (missing): is required"),
    ("t_end_zero", edit(time__t_end=0.0), "time.t_end = 0: must be positive"),
    ("t_end_negative", edit(time__t_end=-0.1), "time.t_end = -0.1"),
    ("t_start_below_end", edit(time__t_start=0.0005), "time.t_start = 5e-04: must exceed time.t_end"),
    ("t_start_beyond_T", edit(time__t_start=1.5), "time.t_start = 1.5: exceeds the SDE's T"),
    ("unknown_grid", edit(time__grid="log-snr"), "did you mean 'logsnr'"),
    ("time_unknown_key", edit(time__tstart=1.0), "time.tstart"),
    ("logsnr_on_cld", lambda c: dict(edit()(c), sde={"type": "cld"}, target={"type": "gaussian", "mean": [0.5], "cov": [[1.0]]}, init={"points": [[0.1, 0.2]]}),
     "time.grid = logsnr: needs lambda(t)"),
    ("list_not_decreasing", edit(time={"grid": "list", "times": [1.0, 0.5, 0.7, 0.1]}), "time.times[2] = 0.7"),
    ("missing_init", edit(init=DELETE), "init = (missing): is required"),
    ("init_wrong_dim", edit(init={"points": [[0.1, 0.2, 0.3]]}), "init.points[0]"),
    ("init_points_and_count", edit(init={"points": [[0.1, 0.2]], "count": 3}), "init.count"),
    ("init_count_zero", edit(init={"count": 0}), "init.count = 0"),
    ("timing_repeats_zero", edit(timing_repeats=0), "timing_repeats = 0: must be between 1 and 100"),
    ("init_count_too_large", edit(init={"count": 100000001}), "init.count = 100000001: must be between 1 and 100000000"),
    ("init_count_beyond_memory", edit(target={"type": "gaussian", "mean": [0.0] * 64, "cov": [[1.0 if i == j else 0.0 for j in range(64)] for i in range(64)]}, init={"count": 100000000}), "init.count = 100000000: the run needs an estimated"),
    ("init_not_numbers", edit(init={"points": [["a", 0.2]]}), "init.points[0][0]"),
    ("missing_solvers", edit(solvers=DELETE), "solvers = (missing): is required"),
    ("empty_solvers", edit(solvers=[]), "solvers = []: must be a non-empty array"),
    ("unknown_solver", edit(solvers=["ddim", "dpm-solver++3m"]), "solvers[1].name = dpm-solver++3m: unknown solver (did you mean 'dpm-solver++-3m'?)"),
    ("solver_bad_param", edit(solvers=[{"name": "unipc", "order": 7}]), "solvers[0].order = 7: must be between 1 and 3"),
    ("solver_unknown_param", edit(solvers=[{"name": "unipc", "varient": "bh1"}]), "solvers[0].varient"),
    ("solver_duplicate", edit(solvers=["ddim", "ddim"]), "appears twice"),
    ("solver_adaptive", edit(solvers=[{"name": "dopri5", "adaptive": True}]), "is adaptive"),
    ("solver_eta_range", edit(solvers=[{"name": "ddim", "eta": 2}]), "solvers[0].eta = 2"),
    ("solver_scalar_only_on_cld", lambda c: dict(edit()(c), sde={"type": "cld"}, target={"type": "gaussian", "mean": [0.5], "cov": [[1.0]]}, init={"points": [[0.1, 0.2]]}, time={"grid": "time-uniform"}, solvers=["dpm-solver-2"]),
     "needs a scalar SDE"),
    ("missing_nfe", edit(nfe=DELETE), "nfe = (missing): is required"),
    ("nfe_not_increasing", edit(nfe=[32, 16]), "nfe[1] = 16: NFE values must increase"),
    ("nfe_below_minimum", edit(solvers=["dpm-solver-3"], nfe=[2, 4]), "nfe[0] = 2: is below the minimum of dpm-solver-3"),
    ("nfe_not_integer", edit(nfe=[16.5]), "nfe[0] = 16.5: must be an integer"),
    ("nfe_zero", edit(nfe=[0, 8]), "nfe[0] = 0"),
    ("fit_levels_one", edit(fit_levels=1), "fit_levels = 1"),
    ("fit_levels_beyond_nfe", edit(fit_levels=5), "fit_levels = 5: exceeds the 4 NFE levels"),
    ("stochastic_deterministic_solver", edit(kind="stochastic", time__grid="time-uniform", solvers=["euler-maruyama", "ddim"]), "solvers[1] = ddim: is deterministic"),
    ("stochastic_eta_mismatch", edit(kind="stochastic", time__grid="time-uniform", solvers=[{"name": "ddim", "eta": 0.5}, "ddpm"]), "solvers[1].eta = 1: differs from solvers[0]'s eta 0.5"),
    ("stochastic_logsnr_grid", edit(kind="stochastic", solvers=["ddpm"]), "time.grid = logsnr: must be \"time-uniform\""),
    ("stochastic_nfe_not_power_of_two", edit(kind="stochastic", time__grid="time-uniform", solvers=["ddpm"], nfe=[16, 24]), "nfe[1] = 24: must be a power of two"),
    ("stochastic_brownian_too_coarse", edit(kind="stochastic", time__grid="time-uniform", solvers=["ddpm"], brownian_levels=8), "brownian_levels = 8"),
    ("brownian_levels_on_convergence", edit(brownian_levels=12), "brownian_levels = 12: applies to kind \"stochastic\" only"),
    ("abm_on_logsnr_in_t", edit(solvers=["ddim", "abm"]), "time.grid = logsnr: abm (solvers[1]) needs steps uniform in its variable: grid \"time-uniform\""),
    ("kernel_missing_times", lambda c: {"name": "k", "kind": "kernel", "sde": c["sde"], "target": c["target"]}, "times = (missing): is required"),
    ("kernel_time_beyond_T", lambda c: {"name": "k", "kind": "kernel", "sde": c["sde"], "target": c["target"], "times": [0.5, 2.0]}, "times[1] = 2"),
    ("denoiser_mlp_without_path", edit(denoiser={"type": "mlp"}), "denoiser.path = (missing): is required"),
    ("denoiser_perturbed_negative_delta", edit(denoiser={"type": "perturbed", "delta": -1e-3}), "denoiser.delta = -0.001: must be a finite number >= 0"),
    ("denoiser_analytic_with_path", edit(denoiser={"type": "analytic", "path": "m.h5"}), "denoiser.path"),
    ("model_missing_file", edit(denoiser={"type": "mlp", "path": "models/nonexistent.h5"}), "models/nonexistent.h5: does not exist or cannot be read"),
    ("model_not_hdf5", edit(denoiser={"type": "mlp", "path": "models/not_hdf5.h5"}), "models/not_hdf5.h5: is not an HDF5 file"),
    ("model_wrong_format", uses_model("wrong_format", attr("format", "pflow-model")), "wrong_format.h5: attribute 'format' is \"pflow-model\", not \"pflow-denoiser\""),
    ("model_wrong_version", uses_model("wrong_version", attr("format_version", np.int64(2))), "wrong_version.h5: attribute 'format_version' is 2; this pflow reads format 1"),
    ("model_missing_output", uses_model("missing_output", attr("output", DELETE)), "missing_output.h5: has no root attribute 'output'"),
    ("model_unknown_activation", uses_model("unknown_activation", attr("activation", "swish")), "unknown_activation.h5: attribute 'activation' is \"swish\"; valid: silu, gelu, tanh, softplus, relu"),
    ("model_unknown_output", uses_model("unknown_output", attr("output", "noise")), "unknown_output.h5: attribute 'output' is \"noise\"; valid: eps, x0, v, score"),
    ("model_unknown_time_input", uses_model("unknown_time_input", attr("time_input", "sigma")), "unknown_time_input.h5: attribute 'time_input' is \"sigma\"; valid: t, lambda"),
    ("model_bad_embedding", uses_model("bad_embedding", attr("time_embedding", json.dumps({"type": "fourier"}))), "bad_embedding.h5: attribute 'time_embedding' needs a non-empty list \"frequencies\""),
    ("model_shapes_do_not_chain", uses_model("shapes_do_not_chain", layer(1, weight=lambda w: np.zeros((2, 7)))), "shapes_do_not_chain.h5: layer shapes do not chain: /layers/1/weight takes 7 inputs, layer 0 gives 8"),
    ("model_input_width", uses_model("input_width", layer(0, weight=lambda w: np.zeros((8, 4)))), "input_width.h5: the first layer takes 4 inputs, but D + embedding width + classes = 2 + 1 + 0 = 3"),
    ("model_bias_length", uses_model("bias_length", layer(0, bias=lambda b: np.zeros(5))), "bias_length.h5: dataset /layers/0/bias has 5 values, but /layers/0/weight has 8 rows"),
    ("model_nonfinite_weight", uses_model("nonfinite_weight", layer(0, weight=nan_at)), "nonfinite_weight.h5: dataset /layers/0/weight holds non-finite values"),
    ("model_check_mismatch", uses_model("check_mismatch", check_off), "check_mismatch.h5: pflow's forward differs from /check/output"),
    ("model_sde_mismatch", uses_model("sde_mismatch", attr("sde", json.dumps({"type": "vp-linear", "beta_max": 10.0}))), "sde_mismatch.h5: was trained for the SDE"),
    ("model_unknown_sde", uses_model("unknown_sde", attr("sde", json.dumps({"type": "vp-lin"}))), "unknown_sde.h5: attribute 'sde' is not an SDE pflow knows"),
    ("model_target_mismatch", uses_model("target_mismatch", attr("target", json.dumps({"type": "dirac", "point": [0.0, 0.0]}))), "target_mismatch.h5: was trained on the target"),
    ("model_time_range", uses_model("time_range", attr("training", json.dumps({"resolved": {"t_min": 0.01, "t_max": 1.0}}))), "time_range.h5: was trained for t in [0.01, 1], the run covers [0.001, 1]"),
    ("model_other_dimension", lambda c: dict(uses_model("other_dimension")(c), target={"type": "gaussian", "mean": [0.5, -1.0, 0.2], "cov": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]}, init={"points": [[0.1, 0.2, 0.3]]}),
     "other_dimension.h5: the network takes 2 coordinates; the run's state has 3"),
    ("model_output_on_cld", lambda c: dict(uses_model("eps_on_cld", attrs_of(sde=json.dumps({"type": "cld"}), target=json.dumps({"type": "gaussian", "mean": [0.5], "cov": [[1.0]]})))(c), sde={"type": "cld"}, target={"type": "gaussian", "mean": [0.5], "cov": [[1.0]]}, init={"points": [[0.1, 0.2]]}, time={"grid": "time-uniform"}, solvers=["euler"]),
     "eps_on_cld.h5: its output or time input needs a scalar SDE (alpha, sigma), not cld"),
    ("odeint_lambda_on_cld", lambda c: dict(edit()(c), sde={"type": "cld"}, target={"type": "gaussian", "mean": [0.5], "cov": [[1.0]]}, init={"points": [[0.1, 0.2]]}, time={"grid": "time-uniform"}, solvers=["rk4", {"name": "rk4", "variable": "lambda", "label": "rk4-lambda"}]),
     "solvers[1] = rk4-lambda: needs a scalar SDE (alpha, sigma, lambda), not cld; integrate in t"),
    # Sample-only data sets and kind "sample".
    ("dataset_with_analytic_score", edit(target={"type": "dataset", "name": "two-moons"}), "denoiser.type = analytic: has no data score to use: target \"two-moons\" is a sample-only data set"),
    ("dataset_unknown_name", edit(target={"type": "dataset", "name": "moons"}), "target.name = moons: is not one of two-moons, checkerboard, swiss-roll"),
    ("dataset_negative_noise", edit(target={"type": "dataset", "name": "checkerboard", "noise": -0.1}), "target.noise = -0.1: must be a finite number in [0, 1e6]"),
    ("dataset_huge_scale", edit(target={"type": "dataset", "name": "two-moons", "scale": 1e160}), "target.scale = 1e+160: must be a finite number in (0, 1e6]"),
    ("dataset_zero_scale", edit(target={"type": "dataset", "name": "swiss-roll", "scale": 0}), "target.scale = 0: must be a finite number in (0, 1e6]"),
    ("dataset_unknown_key", edit(target={"type": "dataset", "name": "two-moons", "sigma": 0.1}), "target.sigma = 0.1: unknown key"),
    ("dataset_kernel_kind", lambda c: {"name": "k", "kind": "kernel", "sde": {"type": "vp-linear"}, "target": {"type": "dataset", "name": "two-moons"}, "denoiser": {"type": "mlp", "path": "models/valid.h5"}, "times": [0.5]},
     "target.type = dataset: has no density: kind \"kernel\" needs a mixture"),
    ("sample_zero_projections", edit(kind="sample", projections=0), "projections = 0: must be between 1 and 10000"),
    ("sample_too_many_replicates", edit(kind="sample", replicates=1000), "replicates = 1000: must be between 2 and 256"),
    ("sample_one_particle", edit(kind="sample", init={"points": [[0.3, -1.1]]}), "init.points = 1: must give at least 2 particles"),
    ("projections_on_convergence", edit(projections=64), "projections = 64: applies to kind \"sample\" or \"guidance\" only"),
    # Kind "likelihood".
    ("likelihood_sampler_solver", edit(kind="likelihood", solvers=["ddim"]), "solvers[0] = ddim: is not a generic ODE solver"),
    ("likelihood_unknown_prior", edit(kind="likelihood", solvers=["rk4"], prior="flat"), "prior = flat: is not one of exact, gaussian"),
    ("likelihood_exact_prior_dataset", edit(kind="likelihood", solvers=["rk4"], prior="exact", target={"type": "dataset", "name": "two-moons"}, denoiser={"type": "mlp", "path": "models/valid.h5"}), "prior = exact: needs a mixture target"),
    ("likelihood_at_t_end_0", edit(kind="likelihood", solvers=["rk4"], time={"t_start": 1.0, "t_end": 0.0, "grid": "time-uniform"}), "time.t_end"),
    ("likelihood_adaptive_without_tolerances", edit(kind="likelihood", solvers=[{"name": "rkf78", "adaptive": True}]), "tolerances = (missing): is required for adaptive solvers"),
    ("likelihood_unknown_divergence", edit(kind="likelihood", solvers=["rk4"], divergence="skilling"), "divergence = \"skilling\": must be \"exact\" or {\"type\": \"hutchinson\", ...}"),
    ("hutchinson_one_probe", edit(kind="likelihood", solvers=["rk4"], divergence={"type": "hutchinson", "count": 1}), "divergence.count = 1: must be between 2 and 100000"),
    ("hutchinson_unknown_probes", edit(kind="likelihood", solvers=["rk4"], divergence={"type": "hutchinson", "probes": "uniform"}), "divergence.probes = uniform: is not one of rademacher, gaussian"),
    ("prior_on_convergence", edit(prior="exact"), "prior = \"exact\": applies to kind \"likelihood\" only"),
    ("sample_adaptive_solver", edit(kind="sample", solvers=[{"name": "dopri5", "adaptive": True}]), "is adaptive"),
    # Kind "inversion".
    ("inversion_stochastic_solver", edit(kind="inversion", solvers=["ddim", "ddpm"]), "solvers[1] = ddpm: cannot run forwards in time"),
    ("inversion_ddim_with_eta", edit(kind="inversion", solvers=[{"name": "ddim", "eta": 0.3}]), "solvers[0] = ddim(eta=0.3): cannot run forwards in time"),
    ("inversion_adaptive_solver", edit(kind="inversion", solvers=[{"name": "dopri5", "adaptive": True}]), "is adaptive"),
    # Kind "interpolation".
    ("interpolation_three_points", edit(kind="interpolation"), "init = 3 points: kind \"interpolation\" needs exactly two points"),
    ("interpolation_count_1", edit(kind="interpolation", init={"points": [[0.3, -1.1], [1.2, 0.4]]}, interpolation={"count": 1}), "interpolation.count = 1: must be between 3 and 10001"),
    ("interpolation_unknown_method", edit(kind="interpolation", init={"points": [[0.3, -1.1], [1.2, 0.4]]}, interpolation={"method": "bezier"}), "interpolation.method = bezier: is not one of slerp, linear"),
    ("interpolation_dataset", edit(kind="interpolation", init={"points": [[0.3, -1.1], [1.2, 0.4]]}, target={"type": "dataset", "name": "two-moons"}, denoiser={"type": "mlp", "path": "models/valid.h5"}), "needs a mixture target"),
    ("interpolation_on_convergence", edit(interpolation={"method": "slerp"}), "applies to kind \"interpolation\" only"),
    # Guidance.
    ("guided_without_labels", edit(target=gmm, denoiser={"type": "guided", "label": 0}), "denoiser.type = guided: needs a gmm target with \"labels\""),
    ("guided_unknown_label", edit(target=dict(gmm, labels=[0, 1]), denoiser={"type": "guided", "label": 2}), "denoiser.label = 2: labels no component of the target (labels: 0, 1)"),
    ("guided_negative_scale", edit(target=dict(gmm, labels=[0, 1]), denoiser={"type": "guided", "label": 1, "scale": -0.5}), "denoiser.scale = -0.5: must be between 0 and 1000"),
    ("guided_unknown_guidance", edit(target=dict(gmm, labels=[0, 1]), denoiser={"type": "guided", "label": 1, "guidance": "auto"}), "denoiser.guidance = auto: is not one of cfg, classifier"),
    ("labels_wrong_count", edit(target=dict(gmm, labels=[0])), "target.labels = 1: needs one label per component (2)"),
    ("labels_not_integer", edit(target=dict(gmm, labels=[0, 1.5])), "target.labels[1] = 1.5: must be an integer class label"),
    # Kind "guidance".
    ("guidance_learned_denoiser", edit(kind="guidance", target=dict(gmm, labels=[0, 1]), init={"count": 50, "seed": 1}, denoiser={"type": "perturbed", "delta": 0.01}), "denoiser.type = perturbed: kind \"guidance\" builds its guided score at every scale itself"),
    ("guidance_without_labels", edit(kind="guidance", target=gmm, init={"count": 50, "seed": 1}), "needs a 2-D gmm target with \"labels\""),
    ("guidance_unknown_label", edit(kind="guidance", target=dict(gmm, labels=[0, 1]), init={"count": 50, "seed": 1}, guidance={"label": 5}), "guidance.label = 5: labels no component of the target (labels: 0, 1)"),
    ("guidance_negative_scale", edit(kind="guidance", target=dict(gmm, labels=[0, 1]), init={"count": 50, "seed": 1}, guidance={"label": 1, "scales": [0, -1]}), "guidance.scales[1] = -1: must be between 0 and 1000"),
    ("guidance_coarse_grid", edit(kind="guidance", target=dict(gmm, labels=[0, 1]), init={"count": 50, "seed": 1}, guidance={"label": 1, "grid": 10}), "guidance.grid = 10: must be between 50 and 4000"),
    ("guidance_on_convergence", edit(guidance={"label": 1}), "guidance = {\"label\":1}: applies to kind \"guidance\" only"),
    ("interpolation_stochastic_solver", edit(kind="interpolation", init={"points": [[0.3, -1.1], [1.2, 0.4]]}, solvers=["ddpm"]), "solvers[0] = ddpm: is stochastic"),
    ("guidance_decreasing_scales", edit(kind="guidance", target=dict(gmm, labels=[0, 1]), init={"count": 50, "seed": 1}, guidance={"label": 1, "scales": [2, 1]}), "guidance.scales[1] = 1: scales must increase"),
    # Class-conditional networks (model format 1's optional `classes`) and CFG with them.
    ("model_classes_not_integer", uses_model("classes_not_integer", attr("classes", 1.5)), "classes_not_integer.h5: attribute 'classes' is 1.5; it must be an integer from 1 to 100000"),
    ("model_classes_width", uses_model("classes_width", attr("classes", np.int64(2))), "classes_width.h5: the first layer takes 3 inputs, but D + embedding width + classes = 2 + 1 + 2 = 5"),
    ("model_check_label_range", edit(denoiser={"type": "mlp", "path": write_model("check_label_range", label_out_of_range, classes=2)}), "check_label_range.h5: dataset /check/label holds 5; labels are -1 (none) or 0 to 1"),
    ("mlp_label_unconditional_model", labelled(denoiser={"type": "mlp", "path": write_model("unconditional"), "label": 1, "allow_target_mismatch": True}), "denoiser.label = 1: model"),
    ("mlp_label_beyond_classes", edit(target=dict(gmm, labels=[0, 2]), denoiser={"type": "mlp", "path": write_model("conditional", classes=2), "label": 2, "allow_target_mismatch": True}), "denoiser.label = 2: model"),
    ("guided_network_classifier", labelled(denoiser={"type": "guided", "path": "models/conditional.h5", "label": 1, "guidance": "classifier"}), "denoiser.guidance = classifier: a learned model has no classifier"),
    ("guidance_network_classifier", labelled(kind="guidance", init={"count": 50, "seed": 1}, denoiser={"type": "mlp", "path": "models/conditional.h5", "allow_target_mismatch": True}, guidance={"label": 1, "method": "classifier"}), "guidance.method = classifier: a learned model has no classifier"),
    ("guidance_denoiser_label", labelled(kind="guidance", init={"count": 50, "seed": 1}, denoiser={"type": "mlp", "path": "models/conditional.h5", "label": 1, "allow_target_mismatch": True}, guidance={"label": 1}), "denoiser.label = 1: kind \"guidance\" takes its class from guidance.label"),
    ("guidance_unconditional_network", labelled(kind="guidance", init={"count": 50, "seed": 1}, denoiser={"type": "mlp", "path": "models/unconditional.h5", "allow_target_mismatch": True}, guidance={"label": 1}), "guidance.label = 1: model"),
    # Discrete time (vp-discrete and its integer grids).
    ("discrete_betas_decrease", edit(sde={"type": "vp-discrete", "betas": [0.1, 0.05]}), "sde.betas[1] = 0.05: betas must not decrease"),
    ("discrete_beta_one", edit(sde={"type": "vp-discrete", "betas": [0.1, 1.0]}), "sde.betas[1] = 1: must lie in (0, 1)"),
    ("discrete_T_zero", edit(sde={"type": "vp-discrete", "schedule": "linear", "T": 0}), "sde.T = 0: must be 1 to 100000 steps"),
    ("discrete_grid_not_a_step", edit(sde={"type": "vp-discrete", "schedule": "linear", "T": 1000}, time={"t_start": 1.0, "t_end": 0.0015, "grid": "discrete-uniform"}), "time.t_end = 0.0015: must be a step of the chain"),
    ("discrete_grid_on_vp_linear", edit(time={"t_start": 1.0, "t_end": 0.001, "grid": "discrete-quadratic"}), "time.grid = discrete-quadratic: needs the integer steps of a vp-discrete SDE"),
    ("interpolation_antipodal_latents", edit(kind="interpolation", init={"points": [[0.3, -1.1], [-0.3, 1.1]]}, interpolation={"endpoints": "latent"}), "opposite directions"),
    ("elbo_needs_vp_discrete", lambda c: {"name": "e", "kind": "elbo", "sde": c["sde"], "target": c["target"]}, "sde.type = vp-linear: kind \"elbo\" needs a \"vp-discrete\" chain"),
    ("elbo_T_not_increasing", lambda c: {"name": "e", "kind": "elbo", "sde": {"type": "vp-discrete", "schedule": "linear"}, "target": c["target"], "elbo": {"T": [100, 50]}}, "elbo.T[1] = 50: lengths must increase"),
    ("elbo_T_with_betas", lambda c: {"name": "e", "kind": "elbo", "sde": {"type": "vp-discrete", "betas": [0.1, 0.2]}, "target": c["target"], "elbo": {"T": [10]}}, "elbo.T = [10]: needs a named schedule"),
    ("elbo_dataset_target", lambda c: {"name": "e", "kind": "elbo", "sde": {"type": "vp-discrete", "schedule": "linear"}, "target": {"type": "dataset", "name": "two-moons"}}, "target \"two-moons\" is a sample-only data set"),
    ("denoiser_output_unknown", edit(denoiser={"type": "analytic", "output": "noise"}), "denoiser.output = noise"),
    ("denoiser_output_on_cld", lambda c: dict(c, sde={"type": "cld"}, target={"type": "gaussian", "mean": [0.5], "cov": [[1.0]]}, solvers=["gddim"], time=dict(c["time"], grid="time-uniform"), denoiser={"type": "analytic", "output": "eps"}), "denoiser.output = eps: needs a scalar SDE"),
    ("reference_float128_in_mp50_run", edit(precision="mp50", reference="float128"), "reference = float128: is no more precise than precision \"mp50\""),
    # Free-form fields are type-checked: description is text.
    ("description_object", edit(description={"a": 1}), "description = {\"a\":1}: must be a string"),
    ("description_number", edit(description=3.5), "description = 3.5: must be a string"),
    ("description_array", edit(description=["a", "b"]), "description = [\"a\",\"b\"]: must be a string"),
    # Times the SDE cannot represent in the run's precision.
    ("t_end_underflows", edit(time__t_end=1e-300), "time.t_end = 1e-300: sigma(t_end) / alpha(t_end) = 3.16227766016838e-151 underflows the run's precision (double"),
    ("t_end_subnormal", edit(time__t_end=1e-320), "time.t_end = 1e-320: sigma(t_end) / alpha(t_end)"),
    ("t_end_underflows_mp50", edit(precision="mp50", time__t_end=1e-120), "underflows the run's precision (mp50, epsilon 1e-49)"),
    # Generated (image-sized) Gaussians and the double-precision exact reference.
    ("generated_dim_zero", edit(target={"type": "gaussian", "generated": {"dim": 0}}), "target.generated.dim = 0: must be from 1 to 32000"),
    ("generated_dim_huge", edit(target={"type": "gaussian", "generated": {"dim": 100000}}), "target.generated.dim = 100000: must be from 1 to 32000"),
    ("generated_too_steep", edit(target={"type": "gaussian", "generated": {"dim": 3072, "exponent": 5}}), "target.generated.exponent = 5: makes the smallest eigenvalue"),
    ("generated_beside_mean", edit(target={"type": "gaussian", "mean": [0.0, 0.0], "generated": {"dim": 2}}), "target.generated = (given): replaces 'mean' and 'cov'"),
    ("generated_not_object", edit(target={"type": "gaussian", "generated": 5}), "target.generated = 5: must be an object"),
    ("generated_unknown_spectrum", edit(target={"type": "gaussian", "generated": {"dim": 2, "spectrum": "flat"}}), "target.generated.spectrum = flat"),
    ("generated_unknown_key", edit(target={"type": "gaussian", "generated": {"dims": 2}}), "target.generated.dims = 2: unknown key (did you mean 'dim'?)"),
    ("generated_largest_negative", edit(target={"type": "gaussian", "generated": {"dim": 2, "largest": -1}}), "target.generated.largest = -1: must be a positive eigenvalue from 1e-100 to 1e100"),
    ("generated_dim_mismatch_init", edit(target={"type": "gaussian", "generated": {"dim": 3}}), "init.points[0]"),
    ("reference_exact_double_mp50", edit(precision="mp50", reference="exact-double"), "reference = exact-double: evaluates the exact map in double: it needs precision \"double\""),
    ("reference_exact_double_trajectory", edit(kind="trajectory", reference="exact-double"), "reference = exact-double: applies to kinds \"convergence\" and \"work-precision\" only"),
    ("reference_exact_double_cld", lambda c: dict(c, sde={"type": "cld"}, target={"type": "gaussian", "mean": [0.5], "cov": [[1.0]]}, solvers=["gddim"], time=dict(c["time"], grid="time-uniform"), init={"count": 2}, reference="exact-double"), "reference = exact-double: is the per-mode closed form of a scalar SDE; sde.type = cld has matrix coefficients"),
    ("store_states_sample_kind", edit(kind="sample", store_states=False), "store_states = false: applies to kinds \"convergence\" and \"work-precision\" only"),
    ("generated_mean_std_huge", edit(target={"type": "gaussian", "generated": {"dim": 2, "mean_std": 1e308}}), "target.generated.mean_std = 1e+308: must be from 0 to 1e100"),
    ("store_states_text", edit(store_states="no"), "store_states = \"no\": must be true or false"),
    # The low-rank-plus-diagonal generator.
    ("generated_rank_on_power_law", edit(target={"type": "gaussian", "generated": {"dim": 2, "rank": 1}}), "target.generated.rank = 1: belongs to the spectrum \"low-rank-plus-diagonal\", not \"power-law\""),
    ("generated_rank_zero", edit(target={"type": "gaussian", "generated": {"spectrum": "low-rank-plus-diagonal", "dim": 2, "rank": 0}}), "target.generated.rank = 0: must be from 1 to dim (2)"),
    ("generated_rank_above_dim", edit(target={"type": "gaussian", "generated": {"spectrum": "low-rank-plus-diagonal", "dim": 2, "rank": 3}}), "target.generated.rank = 3: must be from 1 to dim (2)"),
    ("generated_rank_missing", edit(target={"type": "gaussian", "generated": {"spectrum": "low-rank-plus-diagonal", "dim": 2}}), "target.generated.rank"),
    ("generated_diagonal_min_zero", edit(target={"type": "gaussian", "generated": {"spectrum": "low-rank-plus-diagonal", "dim": 2, "rank": 1, "diagonal_min": 0}}), "target.generated.diagonal_min = 0: must be from 1e-100 to 1e100"),
    ("generated_diagonal_max_below_min", edit(target={"type": "gaussian", "generated": {"spectrum": "low-rank-plus-diagonal", "dim": 2, "rank": 1, "diagonal_min": 1, "diagonal_max": 0.5}}), "target.generated.diagonal_max = 0.5: must be from diagonal_min (1) to 1e100"),
    ("generated_diagonal_tiny", edit(target={"type": "gaussian", "generated": {"spectrum": "low-rank-plus-diagonal", "dim": 2, "rank": 1, "largest": 1e6, "diagonal_min": 1e-9}}), "target.generated.diagonal_min = 1e-09: is below 1e-12 of the largest eigenvalue"),
    ("generated_diagonal_text", edit(target={"type": "gaussian", "generated": {"spectrum": "low-rank-plus-diagonal", "dim": 2, "rank": 1, "diagonal_max": "big"}}), "target.generated.diagonal_max = \"big\""),
]

# Nesting deeper than the parser's limit (64 levels), in every free-form and structured field:
# written as text, since the values are built by repetition. The description nests 100,000 levels of arrays (20,000 of objects)
# (the input that once crashed the serialiser); the others 70 levels of arrays or objects.
NEST = "__NEST__"


def nested(depth, objects=False):
    return ('{"a":' * depth + "1" + "}" * depth) if objects else ("[" * depth + "1" + "]" * depth)


nest_fields = [("description", 100000, False), ("description_objects", 20000, True),
               ("name", 70, False), ("kind", 70, True), ("sde", 70, True), ("sde__type", 70, False),
               ("target", 70, True), ("target__means", 70, False), ("target__covs", 70, False),
               ("denoiser", 70, True), ("time", 70, True), ("time__t_end", 70, False),
               ("init", 70, True), ("init__count", 70, False), ("solvers", 70, False),
               ("solvers__0", 70, True), ("nfe", 70, False), ("precision", 70, False),
               ("reference", 70, True), ("seed", 70, False), ("fit_levels", 70, False),
               ("timing_repeats", 70, True), ("store_states", 70, False)]
raw_cases = []
for field, depth, objects in nest_fields:
    path = field.replace("_objects", "")
    raw_cases.append((f"nesting_{field}", edit(**{path: NEST}), nested(depth, objects),
                      "nests arrays and objects more than 64 levels deep"))

for f in os.listdir(out):
    if f.endswith(".json") or f.endswith(".tsv"):
        os.remove(os.path.join(out, f))
lines = []
for i, (name, change, fragment) in enumerate(cases):
    c = change(copy.deepcopy(base))
    file = f"{i:02d}_{name}.json"
    with open(os.path.join(out, file), "w") as fh:
        json.dump(c, fh, indent=1)
    lines.append(f"{file}\t{fragment}")
for j, (name, change, value, fragment) in enumerate(raw_cases):
    c = change(copy.deepcopy(base))
    file = f"{len(cases) + j:02d}_{name}.json"
    with open(os.path.join(out, file), "w") as fh:
        fh.write(json.dumps(c, indent=1).replace(json.dumps(NEST), value))
    lines.append(f"{file}\t{fragment}")
open(os.path.join(out, "expected.tsv"), "w").write("\n".join(lines) + "\n")
print(f"{len(cases) + len(raw_cases)} bad configs")
