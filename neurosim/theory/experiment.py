"""AFA theory beside simulation, as ``neurosim theory afa`` runs it (S Fig. 2b–c).

:func:`run_afa` draws one initial condition, integrates the ODEs (eqs. 22–24) from it, simulates
online SGD of each rule from weights realising it (``rate_models.teacher_student``, imported
here only, so ``neurosim`` stays free of torch), and writes a run folder:

* ``config.json``: the resolved :class:`AFAConfig` and the initial order parameters (a file
  ``--init-file`` accepts);
* ``metrics.csv``: one row per recorded time: ``t``, ``step``, then per source (``theory``,
  ``afa``, ``pepita``) ``eps_g``, the angles of Fig. 2c, ``f_norm`` and every order parameter
  (``Q_k_l``, ``R_k_m``, ``W2_k``, ``f_k``; units counted from 1); a simulation's columns are the
  mean over seeds with ``_std`` beside them;
* ``summary.json``: plateau height, plateau time and escape time (:mod:`neurosim.theory.curves`)
  of the theory and of each simulation's mean curve (and per seed), the final ``ε_g``, and the
  relative deviation of each simulation's mean ``ε_g`` from theory after the transient;
* ``learning_curves.png`` (Fig. 2b) and ``alignment.png`` (Fig. 2c and Fig. 7).

The folder is written to a temporary sibling and renamed at the end: a failed run leaves none.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import neurosim
from neurosim.io import atomic_write_json, write_csv_rows
from neurosim.runs import git_hash
from neurosim.theory.afa import (State, Teacher, TheoryError, alignment_angles, check_eta,
                                 check_positive_definite, covariance, eps_g, integrate)
from neurosim.theory.curves import plateau, relative_deviation
from neurosim.theory.setting import INITS, check_sizes, initial_conditions, realize

SIM_RULES = ("afa", "pepita")


@dataclass
class AFAConfig:
    """One theory-vs-simulation run; times in units of ``t = μ/D``."""

    D: int = 500                   # input dimension
    K: int = 2                     # student hidden units
    M: int = 2                     # teacher hidden units
    eta: float = 0.05              # η: η₁ = η on the scaled W₁, η₂ = η/D on W₂ (S App. E)
    t_max: float = 3000.0          # last time recorded (steps = t_max·D)
    seeds: int = 5                 # sample streams simulated (seed, seed+1, ...)
    seed: int = 0                  # first sample-stream seed
    init: str = "random"           # initial condition scheme (neurosim.theory.setting)
    init_seed: int = 0             # seed of the initial condition and of its realisation
    init_dim: int | None = None    # dimension the random initial condition is drawn at (None: D)
    init_file: str | None = None   # JSON of initial order parameters (replaces init)
    q0: float = 1.0                # ‖W₁ᵏ‖²/D of the initial student
    w2_std: float = 1.0            # std of the initial W₂ (random init; orthogonal has W₂ = 0)
    f_scale: float = 1.0           # std of F's entries (q_f ≈ f_scale²)
    rules: list[str] = field(default_factory=lambda: list(SIM_RULES))  # simulated rules
    points: int = 60               # recorded times, log-spaced (plus t = 0)
    plateau_after: float | None = None  # end of the initial transient (None: 5/η)

    @property
    def steps(self) -> int:
        return int(round(self.t_max * self.D))

    @property
    def transient(self) -> float:
        return 5.0 / self.eta if self.plateau_after is None else self.plateau_after

    def validate(self) -> None:
        """Raise :class:`TheoryError` naming the first bad parameter."""
        check_sizes(self.K, self.M, self.D)
        check_eta(self.eta)
        if not math.isfinite(self.t_max) or self.t_max <= 0 or self.steps < 1:
            raise TheoryError(f"t_max: must be positive and at least one step (1/D), got {self.t_max}")
        if self.seeds < 1:
            raise TheoryError(f"seeds: at least one seed, got {self.seeds}")
        if self.points < 2:
            raise TheoryError(f"points: at least 2 recorded times, got {self.points}")
        if self.init not in INITS:
            raise TheoryError(f"init: unknown initialization {self.init!r}; choose one of: {', '.join(INITS)}")
        if self.init_dim is not None:
            check_sizes(self.K, self.M, self.init_dim)
        unknown = [r for r in self.rules if r not in SIM_RULES]
        if unknown:
            raise TheoryError(f"rules: unknown {', '.join(unknown)}; choose from {', '.join(SIM_RULES)}")
        if self.plateau_after is not None and not (math.isfinite(self.plateau_after) and self.plateau_after >= 0):
            raise TheoryError(f"plateau_after: must be a non-negative time, got {self.plateau_after}")


def state_to_dict(state: State, teacher: Teacher) -> dict:
    """Initial order parameters as JSON-ready lists (the ``--init-file`` format)."""
    return {"Q": state.Q.tolist(), "R": state.R.tolist(), "W2": state.W2.tolist(), "f": state.f.tolist(),
            "T": teacher.T.tolist(), "teacher_W2": teacher.W2.tolist(), "teacher_f": teacher.f.tolist(),
            "q_f": teacher.q_f}


def state_from_file(path: str, K: int, M: int) -> tuple[State, Teacher]:
    """Read :func:`state_to_dict`'s format; shapes must fit K and M and the covariance must be
    positive definite."""
    try:
        data = json.loads(Path(path).read_text())
        arr = {k: np.asarray(data[k], float) for k in ("Q", "R", "W2", "f", "T", "teacher_W2", "teacher_f")}
        q_f = float(data["q_f"])
    except FileNotFoundError:
        raise TheoryError(f"init_file: {path} does not exist") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise TheoryError(f"init_file: {path} is not an order-parameter file ({err!r}); it needs "
                          "Q, R, W2, f, T, teacher_W2, teacher_f, q_f") from None
    shapes = {"Q": (K, K), "R": (K, M), "W2": (K,), "f": (K,), "T": (M, M), "teacher_W2": (M,),
              "teacher_f": (M,)}
    for key, shape in shapes.items():
        if arr[key].shape != shape:
            raise TheoryError(f"init_file: {key} has shape {arr[key].shape}, K = {K}, M = {M} need {shape}")
    state = State(arr["Q"], arr["R"], arr["W2"], arr["f"])
    teacher = Teacher(arr["T"], arr["teacher_W2"], arr["teacher_f"], q_f)
    check_positive_definite(covariance(state, teacher), f"init_file {path}")
    return state, teacher


def record_steps(steps: int, points: int) -> np.ndarray:
    """Step 0 and ``points`` log-spaced steps up to ``steps`` (duplicates dropped)."""
    return np.unique(np.concatenate([[0], np.round(np.geomspace(1, steps, points))])).astype(np.int64)


def _curves(Q, R, W2, f, teacher: Teacher) -> dict[str, np.ndarray]:
    """ε_g, angles, ‖f‖ and order parameters along the leading axes of the inputs."""
    lead = W2.shape[:-1]
    flat = [State(q, r, w, v) for q, r, w, v in zip(Q.reshape(-1, *Q.shape[-2:]), R.reshape(-1, *R.shape[-2:]),
                                                    W2.reshape(-1, W2.shape[-1]), f.reshape(-1, f.shape[-1]))]
    out = {"eps_g": np.array([eps_g(s, teacher) for s in flat]).reshape(lead)}
    out.update(alignment_angles(Q, R, W2, f, teacher))
    out["f_norm"] = np.linalg.norm(f, axis=-1)
    K, M = W2.shape[-1], R.shape[-1]
    for k in range(K):
        for l in range(k, K):
            out[f"Q_{k + 1}_{l + 1}"] = Q[..., k, l]
        for m in range(M):
            out[f"R_{k + 1}_{m + 1}"] = R[..., k, m]
        out[f"W2_{k + 1}"] = W2[..., k]
        out[f"f_{k + 1}"] = f[..., k]
    return out


def _plateau_dict(t, eps, t_after) -> dict:
    return dataclasses.asdict(plateau(t, eps, t_after))


def _clean(x):
    """NaN -> None, numpy -> Python, for strict JSON."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def run_afa(cfg: AFAConfig, out: Path, progress: bool = False) -> dict:
    """Run theory and simulations for ``cfg``; write the run folder ``out`` (which must not
    exist); return the summary."""
    from rate_models.teacher_student import simulate

    cfg.validate()
    out = Path(out)
    if out.exists():
        raise TheoryError(f"out: {out} already exists; choose a new run folder")
    if cfg.init_file:
        state0, teacher = state_from_file(cfg.init_file, cfg.K, cfg.M)
    else:
        state0, teacher = initial_conditions(cfg.init, cfg.K, cfg.M, cfg.init_dim or cfg.D, cfg.init_seed,
                                             cfg.q0, cfg.w2_std, cfg.f_scale)
    weights = realize(state0, teacher, cfg.D, cfg.init_seed)
    steps = record_steps(cfg.steps, cfg.points)
    t = steps / cfg.D

    start = time.perf_counter()
    traj = integrate(state0, teacher, cfg.eta, t)
    theory_seconds = time.perf_counter() - start
    theory = _curves(traj.Q, traj.R, traj.W2, traj.f, teacher)

    seeds = list(range(cfg.seed, cfg.seed + cfg.seeds))
    sims, sim_summaries, deviations = {}, {}, {}
    transient = cfg.transient
    th_plateau = _plateau_dict(t, theory["eps_g"], transient)
    window = t >= transient
    for rule in cfg.rules:
        sim = simulate(weights, rule, cfg.eta, steps, seeds, progress=progress)
        per_seed = _curves(sim.Q, sim.R, sim.W2, sim.f, teacher)  # arrays (seeds, times)
        sims[rule] = {k: (v.mean(0), v.std(0, ddof=1) if cfg.seeds > 1 else np.zeros_like(v[0]))
                      for k, v in per_seed.items()}
        mean = sims[rule]["eps_g"][0]
        dev = relative_deviation(theory["eps_g"], mean)
        deviations[rule] = dev
        pl = _plateau_dict(t, mean, transient)
        seed_escapes = [plateau(t, e, transient).escape_time for e in per_seed["eps_g"]]
        finite = [e for e in seed_escapes if e is not None]
        sim_summaries[rule] = {
            "plateau": pl,
            "escape_time_per_seed": seed_escapes,
            "escape_time_seed_mean": float(np.mean(finite)) if finite else None,
            "escape_time_seed_std": float(np.std(finite, ddof=1)) if len(finite) > 1 else None,
            "escape_time_ratio_to_theory": (pl["escape_time"] / th_plateau["escape_time"]
                                            if pl["escape_time"] and th_plateau["escape_time"] else None),
            "plateau_height_ratio_to_theory": (pl["height"] / th_plateau["height"]
                                               if pl["height"] and th_plateau["height"] else None),
            "deviation_from_theory": {
                "max_after_transient": float(dev[window].max()) if window.any() else None,
                "median_after_transient": float(np.median(dev[window])) if window.any() else None,
                "max_overall": float(dev.max()),
            },
            "final_eps_g_mean": float(mean[-1]),
            "final_eps_g_std": float(sims[rule]["eps_g"][1][-1]),
            "seconds": sim.seconds,
            "microseconds_per_step": 1e6 * sim.seconds / max(cfg.steps, 1),
        }

    summary = _clean({
        "task": "afa teacher-student (Srinivasan et al. 2023, App. E)",
        "D": cfg.D, "K": cfg.K, "M": cfg.M, "eta": cfg.eta, "eta_1": cfg.eta, "eta_2": cfg.eta / cfg.D,
        "t_max": float(t[-1]), "steps": int(steps[-1]), "seeds": cfg.seeds, "init": cfg.init_file or cfg.init,
        "transient": transient,
        "deviation_window": [transient, float(t[-1])],
        "theory": {"plateau": th_plateau, "final_eps_g": float(theory["eps_g"][-1]),
                   "initial_eps_g": float(theory["eps_g"][0]), "seconds": theory_seconds},
        "simulations": sim_summaries,
        "neurosim_version": neurosim.__version__,
        "git_hash": git_hash(),
    })
    config = {**dataclasses.asdict(cfg), "initial_order_parameters": state_to_dict(state0, teacher)}

    rows = []
    for i in range(t.size):
        row = {"t": float(t[i]), "step": int(steps[i])}
        row.update({f"{k}_theory": float(v[i]) for k, v in theory.items()})
        for rule, curves in sims.items():
            for k, (m, s) in curves.items():
                row[f"{k}_{rule}"] = float(m[i])
                row[f"{k}_{rule}_std"] = float(s[i])
            row[f"deviation_{rule}"] = float(deviations[rule][i])
        rows.append(row)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        atomic_write_json(tmp / "config.json", _clean(config))
        write_csv_rows(tmp / "metrics.csv", rows)
        atomic_write_json(tmp / "summary.json", summary)
        from neurosim.theory.plots import plot_alignment, plot_learning_curves

        title = (f"D={cfg.D}, K={cfg.K}, M={cfg.M}, η={cfg.eta:g}, {cfg.seeds} seed(s), "
                 f"init {cfg.init_file or cfg.init}")
        plot_learning_curves(t, theory, sims, tmp / "learning_curves.png", title)
        plot_alignment(t, theory, sims, tmp / "alignment.png", title)
        if out.exists():
            raise TheoryError(f"out: {out} appeared while the run was computed; not overwritten")
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary
